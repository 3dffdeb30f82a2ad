"""The wall clock stepped backwards while the gateway serves: the gateway's own clock, stepped by
writing a file its preloaded `wall_clock.c` reads (monotonic time, sleeps and waits untouched,
as with a real step of the system clock).

The ledger takes entries whose times go back and still verifies; a quota used up is not given
again when the clock returns to the day before, nor an expired grant revived; a privacy budget
spent is not reset; a job running across the step is neither lost nor run twice, by its own
gateway or by a second one whose clock is an hour ahead of the first's: leases go by the
database's clock."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.faults.after_fault import (
    assert_answers_recorded,
    assert_log_whole,
    assert_verifies,
    ledger_items,
    released_queries,
)

# A short lease (renewed every third of it, so renewals under the stepped clock come soon),
# and jobs that ask once then spin, or finish at once: those of the job faults.
from tests.faults.test_job_faults import ASKS_THEN_SPINS, LEASE, QUICK, asked_and_spinning
from tests.gateway.test_jobs import submit, wait
from tests.gateway.test_postgres import database_url  # noqa: F401 - a fixture
from tests.support import Server, start_server, stop_server

HOUR = 3600
# Runs until it is stopped, asking nothing.
SPINS = """
while True:
    pass
"""
VISITS = "SELECT department, COUNT(*) AS n{turn} FROM hospital.visits GROUP BY department"
CLAIMS = "SELECT plan, COUNT(*) AS n{turn} FROM insurance.claims GROUP BY plan"


@dataclass(frozen=True)
class WallClock:
    """The clock one gateway sees: the kernel's, plus the seconds `step` last wrote."""

    library: Path
    steps: Path

    @property
    def env(self) -> dict[str, str]:
        return {"LD_PRELOAD": str(self.library), "VEIL_WALL_CLOCK_STEP_FILE": str(self.steps)}

    def step(self, seconds: int) -> None:
        """Put the clock `seconds` away from the kernel's, from the gateway's next reading on."""
        staged = self.steps.with_suffix(".next")
        staged.write_text(f"{seconds:+d}\n")
        staged.replace(self.steps)


@pytest.fixture(scope="module")
def wall_clock_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc")
    if compiler is None:
        raise RuntimeError("no C compiler on PATH to build tests/faults/wall_clock.c")
    library = tmp_path_factory.mktemp("wall-clock") / "libwallclock.so"
    source = Path(__file__).with_name("wall_clock.c")
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"], check=True
    )
    return library


@pytest.fixture
def wall_clock(wall_clock_library: Path, tmp_path: Path) -> WallClock:
    clock = WallClock(wall_clock_library, tmp_path / "clock-step")
    clock.step(0)
    return clock


def _developer(server: Server, name: str) -> None:
    """A developer of an organisation of its own, with no grant yet; its key joins the keys."""
    with server.client("admin") as admin:
        made = admin.post("/v1/principals", json={"id": name, "roles": ["developer"],
                                                   "org": f"{name}-org"})  # fmt: skip
    assert made.status_code == 201, made.json()
    server.keys[name] = made.json()["api_key"]


def _grant(server: Server, who: str, asset: str, provider: str, **terms: object) -> str:
    """An approved public-welfare grant on one asset, with the terms given (dates as datetimes)."""
    body = {key: v.isoformat() if isinstance(v, datetime) else v for key, v in terms.items()}
    with server.client(who) as client:
        asked = client.post(
            "/v1/grants",
            json={"assets": [asset], "purpose": "public_welfare", "scenario": "s",
                  "methods": ["sql", "job"], **body},
        )  # fmt: skip
    assert asked.status_code == 201, asked.json()
    server.approve(asked.json()["id"], provider, "supervisor")
    return asked.json()["id"]


def _ask(server: Server, template: str, turn: int, who: str) -> tuple[int, dict]:
    response = server.query(template.format(turn=turn), who=who)
    return response.status_code, response.json()


def _refused_for(body: dict) -> list[str]:
    return [violation["rule"] for violation in body.get("error", {}).get("violations", [])]


