"""The control store: principals, their hashed API keys, grants and approvals (SQLAlchemy Core)."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import alembic.command
import alembic.config
import sqlalchemy as sa

metadata = sa.MetaData()

principals = sa.Table(
    "principals",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("roles", sa.Text, nullable=False),
    sa.Column("org", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)

grants = sa.Table(
    "grants",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("developer", sa.String(64), nullable=False, index=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("valid_until", sa.String(32), nullable=True, index=True),
)

grant_events = sa.Table(
    "grant_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("grant_id", sa.String(32), sa.ForeignKey("grants.id"), nullable=False, index=True),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("party", sa.String(64), nullable=True),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("at", sa.String(32), nullable=False),
)

# Kept only for grants with quotas; counts reserve before a query runs.
grant_usage = sa.Table(
    "grant_usage",
    metadata,
    sa.Column("grant_id", sa.String(32), sa.ForeignKey("grants.id"), primary_key=True),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("queries_today", sa.BigInteger, nullable=False),
    sa.Column("rows_scanned", sa.BigInteger, nullable=False),
)

approvals = sa.Table(
    "grant_approvals",
    metadata,
    sa.Column("grant_id", sa.String(32), sa.ForeignKey("grants.id"), primary_key=True),
    sa.Column("party", sa.String(64), primary_key=True),
    sa.Column("approver", sa.String(64), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
)

suspensions = sa.Table(
    "suspensions",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("target", sa.String(64), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
)

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
    GrantStatus.SUSPENDED: {GrantStatus.ACTIVE, GrantStatus.REVOKED},
}


class SuspensionKind(StrEnum):
    PRINCIPAL = "principal"
    GRANT = "grant"
    ASSET = "asset"


def _grant_queries(ids: sa.Select) -> tuple[sa.Select, sa.Select]:
    """The two statements that read the grants `ids` selects: their rows, and their approvals."""
    chosen = ids.subquery()
    rows_query = (
        sa.select(grants)
        .where(grants.c.id.in_(sa.select(chosen.c.id)))
        .order_by(grants.c.created_at, grants.c.id)
    )
    parties_query = sa.select(approvals.c.grant_id, approvals.c.party).where(
        approvals.c.grant_id.in_(sa.select(chosen.c.id))
    )
    return rows_query, parties_query


# Statements on every request's path, built once: building one costs more than running it.
_BY_KEY_HASH = sa.select(principals).where(principals.c.key_hash == sa.bindparam("key_hash"))
_GRANTS_OF_DEVELOPER = _grant_queries(
    sa.select(grants.c.id).where(grants.c.developer == sa.bindparam("developer"))
)
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
_DUE = sa.select(grants.c.id).where(
    grants.c.status.in_([GrantStatus.ACTIVE.value, GrantStatus.SUSPENDED.value]),
    grants.c.valid_until <= sa.bindparam("now"),
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


class ControlError(Exception):
    code = "CONFLICT"
    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ControlError):
    code = "NOT_FOUND"
    status = 404


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hash_key(api_key: str) -> str:
    # API keys are 256-bit random tokens, so a plain digest is enough to store them safely.
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return "veil_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    id: str
    roles: frozenset[str]
    org: str
    status: str

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    def as_input(self) -> dict:
        return {"id": self.id, "roles": sorted(self.roles), "org": self.org, "status": self.status}


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


class ControlStore:
    """Principals and grants; every change is one transaction."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, future=True)
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        migrate(self.engine)
        self._lock = threading.Lock()

    # principals

    def create_principal(self, principal_id: str, roles: set[str], org: str) -> str:
        api_key = new_api_key()
        with self.engine.begin() as db:
            if db.execute(
                sa.select(principals.c.id).where(principals.c.id == principal_id)
            ).first():
                raise ControlError("a principal with this id already exists")
            db.execute(
                principals.insert().values(
                    id=principal_id,
                    roles=json.dumps(sorted(roles)),
                    org=org,
                    key_hash=hash_key(api_key),
                    status="active",
                    created_at=utc_now(),
                )
            )
        return api_key

    def principals(self) -> list[Principal]:
        with self.engine.connect() as db:
            rows = db.execute(sa.select(principals).order_by(principals.c.id)).all()
        return [_principal(row) for row in rows]

    def rotate_key(self, principal_id: str) -> str:
        """Give a principal a new API key, returned once; the old key stops working at once."""
        api_key = new_api_key()
        with self._lock, self.engine.begin() as db:
            found = _principal_row(db, principal_id)
            if found.status == "revoked":
                raise ControlError("a revoked principal gets no new key")
            db.execute(
                principals.update()
                .where(principals.c.id == principal_id)
                .values(key_hash=hash_key(api_key))
            )
        return api_key

    def revoke_principal(self, principal_id: str) -> Principal:
        """End a principal for good: its key no longer authenticates."""
        with self._lock, self.engine.begin() as db:
            if _principal_row(db, principal_id).status == "revoked":
                raise ControlError("the principal is already revoked")
            _set_principal_status(db, principal_id, "revoked")
            # A suspension of a revoked principal has nothing left to hold.
            db.execute(
                suspensions.delete().where(
                    suspensions.c.kind == SuspensionKind.PRINCIPAL.value,
                    suspensions.c.target == principal_id,
                )
            )
        found = self.principal(principal_id)
        assert found is not None
        return found

    def authenticate(self, api_key: str) -> Principal | None:
        with self.engine.connect() as db:
            row = db.execute(_BY_KEY_HASH, {"key_hash": hash_key(api_key)}).first()
        return _principal(row) if row else None

    def principal(self, principal_id: str) -> Principal | None:
        with self.engine.connect() as db:
            row = db.execute(sa.select(principals).where(principals.c.id == principal_id)).first()
        return _principal(row) if row else None

    def has_principals(self) -> bool:
        with self.engine.connect() as db:
            return db.execute(sa.select(sa.func.count()).select_from(principals)).scalar_one() > 0

    # grants

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
        return self._read_grants(_GRANTS_OF_DEVELOPER, {"developer": developer})

    def grants(self, ids: sa.Select | None = None) -> list[Grant]:
        """The grants whose ids `ids` selects (all when None), oldest first: two queries."""
        return self._read_grants(_grant_queries(ids if ids is not None else sa.select(grants.c.id)))

    def _read_grants(
        self, queries: tuple[sa.Select, sa.Select], params: dict | None = None
    ) -> list[Grant]:
        rows_query, parties_query = queries
        with self.engine.connect() as db:
            rows = db.execute(rows_query, params or {}).all()
            approved: dict[str, list[str]] = {}
            for grant_id, party in db.execute(parties_query, params or {}):
                approved.setdefault(grant_id, []).append(party)
        return [_grant(row, sorted(approved.get(row.id, []))) for row in rows]

    def in_force(self, principal_id: str, grant_id: str | None, assets: list[str]) -> bool:
        """Whether the principal is active, the grant (if any) active and no asset suspended:
        what an authorisation relied on, read in one statement (it runs twice per query)."""
        params = {"principal": principal_id, "grant": grant_id, "assets": list(assets)}
        statement = _IN_FORCE if grant_id is not None else _IN_FORCE_WITHOUT_GRANT
        with self.engine.connect() as db:
            row = db.execute(statement, params).one()
        return row[0] == "active" and row[1] == GrantStatus.ACTIVE.value and row[2] == 0

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
                _move(db, grant, GrantStatus.ACTIVE, approver)
        return self.grant(grant_id)

    def reject(self, grant_id: str, party: str, by: str, reason: str) -> Grant:
        """A required party refuses a pending grant, with its reason; the grant ends."""
        with self._lock, self.engine.begin() as db:
            grant = self._pending_for(grant_id, party)
            _move(db, grant, GrantStatus.REJECTED, by, reason=reason, party=party)
        return self.grant(grant_id)

    def set_status(
        self, grant_id: str, status: GrantStatus, by: str, reason: str | None = None
    ) -> Grant:
        with self._lock, self.engine.begin() as db:
            _move(db, self.grant(grant_id), status, by, reason=reason)
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
                _move(db, grant, GrantStatus.EXPIRED, SYSTEM, reason="the grant's term ended")
        return [self.grant(grant.id) for grant in ended]

    def reserve(self, grant: Grant, rows_scanned: int, day: str) -> str | None:
        """Count one query scanning `rows_scanned` rows on `day` against the grant's quotas.

        One conditional UPDATE, so concurrent gateway processes never overspend. Returns
        None when reserved, else the name of the quota that is used up (nothing is counted).
        """
        quotas = grant.quotas or {}
        if not quotas:
            return None
        today = sa.case((grant_usage.c.day == day, grant_usage.c.queries_today), else_=0)
        conditions = [grant_usage.c.grant_id == grant.id]
        if "queries_per_day" in quotas:
            conditions.append(today + 1 <= quotas["queries_per_day"])
        if "rows_scanned" in quotas:
            conditions.append(grant_usage.c.rows_scanned + rows_scanned <= quotas["rows_scanned"])
        with self.engine.begin() as db:
            reserved = db.execute(
                grant_usage.update()
                .where(*conditions)
                .values(
                    day=day,
                    queries_today=today + 1,
                    rows_scanned=grant_usage.c.rows_scanned + rows_scanned,
                )
            )
            if reserved.rowcount == 1:
                return None
            used = self.quota_use(grant.id, day, db)
        return _exceeded(quotas, used, rows_scanned) or "rows_scanned"

    def reserve_envelope(self, grant: Grant, most: int, rows_each: int, day: str) -> int:
        """Count up to `most` queries of at most `rows_each` rows at once against the grant's
        quotas, as many as they still allow; returns how many were counted (maybe none).

        What a job held for review may ask: reserved before it runs and never returned, so
        the quotas its developer can read say nothing of how many it asked."""
        quotas = grant.quotas or {}
        if not quotas:
            return most
        while True:
            used = self.quota_use(grant.id, day)
            room = [most]
            if "queries_per_day" in quotas:
                room.append(quotas["queries_per_day"] - used["queries_today"])
            if "rows_scanned" in quotas and rows_each > 0:
                room.append((quotas["rows_scanned"] - used["rows_scanned"]) // rows_each)
            count = min(room)
            if count <= 0:
                return 0
            today = sa.case((grant_usage.c.day == day, grant_usage.c.queries_today), else_=0)
            with self.engine.begin() as db:
                reserved = db.execute(
                    grant_usage.update()
                    .where(
                        grant_usage.c.grant_id == grant.id,
                        today == used["queries_today"],
                        grant_usage.c.rows_scanned == used["rows_scanned"],
                    )
                    .values(
                        day=day,
                        queries_today=today + count,
                        rows_scanned=grant_usage.c.rows_scanned + count * rows_each,
                    )
                )
            if reserved.rowcount == 1:
                return count
            # Another process counted in between: read again and retry.

    def exceeded_quota(self, grant: Grant, rows_scanned: int, day: str) -> str | None:
        """The quota one more query of `rows_scanned` rows would exceed, if any (a read only:
        `reserve` is what counts)."""
        if not grant.quotas:
            return None
        return _exceeded(grant.quotas, self.quota_use(grant.id, day), rows_scanned)

    def quota_use(self, grant_id: str, day: str, db: sa.Connection | None = None) -> dict:
        """Queries counted on `day` and rows scanned in all, under a grant with quotas."""
        query = sa.select(grant_usage).where(grant_usage.c.grant_id == grant_id)
        if db is None:
            with self.engine.connect() as connection:
                row = connection.execute(query).first()
        else:
            row = db.execute(query).first()
        if row is None:
            return {"queries_today": 0, "rows_scanned": 0}
        today = row.queries_today if row.day == day else 0
        return {"queries_today": today, "rows_scanned": row.rows_scanned}

    def _pending_for(self, grant_id: str, party: str) -> Grant:
        grant = self.grant(grant_id)
        if grant.status is not GrantStatus.PENDING:
            raise ControlError(f"the grant is {grant.status.value}, not pending")
        if party not in grant.required_parties:
            raise ControlError("this party's approval is not required")
        return grant

    # emergency suspensions

    def suspend(self, kind: SuspensionKind, target: str, reason: str, by: str) -> Suspension:
        """Stop a principal, grant or asset until resumed; its status changes in the same
        transaction. Assets live in the enclave's store, so the caller checks they exist."""
        stop = Suspension(kind, target, reason, by, utc_now())
        with self._lock, self.engine.begin() as db:
            if _suspension(db, kind, target) is not None:
                raise ControlError(f"this {kind.value} is already suspended")
            if kind is SuspensionKind.PRINCIPAL:
                if _principal_row(db, target).status == "revoked":
                    raise ControlError("a revoked principal cannot be suspended")
                _set_principal_status(db, target, "suspended")
            elif kind is SuspensionKind.GRANT:
                _move(db, self.grant(target), GrantStatus.SUSPENDED, by, reason=reason)
            db.execute(suspensions.insert().values(**stop.as_dict()))
        return stop

    def resume(self, kind: SuspensionKind, target: str, by: str, reason: str) -> Suspension:
        """Lift a suspension; returns the suspension that was lifted."""
        with self._lock, self.engine.begin() as db:
            stop = _suspension(db, kind, target)
            if stop is None:
                raise ControlError(f"this {kind.value} is not suspended")
            if kind is SuspensionKind.PRINCIPAL:
                _set_principal_status(db, target, "active")
            elif kind is SuspensionKind.GRANT:
                _move(db, self.grant(target), GrantStatus.ACTIVE, by, reason=reason)
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


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to an Alembic revision, the newest by default."""
    config = alembic.config.Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, revision)


def _move(
    db: sa.Connection,
    grant: Grant,
    status: GrantStatus,
    by: str,
    reason: str | None = None,
    party: str | None = None,
) -> None:
    """The one way a grant changes state, and the event that records it."""
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


def _exceeded(quotas: dict[str, int], used: dict[str, int], rows_scanned: int) -> str | None:
    limit = quotas.get("queries_per_day")
    if limit is not None and used["queries_today"] + 1 > limit:
        return "queries_per_day"
    limit = quotas.get("rows_scanned")
    if limit is not None and used["rows_scanned"] + rows_scanned > limit:
        return "rows_scanned"
    return None


def _suspension(db: sa.Connection, kind: SuspensionKind, target: str) -> Suspension | None:
    row = db.execute(
        sa.select(suspensions).where(
            suspensions.c.kind == kind.value, suspensions.c.target == target
        )
    ).first()
    if row is None:
        return None
    return Suspension(SuspensionKind(row.kind), row.target, row.reason, row.by, row.at)


def _principal_row(db: sa.Connection, principal_id: str) -> Principal:
    row = db.execute(sa.select(principals).where(principals.c.id == principal_id)).first()
    if row is None:
        raise NotFound("no such principal")
    return _principal(row)


def _set_principal_status(db: sa.Connection, principal_id: str, status: str) -> None:
    changed = db.execute(
        principals.update().where(principals.c.id == principal_id).values(status=status)
    )
    if changed.rowcount != 1:
        raise NotFound("no such principal")


def _principal(row: sa.Row) -> Principal:
    return Principal(row.id, frozenset(json.loads(row.roles)), row.org, row.status)


def _grant(row: sa.Row, approved: list[str]) -> Grant:
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


def _sqlite_pragmas(connection, _record) -> None:  # noqa: ANN001 - DB-API hook
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
