"""The control store: one database of governance records, brought to the newest schema."""

from __future__ import annotations

import threading
from pathlib import Path

import alembic.command
import alembic.config
import sqlalchemy as sa

from governance.grants import GrantRecords
from governance.principals import PrincipalRecords
from governance.quotas import QuotaRecords
from governance.sessions import SessionRecords
from governance.standing import StandingRecords
from governance.suspensions import SuspensionRecords


class ControlStore(
    PrincipalRecords,
    GrantRecords,
    QuotaRecords,
    SuspensionRecords,
    SessionRecords,
    StandingRecords,
):
    """Principals, grants, quotas, suspensions and console sessions; every change is one
    transaction."""

    def __init__(self, url: str) -> None:
        # Never a bound value in an error's text (a logged failure could carry a key's hash).
        self.engine = sa.create_engine(url, future=True, hide_parameters=True)
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        migrate(self.engine)
        self._lock = threading.Lock()


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to an Alembic revision, the newest by default."""
    config = alembic.config.Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, revision)


def _sqlite_pragmas(connection, _record) -> None:  # noqa: ANN001 - DB-API hook
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
