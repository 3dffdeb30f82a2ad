"""The ledger's stores for tests: a SQLite file, or the PostgreSQL `make test` starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

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
    url = _own_database(POSTGRES_URL)
    raw((url, key), f"DROP TABLE IF EXISTS {LEDGER_TABLES}")
    return url, key


def _own_database(base: str) -> str:
    """A database of this test process's own: pytest-xdist runs tests in several at once."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return base
    name = f"veil_ledger_{worker}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        found = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        )
        if found.first() is None:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False)


def raw(paths: tuple[str, Path], sql: str, **params: object) -> None:
    """Tamper with the store behind the ledger's back."""
    engine = create_engine(paths[0])
    with engine.begin() as connection:
        connection.execute(text(sql), params)
    engine.dispose()
