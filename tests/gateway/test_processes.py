"""Several gateway processes on one port behave as one Veil: metrics summed across them,
policy reloads, emergency stops, registrations and destructions reaching every process."""

from __future__ import annotations

import re
import shutil
import time

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.support import (
    HOUSEHOLDS,
    OPERATOR_POLICY,
    Server,
    register_households,
    start_server,
    stop_server,
)

SQL = "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan"
FREEZE = """package veil.authz

import rego.v1

deny contains "maintenance_freeze" if input.scope == "query:run"
"""
# Enough fresh connections that the kernel hands some to each process.
ROUNDS = 24


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("processes")
    operator_dir = root / "operator-policies"
    operator_dir.mkdir()
    shutil.copy(OPERATOR_POLICY / "tests.rego", operator_dir)
    server = start_server(
        root / "home",
        env={"VEIL_PROCESSES": "2", "VEIL_POLICY_DIR": str(operator_dir)},
    )  # fmt: skip
    try:
        _await_both_processes(server)
        yield server, operator_dir
    finally:
        stop_server(server)


def _await_both_processes(server: Server) -> None:
    log = next(server.home.parent.glob(f"{server.home.name}-demo-*.log"))
    deadline = time.monotonic() + 120
    while log.read_text().count("Application startup complete") < 2:
        assert time.monotonic() < deadline, "the second gateway process did not start"
        time.sleep(0.25)


def _scrape(server: Server) -> str:
    return server.metrics()  # a new connection each time


def _sample(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{name}\{{{labels}\}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_every_scrape_sums_the_counts_of_every_process(served) -> None:
    server, _ = served
    released = 'outcome="released"'
    before = _sample(_scrape(server), "veil_queries_total", released)
    for _ in range(ROUNDS):
        assert server.query(SQL).status_code == 200
    # Each scrape lands on either process; each must see the other's answers too.
    scrapes = [_scrape(server) for _ in range(10)]
    assert {_sample(text, "veil_queries_total", released) - before for text in scrapes} == {ROUNDS}
    route = 'method="POST",route="/v1/queries",status="200"'
    counts = {_sample(text, "veil_http_requests_total", route) for text in scrapes}
    assert len(counts) == 1 and counts.pop() >= ROUNDS


def test_gauges_read_the_same_from_every_process(served) -> None:
    server, _ = served
    deadline = time.monotonic() + 60
    scrapes = [_scrape(server) for _ in range(6)]
    # Each process verifies the ledger on its own; the worst result any live one had stands.
    while {
        re.search(r"^veil_ledger_verification_ok (\S+)$", t, re.M) is not None for t in scrapes
    } != {True}:
        assert time.monotonic() < deadline, "no process reported a verification"
        time.sleep(0.5)
        scrapes = [_scrape(server) for _ in range(6)]
    assert {_gauge(text, "veil_ledger_verification_ok") for text in scrapes} == {1.0}
    with server.client("supervisor") as client:
        size = client.get("/v1/ledger/checkpoint").json()["tree_size"]
    assert {_gauge(text, "veil_ledger_entries") for text in scrapes} == {size}


def _gauge(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, name
    return float(match.group(1))


def test_a_policy_reload_reaches_every_process(served) -> None:
    server, operator_dir = served
    (operator_dir / "freeze.rego").write_text(FREEZE)
    try:
        assert all(server.query(SQL).status_code == 200 for _ in range(6)), "only on reload"
        with server.client("operator") as client:
            reloaded = client.post("/v1/policies/reload")
        assert reloaded.status_code == 200
        frozen = [server.query(SQL) for _ in range(ROUNDS)]
        assert {response.status_code for response in frozen} == {403}
        assert {r.json()["error"]["violations"][0]["rule"] for r in frozen} == {
            "maintenance_freeze"
        }
        digests = set()
        for _ in range(8):
            with server.client("operator") as client:
                digests.add(client.get("/v1/policies").json()["digest"])
        assert digests == {reloaded.json()["digest"]}
    finally:
        (operator_dir / "freeze.rego").unlink()
        with server.client("operator") as client:
            assert client.post("/v1/policies/reload").status_code == 200
    assert all(server.query(SQL).status_code == 200 for _ in range(ROUNDS))


def test_an_emergency_stop_holds_in_every_process(served) -> None:
    server, _ = served
    with server.client("supervisor") as client:
        stopped = client.post(
            "/v1/emergency/suspend", json={"principal": "analyst", "reason": "drill"}
        )
    assert stopped.status_code == 200, stopped.json()
    try:
        assert {server.query(SQL).status_code for _ in range(ROUNDS)} == {403}
    finally:
        with server.client("supervisor") as client:
            resumed = client.post(
                "/v1/emergency/resume", json={"principal": "analyst", "reason": "drill over"}
            )
        assert resumed.status_code == 200, resumed.json()
    assert {server.query(SQL).status_code for _ in range(ROUNDS)} == {200}


def _lifecycles(server: Server, asset_id: str) -> set[str]:
    seen = set()
    for _ in range(ROUNDS):
        with server.client("analyst") as client:
            response = client.get(f"/v1/assets/{asset_id}")
        assert response.status_code == 200
        seen.add(response.json().get("lifecycle", "active"))
    return seen


def test_a_registration_and_a_destruction_reach_every_process(served) -> None:
    server, _ = served
    registered = register_households(server, 200)
    assert registered.status_code == 201, registered.json()
    assert _lifecycles(server, HOUSEHOLDS["id"]) == {"active"}
    grant = server.grant("analyst", [HOUSEHOLDS["id"]], ["city-hospital", "supervisor"])
    households = "SELECT size, COUNT(*) AS n FROM city.households GROUP BY size"
    answers = [server.query(households, grant_id=grant) for _ in range(ROUNDS)]
    assert {response.status_code for response in answers} == {200}
    assert [response.json()["rows"] for response in answers] == [
        [[0, 50], [1, 50], [2, 50], [3, 50]]
    ] * ROUNDS

    with server.client("operator") as client:
        destroyed = client.request(
            "DELETE", f"/v1/assets/{HOUSEHOLDS['id']}", json={"reason": "end of the pilot"}
        )
        assert destroyed.status_code == 200, destroyed.json()
    assert _lifecycles(server, HOUSEHOLDS["id"]) == {"destroyed"}
    refused = {server.query(households, grant_id=grant).status_code for _ in range(ROUNDS)}
    assert 200 not in refused


def test_each_process_answered_some_of_the_work(served) -> None:
    """The tests above prove sharing only if both processes served: their own files say so."""
    server, _ = served
    answered = []
    for path in (server.home / "metrics").glob("counter_*.db"):
        metrics = MultiProcessCollector.merge([str(path)], accumulate=True)
        answered.append(
            sum(sample.value for metric in metrics if metric.name == "veil_queries"
                for sample in metric.samples if sample.name == "veil_queries_total")
        )  # fmt: skip
    assert len([count for count in answered if count > 0]) >= 2
