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

metadata = MetaData()
# The ledger may share a database with the control store, so its Alembic history is its own.
VERSION_TABLE = "ledger_alembic_version"
# The advisory lock id that sequences appends on PostgreSQL ("veil" + 1 in ASCII).
SEQUENCER_LOCK = 0x7665696C01

# Execution option marking a connection whose transaction will write; on SQLite it takes the
# write lock at BEGIN so the reads that sequence an append cannot go stale under it.
WRITE_OPTION = "ledger_write"

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


def create_store(url: str) -> Engine:
    """An engine for `url` with the ledger's schema migrated to the newest revision."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    migrate(engine)
    return engine


def take_write_lock(connection: Connection) -> None:
    """Make this transaction the log's only writer until it ends, across processes.

    SQLite took its write lock at BEGIN IMMEDIATE; PostgreSQL takes a transaction-scoped
    advisory lock, so gateway replicas append one after another and never fork the log.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEQUENCER_LOCK})


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the ledger's tables to an Alembic revision, the newest by default."""
    config = alembic.config.Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, revision)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite otherwise defers BEGIN until the first write, so the reads that
        # decide an append (or a verify) would not share one snapshot.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        writing = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")
