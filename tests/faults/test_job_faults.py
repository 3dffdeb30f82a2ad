"""Jobs under process faults: a gateway killed (SIGKILL) while a job runs and another waits.
The waiting job is run by the next process; the running one is failed once, by the stated
rule, with its entry; nothing it was charged or spent is lost or charged twice; the ledger
verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.test_jobs import submit, wait
from tests.gateway.test_postgres import database_url  # noqa: F401 - a fixture
from tests.support import Server, start_server, stop_server

# A short lease, so that a killed process's jobs are found within seconds.
LEASE = {"VEIL_JOB_LEASE_S": "2", "VEIL_JOB_POLL_S": "0.2", "VEIL_JOB_CONCURRENCY": "1",
         "VEIL_JOB_TIMEOUT_S": "120", "VEIL_JOB_CPU_S": "120"}  # fmt: skip
# Asks one question (answered, charged and recorded), then runs until it is stopped.
ASKS_THEN_SPINS = """
answer = sql("SELECT department, COUNT(*) AS n FROM hospital.visits GROUP BY department")
while True:
    pass
"""
QUICK = 'publish("one", [["n", "count"]], [[1]])'


def _kill(server: Server) -> None:
    """SIGKILL the gateway process alone, as the kernel's OOM killer would: the processes it
    started must notice and end by themselves."""
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)


def _verify(home: Path, env: dict[str, str]) -> None:
    verified = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "ledger", "verify", "--home", str(home)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


def asked_and_spinning(server: Server, job_id: str) -> None:
    """Wait until the job has started and its question was answered and recorded."""
    wait(server, job_id, who="operator", until={"running"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(e.get("job_id") == job_id and e["type"] == "query" for e in server.ledger()):
            return
        time.sleep(0.2)
    raise AssertionError("the job's question was never recorded")


def _check_after(server: Server, spinning: str, waiting: str) -> None:
    lost = wait(server, spinning, who="operator")
    assert lost["status"] == "failed"
    assert lost["error"] == {"code": "JOB_LOST", "violations": []}
    assert wait(server, spinning)["error"]["code"] == "JOB_LOST"  # its developer sees it too
    finished = wait(server, waiting)
    assert finished["status"] == "succeeded", finished
    entries = server.ledger()
    kinds = Counter((e.get("job_id"), e["type"]) for e in entries if e.get("job_id"))
    # One entry per step, whichever process wrote it: no step lost, none written twice.
    assert kinds[(spinning, "job_submitted")] == kinds[(waiting, "job_submitted")] == 1
    assert kinds[(spinning, "job_started")] == kinds[(waiting, "job_started")] == 1
    assert kinds[(spinning, "query")] == 1  # charged as it ran, and never refunded
    assert kinds[(spinning, "job")] == kinds[(waiting, "job")] == 1
    (ending,) = [e for e in entries if e.get("job_id") == spinning and e["type"] == "job"]
    assert ending["outcome"] == "lost" and ending["error"] == "JOB_LOST"
    assert ending["cost"]["amount_minor"] == 0 and ending["usage"]["cpu_ms"] == 0


def test_a_gateway_killed_mid_job_leaves_its_queue_to_the_next_and_its_job_failed_once(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    first = start_server(home, env=LEASE)
    try:
        spinning = submit(first, ASKS_THEN_SPINS).json()["id"]
        asked_and_spinning(first, spinning)
        waiting = submit(first, QUICK).json()["id"]  # behind the developer's running job
        assert wait(first, waiting, who="operator", until={"queued"})["status"] == "queued"
    finally:
        _kill(first)
    second = start_server(home, env=LEASE)
    try:
        _check_after(second, spinning, waiting)
    finally:
        stop_server(second)
    _verify(home, {})


def test_two_gateways_share_one_queue_and_the_survivor_finishes_the_killed_ones_work(
    tmp_path: Path,
    database_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    """On PostgreSQL, with both serving: what the killed one claimed is found by the other."""
    env = {**LEASE, "VEIL_DATABASE_URL": database_url}
    home = tmp_path / "home"
    doomed = start_server(home, env=env)
    survivor = None
    try:
        spinning = submit(doomed, ASKS_THEN_SPINS).json()["id"]
        asked_and_spinning(doomed, spinning)
        waiting = submit(doomed, QUICK).json()["id"]
        # The second gateway starts now: the first has the job, and the developer's one share.
        survivor = start_server(home, env=env, command="serve")
        assert wait(survivor, waiting, who="operator", until={"queued"})["status"] == "queued"
        _kill(doomed)
        _check_after(survivor, spinning, waiting)
    finally:
        if doomed.process.poll() is None:
            _kill(doomed)
        if survivor is not None:
            stop_server(survivor)
    _verify(home, {"VEIL_DATABASE_URL": database_url})


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    """A killed gateway leaves no job or enclave process behind: each ends by itself."""
    yield
    deadline = time.monotonic() + 60
    while (orphans := _orphans()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not orphans, orphans


def _orphans() -> list[str]:
    """Veil's sandbox processes whose parent died (adopted by init)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if parent == 1 and "sandbox." in command:
            found.append(command)
    return found
