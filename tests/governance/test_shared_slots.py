"""Query slots shared by every gateway process on one home (SQLite: file locks) or one database
(PostgreSQL: advisory locks): a principal holds at most its slots across processes and
threads, a slot given back or held by a process that dies is free again, and nothing is
left locked or written."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from governance import ControlStore
from services.shared_slots import AdvisorySlots, SharedSlots, Slot, shared_slots
from tests.support import ROOT, free_port

PATIENCE_S = 60
# A process that takes one slot of `p`, says so, and holds it until it is killed.
HOLDER = """
import sys
from pathlib import Path
import pytest
import sqlalchemy as sa
from services.shared_slots import shared_slots
slots = shared_slots(sa.create_engine(sys.argv[1]), Path(sys.argv[2]), 1, 1)
held = slots.take("p")
print("held" if held is not None else "none", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def slots_of(store: ControlStore, tmp_path: Path) -> Iterator[Callable[[int], SharedSlots]]:
    """The slots gateway processes on `store`'s database (and one home) would use, closed
    afterwards."""
    made: list[SharedSlots] = []

    def slots(per_principal: int) -> SharedSlots:
        made.append(shared_slots(store.engine, tmp_path, per_principal, connections=4))
        return made[-1]

    yield slots
    for each in made:
        each.close()


def taken(slots: SharedSlots, principal: str, count: int) -> list[Slot]:
    held = [slots.take(principal) for _ in range(count)]
    assert None not in held
    return held  # type: ignore[return-value]


def release(held: list[Slot]) -> None:
    for slot in held:
        slot.release()


def test_a_principal_holds_at_most_its_slots_across_processes(slots_of) -> None:
    first, second = slots_of(2), slots_of(2)
    held = [first.take("p"), second.take("p")]
    assert None not in held
    assert first.take("p") is None and second.take("p") is None
    others = taken(first, "q", 1) + taken(second, "q", 1)  # another principal's are its own
    held[0].release()
    again = second.take("p")
    assert again is not None and first.take("p") is None
    release([again, held[1], *others])
    release(taken(first, "p", 2))


def test_threads_of_one_process_each_need_a_slot(slots_of) -> None:
    slots = slots_of(2)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: slots.take("p"), range(8)))
    held = [slot for slot in results if slot is not None]
    assert len(held) == 2
    release(held)
    release(taken(slots, "p", 2))


def test_a_slot_given_back_twice_frees_only_itself(slots_of) -> None:
    slots = slots_of(1)
    first = slots.take("p")
    assert first is not None
    first.release()
    second = slots.take("p")
    assert second is not None
    first.release()  # a second release must not free the slot someone else holds now
    assert slots.take("p") is None
    second.release()


def test_a_slot_held_by_a_killed_process_comes_free(store, tmp_path, slots_of) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    slots = slots_of(1)
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, str(tmp_path)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as holder:  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            assert slots.take("p") is None
        finally:
            holder.kill()
            holder.wait(PATIENCE_S)
    # The kernel, or the server once it sees the connection closed, drops the lock.
    deadline = time.monotonic() + PATIENCE_S
    while (freed := slots.take("p")) is None:
        assert time.monotonic() < deadline, "the dead process's slot never came free"
        time.sleep(0.05)
    freed.release()


def _slot_file(run_root: Path) -> Path:
    return run_root / "query-slots"


def test_file_slots_write_nothing(tmp_path) -> None:
    slots = shared_slots(sa.create_engine("sqlite://"), tmp_path, 3, connections=1)
    before = os.stat(_slot_file(tmp_path))
    release(taken(slots, "p", 3) + taken(slots, "q", 3))
    after = os.stat(_slot_file(tmp_path))
    assert after.st_size == 0 and after.st_mtime_ns == before.st_mtime_ns


def _advisory_locks(engine: sa.Engine) -> int:
    """Two-key advisory locks held in the database (the ledger's and job queue's have one)."""
    with engine.connect() as db:
        return db.execute(
            sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2")
        ).scalar_one()


def _slot_backends(engine: sa.Engine) -> list[int]:
    """Sessions other than the test's own, in this database: the slots' connections."""
    with engine.connect() as db:
        return list(
            db.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
            ).scalars()
        )


def test_advisory_slots_go_back_to_the_pool_unlocked(database_url) -> None:
    watcher = sa.create_engine(database_url, poolclass=sa.NullPool)
    slots = AdvisorySlots(sa.make_url(database_url), 2, 2)
    try:
        held = taken(slots, "p", 2)
        assert _advisory_locks(watcher) == 2
        release(held)
        assert _advisory_locks(watcher) == 0
        # The pooled connections are open, and hold nothing: each is taken again at once.
        assert len(_slot_backends(watcher)) == 2
        release(taken(slots, "p", 2))
        assert _advisory_locks(watcher) == 0
    finally:
        slots.close()
        watcher.dispose()


def test_advisory_slots_survive_their_connections_dropped(database_url) -> None:
    """A slot whose session the server ended is given back without an error, and pooled
    connections the server dropped (as on a restart) are replaced on the next take."""
    watcher = sa.create_engine(database_url, poolclass=sa.NullPool)
    slots = AdvisorySlots(sa.make_url(database_url), 1, 2)

    def terminate_all() -> None:
        for pid in _slot_backends(watcher):
            with watcher.connect() as db:
                db.execute(sa.select(sa.func.pg_terminate_backend(pid)))

    try:
        held = slots.take("p")
        assert held is not None
        terminate_all()
        held.release()
        release(taken(slots, "p", 1))
        terminate_all()  # the pooled connection is dead now
        again = slots.take("p")
        assert again is not None and slots.take("p") is None
        again.release()
        assert _advisory_locks(watcher) == 0
    finally:
        slots.close()
        watcher.dispose()


def test_advisory_slots_out_of_reach_fail_as_the_control_store_does() -> None:
    """A database that cannot be reached is SQLAlchemy's OperationalError, which the gateway
    answers with 503 STORE_UNAVAILABLE, never a driver's error it does not know."""
    slots = AdvisorySlots(sa.make_url(f"postgresql+psycopg://veil@127.0.0.1:{free_port()}/x"), 1, 1)
    try:
        with pytest.raises(sa.exc.OperationalError):
            slots.take("p")
    finally:
        slots.close()
