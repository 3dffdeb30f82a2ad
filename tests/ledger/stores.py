"""The ledger's stores for tests: a SQLite file, or the PostgreSQL `make test` starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ledger import generate_signing_key

# e.g. postgresql+psycopg://veil@/veil_test?host=/tmp; its ledger tables are dropped per test.
POSTGRES_URL = os.environ.get("VEIL_TEST_POSTGRES_URL")
LEDGER_TABLES = "ledger_entries, ledger_checkpoints, ledger_verified, ledger_alembic_version"


def store_paths(backend: str, folder: Path) -> tuple[str, Path]:
    """(store URL, signing key path) for an empty ledger on `backend`, sqlite or postgresql."""
    key = folder / "ledger.key"
    generate_signing_key(key)
    if backend == "sqlite":
        return f"sqlite:///{folder / 'ledger.db'}", key
    if not POSTGRES_URL:
        # `make test` starts a real PostgreSQL; outside it these run only when one is given.
        if os.environ.get("CI"):
            pytest.fail("VEIL_TEST_POSTGRES_URL is not set; run the tests with `make test`")
        pytest.skip("set VEIL_TEST_POSTGRES_URL (make test does) to run against PostgreSQL")
    raw((POSTGRES_URL, key), f"DROP TABLE IF EXISTS {LEDGER_TABLES}")
    return POSTGRES_URL, key


def raw(paths: tuple[str, Path], sql: str, **params: object) -> None:
    """Tamper with the store behind the ledger's back."""
    engine = create_engine(paths[0])
    with engine.begin() as connection:
        connection.execute(text(sql), params)
    engine.dispose()
