"""A job's work is bounded and shared fairly: one principal's jobs cannot hold every slot, the
gate has a deadline of its own, and a gate refusal names a rule and nothing the job chose."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from services.errors import Busy
from services.job_queue import JobQueue
from tests.gateway.test_jobs import run, submit, wait
from tests.support import Server, start_server, stop_server

PATIENCE_S = 60


class _Runner:
    """The queue only closes its runner; these tests run plain callables in its slots."""

    def close(self) -> None:
        pass


def test_a_full_job_queue_refuses_a_job_before_it_is_submitted() -> None:
    """A principal with too many jobs waiting, or a process with too many, is refused (Busy:
    429) at once, before its job is compiled or recorded; a place given back makes room."""
    queue = JobQueue(_Runner(), 1, 1, capacity=3, per_principal_waiting=2)  # type: ignore[arg-type]
    release, started, done = threading.Event(), threading.Event(), threading.Event()

    def hog() -> None:
        started.set()
        release.wait(PATIENCE_S)

    try:
        queue.enqueue(hog, "a0", "a")
        assert started.wait(PATIENCE_S)  # running, so no longer waiting
        queue.enqueue(lambda: None, "a1", "a")
        queue.enqueue(lambda: None, "a2", "a")
        with pytest.raises(Busy, match="2 jobs of one principal") as refused:
            queue.enqueue(lambda: None, "a3", "a")
        assert refused.value.code == "RATE_LIMITED"
        with queue.place("b"), pytest.raises(Busy, match="at most 3 jobs may wait"):
            queue.enqueue(lambda: None, "c1", "c")
        with pytest.raises(ValueError), queue.place("c"):
            raise ValueError("the submission was refused before it queued its job")
        queue.enqueue(done.set, "c1", "c")
        release.set()
        assert done.wait(PATIENCE_S)
    finally:
        release.set()
        queue.close()


def test_a_principal_over_its_share_waits_and_others_start() -> None:
    queue = JobQueue(_Runner(), 2, 1, capacity=8, per_principal_waiting=8)  # type: ignore[arg-type]
    release = threading.Event()
    started = {name: threading.Event() for name in ("a1", "a2", "a3", "b1")}

    def job(name: str) -> None:
        started[name].set()
        release.wait(PATIENCE_S)

    try:
        for name in ("a1", "a2", "a3"):
            queue.enqueue(lambda name=name: job(name), name, "a")
        assert started["a1"].wait(PATIENCE_S)
        queue.enqueue(lambda: job("b1"), "b1", "b")
        # b1 takes the second slot although a2 and a3 were queued before it.
        assert started["b1"].wait(PATIENCE_S)
        assert not started["a2"].is_set() and not started["a3"].is_set()
        release.set()
        # With the slots free again, a's jobs run in the order they came.
        assert started["a2"].wait(PATIENCE_S) and started["a3"].wait(PATIENCE_S)
    finally:
        release.set()
        queue.close()


def test_a_job_that_raises_leaves_its_slot_serving() -> None:
    queue = JobQueue(_Runner(), 1, 1, capacity=8, per_principal_waiting=8)  # type: ignore[arg-type]
    done = threading.Event()

    def broken() -> None:
        raise RuntimeError("a bug in one job")

    try:
        queue.enqueue(broken, "j1", "a")
        queue.enqueue(done.set, "j2", "a")
        assert done.wait(PATIENCE_S)
    finally:
        queue.close()


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
