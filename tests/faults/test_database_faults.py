"""PostgreSQL crashed (`pg_ctl stop -m immediate`) under a gateway answering paid queries from
several clients, then started again. While it is down every request is refused with a clean
503 and a stable code, nothing is released without its entry, and /readyz is 503; once it is
back the same gateway, untouched, answers again and is ready; every answer has its entry,
nothing is lost or charged twice, and the log verifies.

Each test runs a PostgreSQL server of its own, so the shared one (scripts/with-postgres) is
never stopped."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.faults.after_fault import (
    Clients,
    assert_answers_recorded,
    assert_log_whole,
    assert_settled,
    assert_verifies,
    ledger_items,
    ready,
    released_queries,
    settlement,
)
from tests.support import Server, free_port, start_server, stop_server, wait_until


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


@dataclass
class Postgres:
    """A PostgreSQL server of the test's own on loopback, which the test may crash."""

    bin: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://veil@127.0.0.1:{self.port}/veil"

    def run(self, tool: str, *args: str) -> None:
        # As root (CI containers), PostgreSQL runs as its own user, as scripts/with-postgres.
        user = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        subprocess.run(
            [*user, str(self.bin / tool), *args], check=True, capture_output=True, timeout=120
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.data} -c fsync=off"
        )
        self.run("pg_ctl", "-D", str(self.data / "db"), "-l", str(self.data / "log"), "-w",
                 "-o", options, "start")  # fmt: skip

    def crash(self) -> None:
        """Stop at once, as a crash would: no checkpoint, recovery from the WAL at the start."""
        self.run("pg_ctl", "-D", str(self.data / "db"), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        with suppress(subprocess.CalledProcessError):  # not running
            self.run("pg_ctl", "-D", str(self.data / "db"), "-m", "fast", "-w", "stop")


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    binaries = _pg_bin()
    if binaries is None:
        if os.environ.get("CI"):
            pytest.fail("no PostgreSQL binaries; run the tests with `make test`")
        pytest.skip("no PostgreSQL binaries (scripts/with-postgres installs them)")
    # Not tmp_path: as root the server runs as postgres, which cannot enter pytest's folders.
    data = Path(tempfile.mkdtemp(prefix="veil-pg-fault."))
    if os.getuid() == 0:
        shutil.chown(data, "postgres")
    server = Postgres(binaries, data, free_port())
    try:
        server.run("initdb", "-D", str(data / "db"), "-U", "veil", "--auth=trust", "-E", "UTF8")
        server.start()
        server.run("createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U", "veil", "veil")
        yield server
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


# Paid questions (fintech's commercial grant), a new column name each turn.
ASKERS = [
    ("fintech", lambda turn: f"SELECT plan, COUNT(*) AS n{turn} FROM insurance.claims GROUP BY plan"),
] * 4  # fmt: skip
PROBE = ("fintech", "SELECT plan, COUNT(*) AS probe FROM insurance.claims GROUP BY plan")
# What a client may be told while the database is out of reach: the control store or the
# ledger (the same database) could not be reached. Exactly these words, nothing of the engine's.
UNAVAILABLE = [
    (503, {"error": {"code": code, "message": message, "violations": []}})
    for code, message in [
        ("STORE_UNAVAILABLE", "the control store could not be reached; nothing was released"),
        ("LEDGER_UNAVAILABLE", "the ledger could not record this request"),
    ]
]
ANSWERS_BEFORE = 8
REFUSALS_DURING = 3
ANSWERS_AFTER = 2


def test_postgres_crashed_and_restarted_under_paid_queries(tmp_path: Path, postgres: Postgres):
    env = {"VEIL_DATABASE_URL": postgres.url}
    server = start_server(tmp_path / "home", env=env)
    clients = Clients(server, ASKERS)
    try:
        clients.start()
        clients.wait_for(
            "answers before the fault",
            lambda asked: sum(a.status == 200 for a in asked) >= ANSWERS_BEFORE,
        )
        postgres.crash()
        clients.phases.fault.set()
        clients.wait_for(
            "refusals while PostgreSQL is down",
            lambda asked: sum(a.during for a in asked) >= REFUSALS_DURING * len(ASKERS),
        )
        assert ready(server) == 503
        clients.phases.repair.set()
        postgres.start()
        wait_until("an answer once PostgreSQL is back", lambda: clients.ask(*PROBE).status == 200)
        assert ready(server) == 200
        clients.phases.recovered.set()
        clients.wait_for(
            "answers after the restart",
            lambda asked: (
                sum(a.sent_after_recovery and a.status == 200 for a in asked)
                >= ANSWERS_AFTER * len(ASKERS)
            ),
        )
        clients.stop()
        items = ledger_items(server)
        assert_log_whole(server, items)
        settled = settlement(server)
        # The request metrics count the refusals under the status the clients were sent.
        counted = posts_by_status(server.metrics())
    finally:
        clients.phases.stop.set()
        stop_server(server)
    asked = clients.snapshot()
    sent = Counter(str(a.status) for a in asked)
    assert counted.get("500", 0) == 0 and counted.get("503", 0) >= sent["503"] > 0
    answers = [a.body for a in asked if a.status == 200]
    # While it is down: a clean 503 and a stable code, never an answer, never engine text.
    assert [a for a in asked if a.during and (a.status, a.body) not in UNAVAILABLE] == []
    # Around the crash and the restart too: what is not an answer is one of those refusals.
    assert [a for a in asked if a.status != 200 and (a.status, a.body) not in UNAVAILABLE] == []
    assert [a for a in asked if a.sent_after_recovery and a.status != 200] == []
    assert_answers_recorded(items, answers)
    released = released_queries(items)
    # A commit the crash cut off may have landed with its client told 503: such a query is
    # charged once, like any that ran, and only one of those in flight at the crash can be.
    unanswered = set(released) - {answer["query_id"] for answer in answers}
    in_flight = [
        a for a in asked if not a.sent_during and a.answered_before_repair and a.status != 200
    ]
    assert len(unanswered) <= len(in_flight)
    charged = sum(item["data"]["cost"]["amount_minor"] for item in released.values())
    assert charged >= sum(answer["cost"]["amount_minor"] for answer in answers) > 0
    assert_settled(settled, charged)
    assert_verifies(server.home, env)


# Private (DP) questions, paid: the demo as shipped answers them under differential privacy.
WARM = "SELECT COUNT(*) AS n FROM insurance.claims"
PRIVATE = "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan"
LOST = "SELECT plan, COUNT(*) AS lost FROM insurance.claims GROUP BY plan"
PENDING = "SELECT COUNT(*) FROM private_answers WHERE answer IS NULL"
SPENT = (
    "SELECT epsilon_micro FROM privacy_spends WHERE asset = 'insurance.claims' AND spender <> '*'"
)


def test_postgres_restarted_while_a_private_query_holds_its_reservation(
    tmp_path: Path, postgres: Postgres
) -> None:
    """The enclave's workers are stopped (SIGSTOP) so that a query waits, deterministically,
    after its budget was reserved and before its answer. PostgreSQL crashes and starts again
    meanwhile: the reservation survives, the answer is released with its entry once the workers
    go on, and asking again reuses it. Then a second question's answer comes while PostgreSQL
    is down: a clean 503, nothing released or recorded, and its spend is never given back (the
    question stays in flight until it is stale, as after a gateway killed there)."""
    env = {"VEIL_DATABASE_URL": postgres.url, "VEIL_QUERY_TIMEOUT_S": "30"}
    server = start_server(tmp_path / "home", env=env, thresholds=False)
    store = sa.create_engine(postgres.url, poolclass=sa.NullPool)
    try:
        warm = server.query(WARM, who="fintech")  # every worker started; one answer spent
        assert warm.status_code == 200 and warm.json()["privacy"]["mode"] == "dp", warm.json()
        with _held_after_reservation(server, store, PRIVATE) as asking:
            reserved = _read(store, SPENT)
            postgres.crash()
            postgres.start()
            # Between its reservation and its answer through both, and nothing refunded.
            assert _read(store, PENDING) == 1 and _read(store, SPENT) == reserved
            wait_until("/readyz 200 once PostgreSQL is back", lambda: ready(server) == 200)
        first = asking.result()
        assert first.status_code == 200, first.json()
        again = server.query(PRIVATE, who="fintech")
        assert again.status_code == 200, again.json()
        assert _read(store, SPENT) == reserved

        with _held_after_reservation(server, store, LOST) as asking:
            reserved_again = _read(store, SPENT)
            postgres.crash()
        lost = asking.result()
        assert (lost.status_code, lost.json()) in UNAVAILABLE
        postgres.start()
        wait_until("/readyz 200 once PostgreSQL is back", lambda: ready(server) == 200)
        assert _read(store, PENDING) == 1 and _read(store, SPENT) == reserved_again
        retried = server.query(LOST, who="fintech")
        assert retried.status_code == 409, retried.json()
        assert retried.json()["error"]["violations"] == [{"rule": "question_in_flight"}]
        assert _read(store, SPENT) == reserved_again

        items = ledger_items(server)
        assert_log_whole(server, items)
        settled = settlement(server)
    finally:
        store.dispose()
        stop_server(server)
    first, again = first.json(), again.json()
    assert not first["privacy"]["reused"] and again["privacy"]["reused"]
    assert again["rows"] == first["rows"] and again["privacy"]["epsilon"] == 0
    # Spent once for each question answered afresh, never for the repeat; the lost one spent.
    epsilon = first["privacy"]["epsilon"]
    assert reserved == round((warm.json()["privacy"]["epsilon"] + epsilon) * 1e6)
    assert reserved_again == reserved + round(epsilon * 1e6)
    answers = [warm.json(), first, again]
    assert_answers_recorded(items, answers)
    assert set(released_queries(items)) == {answer["query_id"] for answer in answers}
    charged = sum(answer["cost"]["amount_minor"] for answer in answers)
    assert charged > 0
    assert_settled(settled, charged)
    assert_verifies(server.home, env)


@contextmanager
def _held_after_reservation(
    server: Server, store: sa.Engine, sql: str
) -> Iterator[Future[httpx.Response]]:
    """Ask `sql` as fintech with the enclave's workers stopped, so that it waits after its
    budget was reserved and before its answer until the block ends; its response to come."""
    workers = _enclave_workers(server)
    assert workers
    pending = _read(store, PENDING)
    with ThreadPoolExecutor(1) as pool:
        try:
            for pid in workers:
                os.kill(pid, signal.SIGSTOP)
            asking = pool.submit(server.query, sql, "fintech")
            wait_until("the reservation", lambda: _read(store, PENDING) == pending + 1)
            yield asking
        finally:
            for pid in workers:
                with suppress(ProcessLookupError):  # stopped past its time, and killed
                    os.kill(pid, signal.SIGCONT)


def _read(store: sa.Engine, sql: str) -> int:
    with store.connect() as db:
        return db.execute(sa.text(sql)).scalar_one()


def _enclave_workers(server: Server) -> list[int]:
    """The gateway's enclave worker processes (multiprocessing's spawned children)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if parent == server.process.pid and "multiprocessing.spawn" in command:
            found.append(int(stat.parent.name))
    return found


def posts_by_status(metrics: str) -> dict[str, float]:
    """veil_http_requests_total of POSTs, by status (a refusal in the request gate is counted
    before a route is matched)."""
    counted: dict[str, float] = {}
    pattern = r"^veil_http_requests_total\{([^}]*)\} (\S+)$"
    for labels, value in re.findall(pattern, metrics, re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if found.get("method") == "POST":
            counted[found["status"]] = counted.get(found["status"], 0) + float(value)
    return counted
