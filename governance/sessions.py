"""Console sessions: a signed-in principal's server-side session, made from its API key, with
its CSRF token and its expiry; and the answers it was shown, for download."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from governance.principals import Principal, hash_key
from governance.tables import metadata, principals

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("principal", sa.String(64), nullable=False, index=True),
    # The key the session was made from: a rotated or revoked key ends its sessions.
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.String(32), nullable=False),
)

# What a session was shown, so it can download it again without asking (or paying) twice.
console_answers = sa.Table(
    "console_answers",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("query_id", sa.String(40), primary_key=True),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("kept_at", sa.Float, nullable=False),
)

# Answers kept per session; older ones are forgotten.
ANSWERS_KEPT = 20
# Sessions one principal may hold at once; signing in again past this ends the oldest.
SESSIONS_KEPT = 20


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str
    expires_at: str


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionRecords:
    """Sessions live in the control store, so every gateway process knows them alike."""

    engine: sa.Engine

    def open_session(self, api_key: str, lifetime: timedelta) -> tuple[str, Session] | None:
        """A new session for the principal whose active key this is, or None; the token is
        returned once and stored only as its digest."""
        with self.engine.begin() as db:
            row = db.execute(
                sa.select(principals).where(principals.c.key_hash == hash_key(api_key))
            ).first()
            if row is None or row.status == "revoked":
                return None
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            expires = _stamp(datetime.now(UTC) + lifetime)
            db.execute(
                console_sessions.insert().values(
                    token_hash=_digest(token), principal=row.id, key_hash=row.key_hash,
                    csrf=csrf, expires_at=expires,
                )
            )  # fmt: skip
            mine = console_sessions.c.principal == row.id
            newest = (
                sa.select(console_sessions.c.token_hash)
                .where(mine)
                .order_by(console_sessions.c.expires_at.desc())
                .limit(SESSIONS_KEPT)
            )
            older = sa.select(console_sessions.c.token_hash).where(
                mine, console_sessions.c.token_hash.not_in(newest)
            )
            db.execute(console_answers.delete().where(console_answers.c.token_hash.in_(older)))
            db.execute(
                console_sessions.delete().where(mine, console_sessions.c.token_hash.not_in(newest))
            )
        principal = Principal(row.id, frozenset(json.loads(row.roles)), row.org, row.status)
        return token, Session(principal, csrf, expires)

    def session(self, token: str) -> Session | None:
        """The live session behind a token: unexpired, its principal not revoked, its key
        still the principal's; else None."""
        query = (
            sa.select(console_sessions, principals.c.roles, principals.c.org, principals.c.status)
            .join(principals, principals.c.id == console_sessions.c.principal)
            .where(
                console_sessions.c.token_hash == _digest(token),
                console_sessions.c.key_hash == principals.c.key_hash,
                console_sessions.c.expires_at > _stamp(datetime.now(UTC)),
                principals.c.status != "revoked",
            )
        )
        with self.engine.connect() as db:
            row = db.execute(query).first()
        if row is None:
            return None
        principal = Principal(row.principal, frozenset(json.loads(row.roles)), row.org, row.status)
        return Session(principal, row.csrf, row.expires_at)

    def close_session(self, token: str) -> None:
        """Sign out: the session and the answers it kept are gone."""
        digest = _digest(token)
        with self.engine.begin() as db:
            db.execute(console_answers.delete().where(console_answers.c.token_hash == digest))
            db.execute(console_sessions.delete().where(console_sessions.c.token_hash == digest))

    def forget_expired_sessions(self) -> None:
        now = _stamp(datetime.now(UTC))
        ended = sa.select(console_sessions.c.token_hash).where(console_sessions.c.expires_at <= now)
        with self.engine.begin() as db:
            db.execute(console_answers.delete().where(console_answers.c.token_hash.in_(ended)))
            db.execute(console_sessions.delete().where(console_sessions.c.expires_at <= now))

    def keep_answer(self, token: str, query_id: str, answer: dict) -> None:
        """Keep an answer the session was shown; beyond ANSWERS_KEPT the oldest go."""
        digest = _digest(token)
        mine = console_answers.c.token_hash == digest
        with self.engine.begin() as db:
            db.execute(
                console_answers.insert().values(
                    token_hash=digest, query_id=query_id, answer=json.dumps(answer),
                    kept_at=datetime.now(UTC).timestamp(),
                )
            )  # fmt: skip
            newest = (
                sa.select(console_answers.c.query_id)
                .where(mine)
                .order_by(console_answers.c.kept_at.desc())
                .limit(ANSWERS_KEPT)
            )
            db.execute(
                console_answers.delete().where(mine, console_answers.c.query_id.not_in(newest))
            )

    def kept_answer(self, token: str, query_id: str) -> dict | None:
        query = sa.select(console_answers.c.answer).where(
            console_answers.c.token_hash == _digest(token), console_answers.c.query_id == query_id
        )
        with self.engine.connect() as db:
            found = db.execute(query).scalar()
        return None if found is None else json.loads(found)
