"""The ledger's tables (SQLAlchemy Core) and engine setup for SQLite or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import alembic.command
import alembic.config
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    text,
)

from database.prepared import Prepared
from database.turns import prepare_turn

metadata = MetaData()
# The ledger may share a database with the control store, so its Alembic history is its own.
VERSION_TABLE = "ledger_alembic_version"
# The advisory lock id that sequences appends on PostgreSQL ("veil" + 1 in ASCII).
SEQUENCER_LOCK = 0x7665696C01

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("data", Text, nullable=False),
    Column("leaf_hash", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    # The entry's month (from its hashed "at"), so a period is read without replaying the log;
    # outside the hash, so verify checks it against the data.
    Column("period", Text, nullable=True),
    Index("ix_ledger_entries_period", "period", "idx"),
)

ledger_checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", Text, nullable=False),
    Column("note", Text, nullable=False),
)

# The newest prefix of the log a verification recomputed and found sound, as a signed note,
# so the next one (in any process, after any restart) starts there. One row, `slot` "prefix".
ledger_verified = Table(
    "ledger_verified",
    metadata,
    Column("slot", Text, primary_key=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("note", Text, nullable=False),
    Column("verified_at", Text, nullable=False),
)


def create_store(url: str) -> Engine:
    """An engine for `url` with the ledger's schema migrated to the newest revision."""
    # Never a bound value in an error's text: entries are the parties' to read, not the log's.
    engine = create_engine(url, hide_parameters=True)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    migrate(engine)
    prepare_turn(engine)
    return engine


_BEGIN_IMMEDIATE = Prepared(text("BEGIN IMMEDIATE"))
_SEQUENCER_LOCK = Prepared(text("SELECT pg_advisory_xact_lock(:key)"))


def take_write_lock(connection: Connection) -> None:
    """Begin the transaction just begun on `connection` as the log's only writer until it ends,
    across processes.

    SQLite takes its write lock at BEGIN IMMEDIATE, so the reads that sequence an append cannot
    go stale under it; PostgreSQL takes a transaction-scoped advisory lock, so gateway replicas
    append one after another and never fork the log.
    """
    if connection.dialect.name == "sqlite":
        _BEGIN_IMMEDIATE.run(connection)
    elif connection.dialect.name == "postgresql":
        _SEQUENCER_LOCK.first(connection, {"key": SEQUENCER_LOCK})


def open_transaction(connection: Connection) -> None:
    """Begin in the database the transaction just begun on `connection`, so its statements
    share one snapshot (a verify) or commit together (a migration). PostgreSQL has begun it
    already; SQLite is left to begin here (see _configure_sqlite)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the ledger's tables to an Alembic revision, the newest by default."""
    config = alembic.config.Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        open_transaction(connection)
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, revision)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite begins no transaction of its own: take_write_lock() and open_transaction()
        # begin each where it starts. Not from the engine's "begin" event: a listener of that
        # kind makes SQLAlchemy dispatch events around every statement on the engine.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()
