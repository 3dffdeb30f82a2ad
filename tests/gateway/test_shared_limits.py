"""A principal's query limit (VEIL_QUERIES_PER_PRINCIPAL) holds across gateway processes: two
gateways on one home (SQLite) and two on one PostgreSQL database. While the analyst's query
runs in one, its query in the other waits and is refused at the deadline, another principal
is answered meanwhile, and the slot comes free when the first query finishes or when the
process holding it is killed.

A query is kept running, deterministically, by stopping (SIGSTOP) the first gateway's enclave
workers while it is in the enclave."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.gateway.test_postgres import database_url  # noqa: F401 - a fixture
from tests.support import Server, start_server, stop_server, wait_until

PATIENCE_S = 60
WAIT_S = 2
PAID = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"


def question(turn: int) -> str:
    """The analyst's question, a new one each turn (nothing answered from a cache)."""
    return f"SELECT plan, COUNT(*) AS n{turn} FROM insurance.claims GROUP BY plan"


@pytest.fixture(params=["sqlite", "postgresql"])
def shared(request) -> Iterator[dict[str, str]]:
    """The settings two gateways share: one home's SQLite files, or one PostgreSQL database."""
    if request.param == "sqlite":
        yield {}
    else:
        yield {"VEIL_DATABASE_URL": request.getfixturevalue("database_url")}


def held_slots(home: Path, env: dict[str, str]) -> int:
    """Query slots held now by any process: advisory locks of two keys in the database, or
    open-file-description locks on the home's slot file, as the kernel lists them."""
    url = env.get("VEIL_DATABASE_URL")
    if url is not None:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            with engine.connect() as db:
                return db.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks "
                        "WHERE locktype = 'advisory' AND objsubid = 2 AND granted"
                    )
                ).scalar_one()
        finally:
            engine.dispose()
    inode = os.stat(home / "run" / "query-slots").st_ino
    return sum(f":{inode} " in line for line in Path("/proc/locks").read_text().splitlines())


def enclave_workers(server: Server) -> list[int]:
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
    assert found
    return found


def signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signum)


def refused_at_the_deadline(response: httpx.Response) -> bool:
    body = response.json()
    return (
        response.status_code == 429
        and body["error"]["code"] == "RATE_LIMITED"
        and f"came free within {WAIT_S} s" in body["error"]["message"]
    )


def test_a_principals_query_limit_holds_across_two_gateways(tmp_path, shared) -> None:
    home = tmp_path / "home"
    limit = {"VEIL_QUERIES_PER_PRINCIPAL": "1", **shared}
    # The first's query runs as long as its workers are stopped; the second waits WAIT_S.
    first = start_server(home, env={**limit, "VEIL_QUERY_TIMEOUT_S": "600"})
    second = start_server(
        home, env={**limit, "VEIL_QUERY_QUEUE_WAIT_S": str(WAIT_S)}, command="serve"
    )
    workers: list[int] = []
    turns = iter(range(1_000))
    try:
        for server in (first, second):
            warm = server.query(question(next(turns)))  # every worker started
            assert warm.status_code == 200, warm.json()
        with ThreadPoolExecutor(1) as pool:
            workers = enclave_workers(first)
            signal_all(workers, signal.SIGSTOP)
            running = pool.submit(first.query, question(next(turns)))
            wait_until("the first gateway's query holds a slot", lambda: held_slots(home, limit))
            assert refused_at_the_deadline(second.query(question(next(turns))))
            answered = second.query(PAID, who="fintech")
            assert answered.status_code == 200, answered.json()
            assert not running.done()

            # The first query finishes: its slot is given back before its answer is sent.
            signal_all(workers, signal.SIGCONT)
            assert running.result(PATIENCE_S).status_code == 200
            assert second.query(question(next(turns))).status_code == 200

            signal_all(workers, signal.SIGSTOP)
            running = pool.submit(first.query, question(next(turns)))
            wait_until("the first gateway's query holds a slot", lambda: held_slots(home, limit))
            assert refused_at_the_deadline(second.query(question(next(turns))))
            # The process holding the slot dies: the slot goes with it.
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(PATIENCE_S)
            assert isinstance(running.exception(PATIENCE_S), httpx.HTTPError)
            wait_until(
                "the second gateway answers the analyst",
                lambda: second.query(question(next(turns))).status_code == 200,
            )
        assert held_slots(home, limit) == 0
    finally:
        signal_all(workers, signal.SIGKILL)  # stopped, and orphaned once the first is killed
        stop_server(second)
        stop_server(first)
