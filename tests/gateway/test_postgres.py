"""The whole gateway on PostgreSQL (VEIL_DATABASE_URL): control store and ledger on a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from tests.support import start_server, stop_server

BASE_URL = os.environ.get("VEIL_TEST_POSTGRES_URL")


@pytest.fixture
def database_url():
    if not BASE_URL:
        if os.environ.get("CI"):
            pytest.fail("VEIL_TEST_POSTGRES_URL is not set; run the tests with `make test`")
        pytest.skip("set VEIL_TEST_POSTGRES_URL (make test does) to run against PostgreSQL")
    name = f"veil_gw_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(BASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield BASE_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as db:
        db.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_demo_query_and_verify_on_postgres(tmp_path, database_url) -> None:
    server = start_server(tmp_path / "home", env={"VEIL_DATABASE_URL": database_url})
    try:
        response = server.query("SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex")
        assert response.status_code == 200, response.json()
        index = response.json()["receipt"]["ledger_index"]
    finally:
        stop_server(server)
    assert not (server.home / "ledger.db").exists() and not (server.home / "control.db").exists()
    engine = sa.create_engine(database_url)
    with engine.connect() as db:
        stored = db.execute(
            sa.text("SELECT data FROM ledger_entries WHERE idx = :i"), {"i": index}
        ).scalar_one()
        assert json.loads(stored)["outcome"] == "released"
        assert db.execute(sa.text("SELECT count(*) FROM principals")).scalar_one() == 7
    engine.dispose()
    verify = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "ledger", "verify", "--home", str(server.home)],
        env=dict(os.environ, VEIL_DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
