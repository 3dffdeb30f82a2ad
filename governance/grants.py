"""Grants: a developer's use of assets on stated terms, and the one way a grant changes state."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from governance.clock import utc_now
from governance.errors import ControlError, NotFound
from governance.tables import approvals, grant_events, grant_usage, grants

# A party name no principal id can take (ids are [a-z0-9_-]), so no one can approve as it.
SUPERVISOR_PARTY = "role:supervisor"


class GrantStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    EXPIRED = "expired"


# Grants that still confer use or may again; the others have ended for good.
LIVE = (GrantStatus.PENDING, GrantStatus.ACTIVE, GrantStatus.SUSPENDED)
# Who records a change nobody asked for, such as the end of a grant's term.
SYSTEM = "system"


TRANSITIONS = {
    GrantStatus.PENDING: {GrantStatus.ACTIVE, GrantStatus.REJECTED, GrantStatus.REVOKED},
    GrantStatus.ACTIVE: {GrantStatus.REVOKED, GrantStatus.SUSPENDED, GrantStatus.EXPIRED},
    # A suspended grant's term runs on: past it, the grant has ended, suspended or not.
    GrantStatus.SUSPENDED: {GrantStatus.ACTIVE, GrantStatus.REVOKED, GrantStatus.EXPIRED},
}


def _grants_query(ids: sa.Select) -> sa.Select:
    """One statement reading the grants `ids` selects, oldest first: a row for each approval,
    or a row with no party for a grant without one."""
    return (
        sa.select(grants, approvals.c.party)
        .outerjoin(approvals, approvals.c.grant_id == grants.c.id)
        .where(grants.c.id.in_(ids))
        .order_by(grants.c.created_at, grants.c.id)
    )


# Statements on every request's path, built once: building one costs more than running it.
GRANTS_OF_DEVELOPER = _grants_query(
    sa.select(grants.c.id).where(grants.c.developer == sa.bindparam("developer"))
)
# Grants whose term can end: those that confer use now or may again.
_EXPIRABLE = (GrantStatus.ACTIVE, GrantStatus.SUSPENDED)
_DUE = sa.select(grants.c.id).where(
    grants.c.status.in_([status.value for status in _EXPIRABLE]),
    grants.c.valid_until <= sa.bindparam("now"),
)


@dataclass(frozen=True)
class Grant:
    id: str
    developer: str
    assets: list[str]
    columns: dict[str, list[str]] | None
    purpose: str
    scenario: str
    methods: list[str]
    valid_from: str
    valid_until: str
    status: GrantStatus
    created_at: str
    required_parties: list[str]
    approvals: list[str]
    quotas: dict[str, int] | None = None

    def in_force(self, now: str) -> bool:
        """Active and within its term at `now` (RFC 3339), as the policy reads a grant."""
        instant = datetime.fromisoformat(now)
        return (
            self.status is GrantStatus.ACTIVE
            and datetime.fromisoformat(self.valid_from) <= instant
            and instant < datetime.fromisoformat(self.valid_until)
        )

    def due(self, now: str) -> bool:
        """Live and past its term at `now`, so `expire_due` would expire it (the same test as
        its statement's)."""
        return self.status in _EXPIRABLE and self.valid_until <= now

    def covers(self, asset: str, column: str) -> bool:
        """Whether the grant names the asset and, where it narrows columns, this column (a
        narrowing that does not list the asset leaves none of its columns)."""
        if asset not in self.assets:
            return False
        return self.columns is None or column in self.columns.get(asset, [])

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "developer": self.developer,
            "assets": self.assets,
            "columns": self.columns,
            "purpose": self.purpose,
            "scenario": self.scenario,
            "methods": self.methods,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "status": self.status.value,
            "quotas": self.quotas,
            "created_at": self.created_at,
            "required_approvals": self.required_parties,
            "approvals": self.approvals,
        }

    def as_input(self) -> dict:
        body = self.as_dict()
        del body["required_approvals"], body["approvals"], body["created_at"]
        return body


