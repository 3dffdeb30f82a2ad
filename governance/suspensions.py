"""Emergency suspensions of a principal, a grant or an asset, and what is still in force."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from governance.clock import utc_now
from governance.errors import ControlError
from governance.grants import GrantStatus, transition
from governance.principals import principal_row, set_principal_status
from governance.tables import grants, principals, suspensions


class SuspensionKind(StrEnum):
    PRINCIPAL = "principal"
    GRANT = "grant"
    ASSET = "asset"


_ASSETS_SUSPENDED = (
    sa.select(sa.func.count())
    .select_from(suspensions)
    .where(
        suspensions.c.kind == SuspensionKind.ASSET.value,
        suspensions.c.target.in_(sa.bindparam("assets", expanding=True)),
    )
    .scalar_subquery()
)
_PRINCIPAL_STATUS = (
    sa.select(principals.c.status).where(principals.c.id == sa.bindparam("principal"))
).scalar_subquery()
_GRANT_STATUS = (
    sa.select(grants.c.status).where(grants.c.id == sa.bindparam("grant")).scalar_subquery()
)
_IN_FORCE = sa.select(_PRINCIPAL_STATUS, _GRANT_STATUS, _ASSETS_SUSPENDED)
_IN_FORCE_WITHOUT_GRANT = sa.select(
    _PRINCIPAL_STATUS, sa.literal(GrantStatus.ACTIVE.value), _ASSETS_SUSPENDED
)
_SUSPENDED_ASSETS = sa.select(suspensions.c.target).where(
    suspensions.c.kind == SuspensionKind.ASSET.value
)


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
        params = {"principal": principal_id, "grant": grant_id, "assets": list(assets)}
        statement = _IN_FORCE if grant_id is not None else _IN_FORCE_WITHOUT_GRANT
        with self.engine.connect() as db:
            row = db.execute(statement, params).one()
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
            found = db.execute(_SUSPENDED_ASSETS).scalars()
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
