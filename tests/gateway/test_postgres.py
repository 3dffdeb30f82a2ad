"""The whole gateway on PostgreSQL (VEIL_DATABASE_URL): control store and ledger on a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

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


def test_migrate_creates_both_schemas_on_an_empty_database(tmp_path, database_url) -> None:
    """What a deployment's migration Job runs: no home, no keys, only the database URL."""
    for _ in range(2):  # a second run (a re-deployed Job) changes nothing and succeeds
        migrated = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "migrate", "--home", str(tmp_path / "none")],
            env=dict(os.environ, VEIL_DATABASE_URL=database_url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrated.returncode == 0, migrated.stderr
        assert json.loads(migrated.stdout) == {"migrated": True}
    engine = sa.create_engine(database_url)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert {"principals", "grants", "ledger_entries", "ledger_checkpoints"} <= tables
    assert not (tmp_path / "none").exists()


PAID = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"


def test_two_gateways_on_one_database_charge_exactly_and_never_fork(tmp_path, database_url):
    """Two gateway processes share the PostgreSQL ledger; concurrent paid queries through both
    land once each, in one unforked log, and settle to the minor unit."""
    env = {"VEIL_DATABASE_URL": database_url, "VEIL_QUERIES_RUNNING": "8"}
    first = start_server(tmp_path / "home", env=env)
    second = start_server(tmp_path / "home", env=env, command="serve")
    try:
        servers = [first, second] * 8
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda server: server.query(PAID, who="fintech"), servers))
        assert [response.status_code for response in responses] == [200] * len(servers)
        bodies = [response.json() for response in responses]
        indices = sorted(body["receipt"]["ledger_index"] for body in bodies)
        assert len(set(indices)) == len(servers)
        with second.client("supervisor") as client:
            settlement = client.get("/v1/settlements").json()
            checkpoint = client.get("/v1/ledger/checkpoint").json()
    finally:
        stop_server(second)
        stop_server(first)
    charged = sum(body["cost"]["amount_minor"] for body in bodies)
    assert charged > 0
    assert settlement["total_charged_minor"] == charged
    assert sum(settlement["parties"].values()) == charged
    assert settlement["developers"] == {"fintech": charged}
    assert checkpoint["tree_size"] > indices[-1]
    verify = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "ledger", "verify", "--home", str(first.home)],
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["tree_size"] == checkpoint["tree_size"]


def _grant_with_quotas(store, method: str, quotas: dict):
    return store.create_grant(
        {"developer": "dev", "assets": ["a.b"], "purpose": "research", "methods": [method],
         "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2027-01-01T00:00:00Z",
         "quotas": quotas},
        ["prov"],
    )  # fmt: skip


def test_quota_reservations_on_postgres_never_overspend(database_url) -> None:
    from governance import ControlStore

    stores = [ControlStore(database_url), ControlStore(database_url)]  # two gateway processes
    grant = _grant_with_quotas(stores[0], "sql", {"queries_per_day": 5, "rows_scanned": 1_000})
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(
            pool.map(lambda i: stores[i % 2].reserve(grant, 150, "2026-06-01"), range(12))
        )
    # 1,000 rows allow six queries of 150, the daily quota five: five pass, whatever the order.
    assert outcomes.count(None) == 5
    assert set(outcomes) - {None} == {"queries_per_day"}
    assert stores[1].quota_use(grant.id, "2026-06-01") == {"queries_today": 5, "rows_scanned": 750}
    assert stores[1].reserve(grant, 150, "2026-06-02") is None  # a new day
    assert stores[1].reserve(grant, 150, "2026-06-02") == "rows_scanned"  # 1,050 > 1,000
    for store in stores:
        store.engine.dispose()


def test_held_job_envelopes_on_postgres_never_overspend(database_url) -> None:
    """Held jobs reserve as many queries as the quotas still allow, all at once: from two
    processes at the same time, what they reserve adds up to the quota exactly."""
    from governance import ControlStore

    stores = [ControlStore(database_url), ControlStore(database_url)]
    grant = _grant_with_quotas(stores[0], "job", {"queries_per_day": 250, "rows_scanned": 10_000})
    with ThreadPoolExecutor(8) as pool:
        reserved = list(
            pool.map(lambda i: stores[i % 2].reserve_envelope(grant, 30, 10, "2026-06-01"),
                     range(12))
        )  # fmt: skip
    # 12 jobs of up to 30 queries, 250 a day: 8 get 30, one the 10 left, the rest none.
    assert sum(reserved) == 250 and sorted(reserved)[-9:] == [10] + [30] * 8
    assert stores[1].quota_use(grant.id, "2026-06-01") == {
        "queries_today": 250, "rows_scanned": 2_500
    }  # fmt: skip
    # Rows bind next: 7,500 rows left allow 750 queries of 10, the day's 250 bind first.
    assert stores[1].reserve_envelope(grant, 300, 10, "2026-06-02") == 250
    assert stores[0].reserve_envelope(grant, 300, 100, "2026-06-02") == 0
    for store in stores:
        store.engine.dispose()


def test_privacy_spends_on_postgres_never_overspend(database_url) -> None:
    """Reservations from four processes at once on PostgreSQL add up to the budget exactly."""
    from tests.governance.test_budgets import concurrent_spends_never_overspend

    concurrent_spends_never_overspend(database_url)
