"""The ledger's tables (SQLAlchemy Core) and engine setup for SQLite or PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Engine, MetaData, Table, Text, create_engine, event

metadata = MetaData()

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
)

ledger_checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", Text, nullable=False),
    Column("note", Text, nullable=False),
)


def create_store(url: str) -> Engine:
    """An engine for `url` with the ledger tables created if missing."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    metadata.create_all(engine)
    return engine


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
