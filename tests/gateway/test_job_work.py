"""A job's work is bounded and shared fairly over HTTP: one principal's jobs cannot hold every
slot, the gate has a deadline of its own, and a gate refusal names a rule and nothing the job
chose. The queue itself is tested in tests/governance/test_job_queue.py."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.gateway.test_jobs import run, submit, wait
from tests.support import Server, start_server, stop_server

PATIENCE_S = 60


@pytest.fixture(scope="module")
def slots(tmp_path_factory) -> Iterator[Server]:
    """Two job slots, one per principal, and a gate with no time at all."""
    server = start_server(
        tmp_path_factory.mktemp("slots") / "home",
        env={"VEIL_JOB_CONCURRENCY": "2", "VEIL_JOBS_IN_FLIGHT_PER_PRINCIPAL": "1",
             "VEIL_JOB_TIMEOUT_S": "300", "VEIL_JOB_CPU_S": "300",
             "VEIL_JOB_GATE_TIMEOUT_S": "0"},
    )  # fmt: skip
    yield server
    stop_server(server)


def status_of(server: Server, job_id: str, who: str) -> str:
    with server.client(who) as client:
        return client.get(f"/v1/jobs/{job_id}").json()["status"]


def wait_for(server: Server, job_id: str, who: str, status: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        if status_of(server, job_id, who) == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never became {status}")


def test_one_developer_filling_the_queue_does_not_hold_back_another(slots) -> None:
    grant = slots.grant(
        "fintech", ["hospital.visits"], ["city-hospital", "supervisor"], methods=("sql", "job")
    )
    hogs = [submit(slots, "while True:\n    pass").json()["id"] for _ in range(3)]
    try:
        wait_for(slots, hogs[0], "analyst", "running")
        honest = submit(slots, "x = 1", who="fintech", grant_id=grant)
        assert honest.status_code == 202, honest.json()
        assert wait(slots, honest.json()["id"], who="fintech", timeout=PATIENCE_S)["status"] == (
            "succeeded"
        )
        # The first hog still runs (nothing stops it), so the others are still waiting.
        assert [status_of(slots, job_id, "analyst") for job_id in hogs] == [
            "running", "queued", "queued"
        ]  # fmt: skip
    finally:
        with slots.client("analyst") as owner:
            for job_id in hogs:
                owner.post(f"/v1/jobs/{job_id}/cancel")
    assert {wait(slots, job_id)["status"] for job_id in hogs} == {"cancelled"}


def test_a_gate_out_of_time_refuses_the_job_with_a_stable_rule(slots) -> None:
    code = """
answer = sql("SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district")
publish("by_district", [["district", "label"], ["visits", "count"]], answer["rows"])
"""
    job = run(slots, code)
    assert job["status"] == "rejected"
    assert job["error"] == {"code": "OUTPUT_REJECTED", "violations": [{"rule": "gate_limit"}]}
    assert job["outputs"] is None


CHOOSER = """
n = sql("SELECT COUNT(*) AS n FROM hospital.visits")["rows"][0][0]
bit = n % 2 == PARITY
publish("t", [["a", "count"], ["b", "count"]], [["x", 50] if bit else [50, "x"]])
"""


def test_a_job_choosing_which_column_fails_by_a_value_sees_the_same_refusal(demo) -> None:
    """One job puts the bad cell under `a` exactly when the other puts it under `b`."""
    ended = [run(demo, CHOOSER.replace("PARITY", parity)) for parity in ("0", "1")]
    assert [job["status"] for job in ended] == ["rejected", "rejected"]
    assert ended[0]["error"] == ended[1]["error"]
    assert ended[0]["error"] == {
        "code": "OUTPUT_REJECTED",
        "violations": [{"rule": "count_not_whole"}],
    }