def _budget(server: Server, who: str) -> tuple[str, dict[str, float]]:
    """The period the gateway's clock is in, and ε spent per asset in it by `who`'s org."""
    with server.client(who) as client:
        report = client.get("/v1/budgets").json()
    return report["period"], {a["asset"]: a["epsilon_spent"] for a in report["assets"]}


def test_a_clock_stepped_back_across_midnight_gives_no_second_quota_or_grant(
    tmp_path: Path, wall_clock: WallClock
) -> None:
    """The clock starts 20 minutes into the first day of next month (UTC), steps an hour on,
    then two hours back (into the last day of this month), then forward again."""
    now = datetime.now(UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)
    start = month.replace(day=1) + timedelta(minutes=20)
    ahead = int((start - now).total_seconds())
    wall_clock.step(ahead)
    # Answered under differential privacy, so that each answer spends budget.
    server = start_server(tmp_path / "home", env=wall_clock.env, thresholds=False)
    answers: list[dict] = []
    try:
        _developer(server, "clockdev")
        since = start - timedelta(days=2)
        _grant(server, "clockdev", "hospital.visits", "city-hospital", valid_from=since,
               valid_until=start + timedelta(days=365), quotas={"queries_per_day": 2})  # fmt: skip
        ending = _grant(server, "clockdev", "insurance.claims", "insurer", valid_from=since,
                        valid_until=start + timedelta(minutes=30))  # fmt: skip
        for turn in (1, 2):
            status, answer = _ask(server, VISITS, turn, "clockdev")
            assert status == 200, answer
            answers.append(answer)
        status, refused = _ask(server, VISITS, 3, "clockdev")
        assert (status, _refused_for(refused)) == (429, ["quota_exhausted"])
        status, answer = _ask(server, CLAIMS, 4, "clockdev")
        assert status == 200, answer
        answers.append(answer)
        period, spent = _budget(server, "clockdev")
        assert period == start.strftime("%Y-%m") and spent["hospital.visits"] > 0

        wall_clock.step(ahead + HOUR)  # past the second grant's term: it expires
        status, refused = _ask(server, CLAIMS, 5, "clockdev")
        assert status == 403 and "grant_expired" in _refused_for(refused), refused

        wall_clock.step(ahead - HOUR)  # back to yesterday, 23:20, before that term ended
        status, refused = _ask(server, VISITS, 6, "clockdev")
        assert (status, _refused_for(refused)) == (429, ["quota_exhausted"])
        status, refused = _ask(server, CLAIMS, 7, "clockdev")
        assert status == 403, refused  # the expired grant stays expired

        wall_clock.step(ahead + 60)  # today again
        status, refused = _ask(server, VISITS, 8, "clockdev")
        assert (status, _refused_for(refused)) == (429, ["quota_exhausted"])
        assert _budget(server, "clockdev") == (period, spent)  # not reset, nothing lost

        items = ledger_items(server)
        entries = [item["data"] for item in items]
        stamps = [entry["at"] for entry in entries if "at" in entry]
        assert any(later < earlier for earlier, later in pairwise(stamps))  # it went back
        expiries = [e for e in entries if e["type"] == "grant_expired" and e["grant"] == ending]
        assert len(expiries) == 1
        assert_log_whole(server, items)
        released_queries(items)
        assert_answers_recorded(items, answers)
    finally:
        stop_server(server)
    assert_verifies(server.home)


