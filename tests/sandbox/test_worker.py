"""The enclave worker as a second line: even raw SQL that slips past the guard cannot escape."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sandbox.duck import Limits
from sandbox.errors import Cancelled, EnclaveUnavailable, ExecutionFailed, ExecutionTimeout
from sandbox.store import AssetStore, catalog_name
from sandbox.worker import WorkerConfig, WorkerPool

DATA = f'"{catalog_name("lab.results")}".main.data'
CARD = {
    "id": "lab.results",
    "title": "Lab results",
    "provider": "lab",
    "classification": "L3",
    "domain": "health",
    "rights": {"holder": "lab"},
    "columns": [
        {"name": "person", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "test", "type": "VARCHAR", "role": "dimension"},
        {"name": "value", "type": "DOUBLE", "role": "measure", "bounds": [0, 100]},
    ],
    "revenue_shares_bp": {"lab": 10000},
}


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("enclave")
    source = root / "results.csv"
    source.write_text(
        "person,test,value\n" + "".join(f"p{i},t{i % 3},{i % 50}\n" for i in range(200))
    )
    store = AssetStore(root / "assets", root / "keyring", b"m" * 32)
    store.register(CARD, source)
    workers = WorkerPool(
        lambda: (store.generation, store.attachments()), WorkerConfig(timeout_s=3.0), size=1
    )
    yield workers
    workers.close()


def test_plain_query_runs(pool: WorkerPool) -> None:
    result = pool.run(f"SELECT count(*) FROM {DATA}")
    assert result.rows == [[200]]


ESCAPES = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/*')",
    "COPY (SELECT 1) TO '/tmp/veil-escape.csv'",
    f"COPY {DATA} TO '/tmp/veil-escape.parquet'",
    "ATTACH '/tmp/veil-escape.db' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET enable_external_access",
    "SET allow_unsigned_extensions = true",
    f"CREATE TABLE {DATA.replace('data', 'evil')} AS SELECT 1",
    f"DELETE FROM {DATA}",
    "EXPORT DATABASE '/tmp/veil-escape-dir'",
    "SELECT * FROM read_parquet('https://example.invalid/x.parquet')",
]


@pytest.mark.parametrize("sql", ESCAPES)
def test_escapes_fail_inside_the_worker(pool: WorkerPool, sql: str) -> None:
    with pytest.raises(ExecutionFailed) as raised:
        pool.run(sql)
    assert raised.value.message == "the query could not be executed"
    assert not Path("/tmp/veil-escape.csv").exists()
    assert not Path("/tmp/veil-escape.db").exists()


def test_configuration_stays_locked(pool: WorkerPool) -> None:
    settings = pool.run(
        "SELECT current_setting('enable_external_access'), current_setting('lock_configuration'),"
        " current_setting('autoload_known_extensions'), current_setting('threads'),"
        " current_setting('temp_directory')"
    )
    assert settings.rows == [[False, True, False, 1, ""]]


def test_timeout_kills_and_replaces_the_worker(pool: WorkerPool) -> None:
    with pytest.raises(ExecutionTimeout):
        pool.run("SELECT sum(hash(range)) FROM range(30000000000)")
    assert pool.run(f"SELECT count(*) FROM {DATA}").rows == [[200]]


def _idle_worker(pool: WorkerPool):
    pool.run("SELECT 1")
    return pool._idle[-1][1]


def test_dead_worker_is_replaced(pool: WorkerPool) -> None:
    worker = _idle_worker(pool)
    worker.process.kill()
    worker.process.join()
    assert pool.run("SELECT 41 + 1").rows == [[42]]


def test_worker_dying_mid_query_fails_closed(pool: WorkerPool) -> None:
    import threading

    worker = _idle_worker(pool)
    killer = threading.Timer(0.5, worker.process.kill)
    killer.start()
    with pytest.raises(ExecutionFailed):
        pool.run("SELECT sum(hash(range)) FROM range(30000000000)")
    killer.join()
    assert pool.run("SELECT 41 + 1").rows == [[42]]


def test_worker_has_no_network(pool: WorkerPool) -> None:
    assert _idle_worker(pool).network_isolated


def test_waiters_get_the_slot_a_timed_out_query_frees(pool: WorkerPool) -> None:
    import threading

    outcomes: list[str] = []

    def slow() -> None:
        try:
            pool.run("SELECT sum(hash(range)) FROM range(30000000000)")
        except ExecutionTimeout:
            outcomes.append("timeout")

    first = threading.Thread(target=slow)
    first.start()
    import time

    time.sleep(0.5)
    assert pool.run("SELECT 7").rows == [[7]]  # waited for the slot, then ran
    first.join()
    assert outcomes == ["timeout"]


def test_memory_limit_holds(tmp_path) -> None:
    from sandbox.duck import Limits

    small = WorkerPool(lambda: (0, []), WorkerConfig(limits=Limits(memory_limit="64MB")), size=1)
    try:
        with pytest.raises(ExecutionFailed):
            small.run("SELECT count(DISTINCT range::VARCHAR || 'padding') FROM range(20000000)")
        assert small.run("SELECT 1").rows == [[1]]
    finally:
        small.close()


def test_engine_error_text_never_leaves(pool: WorkerPool) -> None:
    with pytest.raises(ExecutionFailed) as raised:
        pool.run("SELECT CAST('secret-value' AS INTEGER)")
    assert "secret" not in str(raised.value) and "secret" not in raised.value.message


def test_a_cancelled_query_is_stopped_and_the_worker_replaced(pool: WorkerPool) -> None:
    import threading

    worker = _idle_worker(pool)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(Cancelled):
        pool.run("SELECT sum(hash(range)) FROM range(30000000000)", cancel)
    assert not worker.alive
    assert pool.run("SELECT 41 + 1", threading.Event()).rows == [[42]]


def test_warming_starts_every_worker_the_pool_holds(tmp_path: Path) -> None:
    store = AssetStore(tmp_path / "assets", tmp_path / "keyring", b"m" * 32)
    workers = WorkerPool(lambda: (store.generation, []), WorkerConfig(timeout_s=3.0), size=2)
    workers.warm()
    started = [worker for _, worker in workers._idle]
    assert len(started) == 2 and all(worker.alive for worker in started)
    workers.warm()  # a full pool keeps no extra worker
    assert len(workers._idle) == 2
    generation, out = workers._checkout()  # a query takes one out, warming refills the pool,
    workers.warm()
    workers._checkin(generation, out)  # and the one coming back is not kept beyond the size
    assert len(workers._idle) == 2 and not out.alive
    started = [worker for _, worker in workers._idle]
    assert workers.run("SELECT 41 + 1").rows == [[42]]
    assert {id(worker) for _, worker in workers._idle} == {id(worker) for worker in started}
    workers.close()
    assert not any(worker.alive for worker in started)
    workers.warm()  # a closed pool starts nothing it keeps
    assert workers._idle == []


def test_every_retired_worker_says_why(tmp_path: Path) -> None:
    generation = [0]
    reasons: list[str] = []
    workers = WorkerPool(
        lambda: (generation[0], []), WorkerConfig(timeout_s=1.0), size=1, on_retire=reasons.append
    )
    with pytest.raises(ExecutionTimeout):
        workers.run("SELECT sum(hash(range)) FROM range(30000000000)")
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(Cancelled):
        workers.run("SELECT sum(hash(range)) FROM range(30000000000)", cancel)
    worker = _idle_worker(workers)
    worker.process.kill()
    worker.process.join()
    workers.run("SELECT 1")
    generation[0] += 1  # the assets changed under the idle worker
    workers.run("SELECT 1")
    assert reasons == ["timeout", "cancelled", "crashed", "assets_changed"]
    workers.close()


def test_a_worker_that_cannot_start_is_counted() -> None:
    reasons: list[str] = []
    unusable = WorkerConfig(limits=Limits(memory_limit="not a size"), timeout_s=1.0)
    workers = WorkerPool(lambda: (0, []), unusable, on_retire=reasons.append)
    with pytest.raises(EnclaveUnavailable):
        workers.run("SELECT 1")
    assert reasons == ["start_failed"]


def test_a_killed_worker_is_replaced_before_anyone_asks(tmp_path: Path) -> None:
    """A pool left short until the next query would make that query start a worker, which its
    sender could time: some query was cancelled, timed out or crashed. The successor starts at
    once instead."""
    store = AssetStore(tmp_path / "assets", tmp_path / "keyring", b"m" * 32)
    workers = WorkerPool(lambda: (store.generation, []), WorkerConfig(timeout_s=3.0), size=1)
    workers.warm()
    (first,) = [worker for _, worker in workers._idle]
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(Cancelled):
        workers.run("SELECT sum(hash(range)) FROM range(30000000000)", cancel)
    assert not first.alive
    deadline = time.monotonic() + 60
    while not any(worker.alive for _, worker in workers._idle):
        assert time.monotonic() < deadline, "no worker replaced the one the cancel killed"
        time.sleep(0.05)
    (successor,) = [worker for _, worker in workers._idle]
    assert successor is not first
    workers.close()


def test_a_worker_past_its_lifetime_is_replaced_after_its_query() -> None:
    """Whatever DuckDB keeps between queries is bounded by the worker's lifetime: past it, the
    worker answers the query it has, then leaves, and a successor starts at once."""
    reasons: list[str] = []
    workers = WorkerPool(
        lambda: (0, []), WorkerConfig(timeout_s=3.0, lifetime_s=0.0), size=1,
        on_retire=reasons.append,
    )  # fmt: skip
    workers.warm()
    (first,) = [worker for _, worker in workers._idle]
    assert workers.run("SELECT 41 + 1").rows == [[42]]
    assert not first.alive
    assert reasons == ["recycled"]
    assert workers.run("SELECT 2").rows == [[2]]
    assert reasons == ["recycled", "recycled"]
    workers.close()
