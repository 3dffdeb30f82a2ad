"""Job leases between processes whose clocks disagree, on PostgreSQL: three real processes
share one control store, one on the kernel's clock holding a job, one whose clock is ten
minutes ahead and one ten minutes behind (tests/faults/wall_clock.c, as replicas on hosts with
drifting clocks). Every lease is taken and judged by the database's clock: the process ahead
fails no live job, and the one behind fails a dead process's job once its lease has run out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from governance import ControlStore
from governance.job_records import JOB_LOST, STAMP, JobRecords, JobStatus, jobs
from tests.faults.test_clock_faults import WallClock, wall_clock_library  # noqa: F401 - a fixture
from tests.gateway.test_postgres import database_url  # noqa: F401 - a fixture
from tests.support import ROOT

# How far the other processes' clocks are from the holder's: more than any lease here.
SKEW_S = 600
# The holder's lease while it lives (renewed or not, it outlasts the test's checks), and the
# one it takes last, so that its job is found soon once it is gone.
LIVE_LEASE_S = 120
LAST_LEASE_S = 1
PATIENCE_S = 60
GRANT = {"developer": "a", "assets": ["a.one"], "purpose": "research", "methods": ["job"],
         "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"}  # fmt: skip


def serve_records() -> None:
    """In a process of its own: answer one JSON command a line on the job records at
    $VEIL_LEASE_TEST_URL, as a gateway's job queue would call them."""
    records = JobRecords(sa.create_engine(os.environ["VEIL_LEASE_TEST_URL"]))
    for line in sys.stdin:
        command = json.loads(line)
        answer: Any
        match command["do"]:
            case "time":
                answer = time.time()
            case "claim":
                job = records.claim(command["owner"], per_principal=1, lease_s=command["lease_s"])
                answer = None if job is None else job.id
            case "renew":
                answer = sorted(records.renew(command["owner"], set(command["ids"]),
                                              command["lease_s"]))  # fmt: skip
            case "lose":
                answer = [job.id for job in records.lose_expired(held_span_s=LIVE_LEASE_S)]
        print(json.dumps(answer), flush=True)


class Process:
    """A process whose wall clock is `step_s` away from the kernel's, calling the records."""

    def __init__(self, url: str, clock: WallClock, step_s: int) -> None:
        clock.step(step_s)
        self.process = subprocess.Popen(
            [sys.executable, "-c",
             "from tests.faults.test_lease_clock import serve_records; serve_records()"],
            cwd=ROOT, env={**os.environ, **clock.env, "VEIL_LEASE_TEST_URL": url},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def ask(self, do: str, **arguments: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"do": do, **arguments}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the {do} command's process ended"
        return json.loads(line)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()


def _lease_until(store: ControlStore, job_id: str) -> float:
    with store.engine.connect() as db:
        return db.execute(sa.select(jobs.c.lease_until).where(jobs.c.id == job_id)).scalar_one()


def _lost_by(process: Process, job_id: str) -> None:
    """Wait until `process`'s reaping finds the job lost (it may find nothing for a while)."""
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        lost = process.ask("lose")
        if lost:
            assert lost == [job_id]
            return
        time.sleep(0.1)
    raise AssertionError(f"{job_id} was not found lost within {PATIENCE_S} s")


def test_leases_go_by_the_database_clock_whatever_each_process_clock_says(
    tmp_path: Path,
    wall_clock_library: Path,  # noqa: F811 - the fixture imported above
    database_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    store = ControlStore(database_url)
    records = JobRecords(store.engine)
    grant = store.create_grant(GRANT, ["prov"])
    running, waiting = (
        records.create("a", grant.id, "x = 1", reviewers=["prov"], review=[],
                       price_plan="standard")
        for _ in range(2)
    )  # fmt: skip
    for job in (running, waiting):
        records.open(job.id)
    clocks = {name: WallClock(wall_clock_library, tmp_path / f"{name}-step")
              for name in ("holder", "ahead", "behind")}  # fmt: skip
    holder = Process(database_url, clocks["holder"], 0)
    ahead = Process(database_url, clocks["ahead"], SKEW_S)
    behind = Process(database_url, clocks["behind"], -SKEW_S)
    try:
        # Their clocks are minutes apart (the shim is loaded), beyond any lease here.
        assert ahead.ask("time") - holder.ask("time") > SKEW_S - PATIENCE_S
        assert holder.ask("time") - behind.ask("time") > SKEW_S - PATIENCE_S

        assert holder.ask("claim", owner="holder", lease_s=LIVE_LEASE_S) == running.id
        assert holder.ask("renew", owner="holder", ids=[running.id], lease_s=LIVE_LEASE_S) == []
        # Ten minutes ahead, the holder's renewed lease is not over: the job is not lost, and
        # its developer's one share stays taken, so the next job waits.
        assert ahead.ask("lose") == []
        assert ahead.ask("claim", owner="ahead", lease_s=LIVE_LEASE_S) is None
        assert records.get(running.id).status is JobStatus.RUNNING
        assert holder.ask("renew", owner="holder", ids=[running.id], lease_s=LIVE_LEASE_S) == []

        # The holder's last renewal, then it is gone: ten minutes behind, the job is found
        # lost once its lease is over by the database's clock, not ten minutes later.
        assert holder.ask("renew", owner="holder", ids=[running.id], lease_s=LAST_LEASE_S) == []
        last_until = _lease_until(store, running.id)
        holder.kill()
        _lost_by(behind, running.id)
        lost = records.get(running.id)
        assert lost.status is JobStatus.FAILED and lost.error == {"code": JOB_LOST,
                                                                  "violations": []}  # fmt: skip
        assert lost.finished_at is not None
        finished = datetime.strptime(lost.finished_at, STAMP).replace(tzinfo=UTC)
        assert finished >= datetime.fromtimestamp(int(last_until), UTC)  # after, by that clock
        # The share is free again: the waiting job starts, in the process behind.
        assert behind.ask("claim", owner="behind", lease_s=LIVE_LEASE_S) == waiting.id
    finally:
        for process in (holder, ahead, behind):
            process.close()
        store.engine.dispose()
