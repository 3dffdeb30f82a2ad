"""Principals: who calls Veil, with which roles and for which organisation, and their API keys."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from database.prepared import Prepared
from governance.clock import utc_now
from governance.errors import ControlError, NotFound
from governance.tables import principals, suspensions

_BY_KEY_HASH = Prepared(
    sa.select(principals).where(principals.c.key_hash == sa.bindparam("key_hash"))
)


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


class PrincipalRecords:
    """Principals and their keys; a key is stored only as its digest."""

    engine: sa.Engine
    _lock: threading.Lock

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
            found = principal_row(db, principal_id)
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
            if principal_row(db, principal_id).status == "revoked":
                raise ControlError("the principal is already revoked")
            set_principal_status(db, principal_id, "revoked")
            # A suspension of a revoked principal has nothing left to hold.
            db.execute(
                suspensions.delete().where(
                    suspensions.c.kind == "principal",
                    suspensions.c.target == principal_id,
                )
            )
        found = self.principal(principal_id)
        assert found is not None
        return found

    def authenticate(self, api_key: str) -> Principal | None:
        with self.engine.connect() as db:
            row = _BY_KEY_HASH.first(db, {"key_hash": hash_key(api_key)})
        return _principal(row) if row else None

    def principal(self, principal_id: str) -> Principal | None:
        with self.engine.connect() as db:
            row = db.execute(sa.select(principals).where(principals.c.id == principal_id)).first()
        return _principal(row) if row else None

    def has_principals(self) -> bool:
        with self.engine.connect() as db:
            return db.execute(sa.select(sa.func.count()).select_from(principals)).scalar_one() > 0


def principal_row(db: sa.Connection, principal_id: str) -> Principal:
    row = db.execute(sa.select(principals).where(principals.c.id == principal_id)).first()
    if row is None:
        raise NotFound("no such principal")
    return _principal(row)


def set_principal_status(db: sa.Connection, principal_id: str, status: str) -> None:
    changed = db.execute(
        principals.update().where(principals.c.id == principal_id).values(status=status)
    )
    if changed.rowcount != 1:
        raise NotFound("no such principal")


def _principal(row: Any) -> Principal:
    return Principal(row.id, frozenset(json.loads(row.roles)), row.org, row.status)
