"""Emergency suspensions of a principal, a grant or an asset, and what is still in force."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from database.prepared import Prepared
from governance.clock import utc_now
from governance.errors import ControlError
from governance.grants import GrantStatus, transition
from governance.principals import principal_row, set_principal_status
from governance.tables import grants, principals, suspensions


class SuspensionKind(StrEnum):
    PRINCIPAL = "principal"
    GRANT = "grant"
    ASSET = "asset"


_PRINCIPAL_STATUS = (
    sa.select(principals.c.status).where(principals.c.id == sa.bindparam("principal"))
).scalar_subquery()
_GRANT_STATUS = (
    sa.select(grants.c.status).where(grants.c.id == sa.bindparam("grant")).scalar_subquery()
)
SUSPENDED_ASSETS = sa.select(suspensions.c.target).where(
    suspensions.c.kind == SuspensionKind.ASSET.value
)


@functools.lru_cache(maxsize=64)
def _in_force(assets: int, grant: bool) -> Prepared:
    """The in_force statement for `assets` assets, built once per count: an expanding IN
    would be rendered again on every execution (and so would an empty one: no assets, none
    suspended)."""
    suspended = (
        sa.select(sa.func.count())
        .select_from(suspensions)
        .where(
            suspensions.c.kind == SuspensionKind.ASSET.value,
            suspensions.c.target.in_([sa.bindparam(f"asset_{n}") for n in range(assets)]),
        )
        .scalar_subquery()
        if assets
        else sa.literal(0)
    )
    status = _GRANT_STATUS if grant else sa.literal(GrantStatus.ACTIVE.value)
    return Prepared(sa.select(_PRINCIPAL_STATUS, status, suspended))


@dataclass(frozen=True)
class Suspension:
    """An emergency stop in force: what is stopped, why, by whom and since when."""

    kind: SuspensionKind
    target: str
    reason: str
    by: str
    at: str

    def as_dict(self) -> dict:
        return {
            "kind": self.kind.value,
            "target": self.target,
            "reason": self.reason,
            "by": self.by,
            "at": self.at,
        }


class SuspensionRecords:
    """Stops in force; a stop and the status it changes are one transaction."""

    engine: sa.Engine
    _lock: threading.Lock

    def in_force(self, principal_id: str, grant_id: str | None, assets: list[str]) -> bool:
        """Whether the principal is active, the grant (if any) active and no asset suspended:
        what an authorisation relied on, read in one statement (it runs twice per query)."""
        params = {"principal": principal_id, "grant": grant_id}
        params.update((f"asset_{n}", asset) for n, asset in enumerate(assets))
        statement = _in_force(len(assets), grant_id is not None)
        with self.engine.connect() as db:
            row = statement.first(db, params)
        return row[0] == "active" and row[1] == GrantStatus.ACTIVE.value and row[2] == 0

    def suspend(self, kind: SuspensionKind, target: str, reason: str, by: str) -> Suspension:
        """Stop a principal, grant or asset until resumed; its status changes in the same
        transaction. Assets live in the enclave's store, so the caller checks they exist."""
        stop = Suspension(kind, target, reason, by, utc_now())
        with self._lock, self.engine.begin() as db:
            if _suspension(db, kind, target) is not None:
                raise ControlError(f"this {kind.value} is already suspended")
            if kind is SuspensionKind.PRINCIPAL:
                if principal_row(db, target).status == "revoked":
                    raise ControlError("a revoked principal cannot be suspended")
                set_principal_status(db, target, "suspended")
            elif kind is SuspensionKind.GRANT:
                transition(db, self.grant(target), GrantStatus.SUSPENDED, by, reason=reason)
            db.execute(suspensions.insert().values(**stop.as_dict()))
        return stop

    def resume(self, kind: SuspensionKind, target: str, by: str, reason: str) -> Suspension:
        """Lift a suspension; returns the suspension that was lifted."""
        with self._lock, self.engine.begin() as db:
            stop = _suspension(db, kind, target)
            if stop is None:
                raise ControlError(f"this {kind.value} is not suspended")
            if kind is SuspensionKind.PRINCIPAL:
                set_principal_status(db, target, "active")
            elif kind is SuspensionKind.GRANT:
                transition(db, self.grant(target), GrantStatus.ACTIVE, by, reason=reason)
            db.execute(
                suspensions.delete().where(
                    suspensions.c.kind == kind.value, suspensions.c.target == target
                )
            )
        return stop

    def suspended_assets(self) -> frozenset[str]:
        with self.engine.connect() as db:
            found = db.execute(SUSPENDED_ASSETS).scalars()
            return frozenset(found)


def _suspension(db: sa.Connection, kind: SuspensionKind, target: str) -> Suspension | None:
    row = db.execute(
        sa.select(suspensions).where(
            suspensions.c.kind == kind.value, suspensions.c.target == target
        )
    ).first()
    if row is None:
        return None
    return Suspension(SuspensionKind(row.kind), row.target, row.reason, row.by, row.at)