def _lease(url: str, job_id: str) -> tuple[str | None, float | None, float]:
    """The job's lease as the database holds it (its owner and end), and that database's time."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as db:
            query = sa.text(
                "SELECT lease_owner, lease_until, CAST(EXTRACT(epoch FROM clock_timestamp())"
                " AS FLOAT) FROM jobs WHERE id = :id"
            )
            owner, until, now = db.execute(query, {"id": job_id}).one()
            return owner, until, now
    finally:
        engine.dispose()


def _renewed_twice(url: str, job_id: str) -> tuple[str | None, float | None, float]:
    """Wait until the job's lease is renewed twice from now on, so that the renewing process's
    reaping pass ran between the two (it follows each renewal); returns the lease as then."""
    deadline = time.monotonic() + 60
    seen, renewals = _lease(url, job_id)[1], 0
    while time.monotonic() < deadline:
        owner, until, now = _lease(url, job_id)
        if until != seen:
            seen, renewals = until, renewals + 1
            if renewals == 2:
                return owner, until, now
        time.sleep(0.05)
    raise AssertionError(f"the lease of {job_id} was not renewed twice")


def test_a_clock_stepped_back_under_a_running_job_never_loses_or_runs_a_job_twice(
    tmp_path: Path,
    wall_clock: WallClock,
    database_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    """On PostgreSQL. The first gateway's clock steps an hour back while a job runs there and
    another waits behind it: its own gateway neither loses nor restarts either, and renews the
    lease by the database's clock. A second gateway then starts on the kernel's clock, an hour
    ahead of the first: it reaps while the first renews, and neither fails the running job nor
    starts the waiting one, whose developer's share stays taken. Once the first is killed, the
    second finds the job lost after its lease and runs the waiting job once. No step runs or
    is recorded twice."""
    # Long enough that two spinning jobs on a busy machine do not delay a renewal past it.
    env = {**LEASE, "VEIL_JOB_LEASE_S": "6", "VEIL_DATABASE_URL": database_url}
    home = tmp_path / "home"
    first = start_server(home, env={**env, **wall_clock.env})
    second = None
    try:
        _developer(first, "clockdev")
        _developer(first, "otherdev")
        for who, asset, provider in (
            ("clockdev", "hospital.visits", "city-hospital"),
            ("otherdev", "insurance.claims", "insurer"),
        ):
            _grant(first, who, asset, provider,
                   valid_from=datetime.now(UTC) - timedelta(days=2),
                   valid_until=datetime.now(UTC) + timedelta(days=365))  # fmt: skip
        spinning = submit(first, ASKS_THEN_SPINS, who="clockdev").json()["id"]
        asked_and_spinning(first, spinning)
        waiting = submit(first, QUICK, who="clockdev").json()["id"]
        assert wait(first, waiting, who="operator", until={"queued"})["status"] == "queued"

        wall_clock.step(-HOUR)
        # Renewed (and reaped) under the stepped clock, the lease still ends by the database's.
        first_owner, until, now = _renewed_twice(database_url, spinning)
        assert until is not None and abs(until - now) < HOUR / 2
        assert wait(first, spinning, who="operator", until={"running"})["status"] == "running"
        assert wait(first, waiting, who="operator", until={"queued"})["status"] == "queued"

        second = start_server(home, env=env, command="serve")
        # The first's one slot is taken: another developer's job runs in the second, whose
        # renewals of it show that the second reaped in between.
        second.keys.update(first.keys)  # the developers made since the demo
        other = submit(second, SPINS, who="otherdev").json()["id"]
        assert wait(second, other, who="operator", until={"running"})["status"] == "running"
        second_owner, _, _ = _renewed_twice(database_url, other)
        assert second_owner not in (None, first_owner)
        assert wait(second, spinning, who="operator", until={"running"})["status"] == "running"
        assert wait(second, waiting, who="operator", until={"queued"})["status"] == "queued"
        with second.client("operator") as operator:
            assert operator.post(f"/v1/jobs/{other}/cancel").status_code == 200
        assert wait(second, other, who="operator")["status"] == "cancelled"

        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=30)
        ended = wait(second, spinning, who="operator")
        assert ended["status"] == "failed" and ended["error"]["code"] == "JOB_LOST", ended
        assert wait(second, waiting, who="operator")["status"] == "succeeded"
        steps = Counter((e.get("job_id"), e["type"]) for e in second.ledger() if e.get("job_id"))
        for job in (spinning, waiting, other):
            assert steps[(job, "job_submitted")] == steps[(job, "job_started")] == 1
            assert steps[(job, "job")] == 1
        assert steps[(spinning, "query")] == 1
        items = ledger_items(second)
        assert_log_whole(second, items)
        released_queries(items)
    finally:
        if second is not None:
            stop_server(second)
        if first.process.poll() is None:
            stop_server(first)
    assert_verifies(home, {"VEIL_DATABASE_URL": database_url})