class GrantRecords:
    """Grants, their approvals and their history; every change is one transaction."""

    engine: sa.Engine
    _lock: threading.Lock

    def create_grant(self, body: dict, required_parties: list[str]) -> Grant:
        grant_id = "g_" + secrets.token_hex(8)
        stored = dict(body, required_parties=sorted(set(required_parties)))
        now = utc_now()
        with self.engine.begin() as db:
            db.execute(
                grants.insert().values(
                    id=grant_id,
                    developer=body["developer"],
                    body=json.dumps(stored, sort_keys=True),
                    status=GrantStatus.PENDING.value,
                    created_at=now,
                    valid_until=body["valid_until"],
                )
            )
            _event(db, grant_id, "requested", body["developer"], at=now)
            if body.get("quotas"):
                db.execute(
                    grant_usage.insert().values(
                        grant_id=grant_id, day=now[:10], queries_today=0, rows_scanned=0
                    )
                )
        return self.grant(grant_id)

    def grant(self, grant_id: str) -> Grant:
        with self.engine.connect() as db:
            row = db.execute(sa.select(grants).where(grants.c.id == grant_id)).first()
            if row is None:
                raise NotFound("no such grant")
            parties = db.execute(
                sa.select(approvals.c.party).where(approvals.c.grant_id == grant_id)
            ).scalars()
            return _grant(row, sorted(parties))

    def grants_of(self, developer: str) -> list[Grant]:
        return self._read_grants(GRANTS_OF_DEVELOPER, {"developer": developer})

    def grants(self, ids: sa.Select | None = None) -> list[Grant]:
        """The grants whose ids `ids` selects (all when None), oldest first: one query."""
        return self._read_grants(_grants_query(ids if ids is not None else sa.select(grants.c.id)))

    def _read_grants(self, query: sa.Select, params: dict | None = None) -> list[Grant]:
        with self.engine.connect() as db:
            return grants_from(db.execute(query, params or {}).all())

    def history(self, grant_id: str) -> list[dict]:
        """Every change of a grant, oldest first: what happened, for which party, by whom, why."""
        query = (
            sa.select(grant_events)
            .where(grant_events.c.grant_id == grant_id)
            .order_by(grant_events.c.id)
        )
        with self.engine.connect() as db:
            rows = db.execute(query).all()
        return [
            {"event": r.event, "party": r.party, "by": r.by, "reason": r.reason, "at": r.at}
            for r in rows
        ]

    def approve(self, grant_id: str, party: str, approver: str) -> Grant:
        with self._lock, self.engine.begin() as db:
            grant = self._pending_for(grant_id, party)
            if party not in grant.approvals:
                db.execute(
                    approvals.insert().values(
                        grant_id=grant_id, party=party, approver=approver, at=utc_now()
                    )
                )
                _event(db, grant_id, "approved", approver, party=party)
            if set(grant.required_parties) <= set(grant.approvals) | {party}:
                transition(db, grant, GrantStatus.ACTIVE, approver)
        return self.grant(grant_id)

    def reject(self, grant_id: str, party: str, by: str, reason: str) -> Grant:
        """A required party refuses a pending grant, with its reason; the grant ends."""
        with self._lock, self.engine.begin() as db:
            grant = self._pending_for(grant_id, party)
            transition(db, grant, GrantStatus.REJECTED, by, reason=reason, party=party)
        return self.grant(grant_id)

    def set_status(
        self, grant_id: str, status: GrantStatus, by: str, reason: str | None = None
    ) -> Grant:
        with self._lock, self.engine.begin() as db:
            transition(db, self.grant(grant_id), status, by, reason=reason)
        return self.grant(grant_id)

    def expire_due(self, now: str) -> list[Grant]:
        """Move every live grant whose term has ended to `expired`; returns those moved.

        Asked on every request, so a plain read comes first: the lock and the write
        transaction are taken only when some grant is due."""
        with self.engine.connect() as db:
            if db.execute(_DUE, {"now": now}).first() is None:
                return []
        with self._lock, self.engine.begin() as db:
            due = db.execute(_DUE, {"now": now}).scalars()
            ended = [self.grant(grant_id) for grant_id in due]
            for grant in ended:
                transition(db, grant, GrantStatus.EXPIRED, SYSTEM, reason="the grant's term ended")
        return [self.grant(grant.id) for grant in ended]

    def _pending_for(self, grant_id: str, party: str) -> Grant:
        grant = self.grant(grant_id)
        if grant.status is not GrantStatus.PENDING:
            raise ControlError(f"the grant is {grant.status.value}, not pending")
        if party not in grant.required_parties:
            raise ControlError("this party's approval is not required")
        return grant


def transition(
    db: sa.Connection,
    grant: Grant,
    status: GrantStatus,
    by: str,
    reason: str | None = None,
    party: str | None = None,
) -> None:
    """The one way a grant changes state, allowed by TRANSITIONS, and the event that records it."""
    if status not in TRANSITIONS.get(grant.status, set()):
        raise ControlError(f"a {grant.status.value} grant cannot become {status.value}")
    db.execute(grants.update().where(grants.c.id == grant.id).values(status=status.value))
    event = status.value
    if status is GrantStatus.ACTIVE:
        event = "resumed" if grant.status is GrantStatus.SUSPENDED else "activated"
    _event(db, grant.id, event, by, party=party, reason=reason)


def _event(
    db: sa.Connection,
    grant_id: str,
    event: str,
    by: str,
    party: str | None = None,
    reason: str | None = None,
    at: str | None = None,
) -> None:
    db.execute(
        grant_events.insert().values(
            grant_id=grant_id, event=event, party=party, by=by, reason=reason, at=at or utc_now()
        )
    )


def grants_from(rows: Iterable[Any]) -> list[Grant]:
    """Grants from the rows of a statement `_grants_query` built: one row per approval."""
    approved: dict[str, tuple[Any, list[str]]] = {}
    for row in rows:
        _, parties = approved.setdefault(row.id, (row, []))
        if row.party is not None:
            parties.append(row.party)
    return [_grant(row, sorted(parties)) for row, parties in approved.values()]


def _grant(row: Any, approved: list[str]) -> Grant:
    body = json.loads(row.body)
    return Grant(
        id=row.id,
        developer=row.developer,
        assets=body["assets"],
        columns=body.get("columns"),
        purpose=body["purpose"],
        scenario=body.get("scenario", ""),
        methods=body["methods"],
        valid_from=body["valid_from"],
        valid_until=body["valid_until"],
        status=GrantStatus(row.status),
        created_at=row.created_at,
        required_parties=body["required_parties"],
        approvals=approved,
        quotas=body.get("quotas"),
    )
