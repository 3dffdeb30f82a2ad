"""Queries larger than memory: they spill into the worker's own folder, encrypted, or fail
cleanly; a worker is never killed for it and its folder goes with it."""

from __future__ import annotations

import duckdb
import pytest

from sandbox.duck import Limits, attach_sql, connect, lock_down
from sandbox.errors import ExecutionFailed
from sandbox.store import AssetStore, catalog_name
from sandbox.worker import WorkerConfig, WorkerPool

MARKER = "VEILSECRET"
CARD = {
    "id": "lab.notes",
    "title": "Notes",
    "provider": "lab",
    "classification": "L3",
    "domain": "health",
    "rights": {"holder": "lab"},
    "columns": [
        {"name": "person", "type": "VARCHAR", "role": "privacy_unit"},
        {"name": "note", "type": "VARCHAR", "role": "dimension"},
    ],
    "revenue_shares_bp": {"lab": 10000},
}
ROWS = 600_000
DATA = f'"{catalog_name(CARD["id"])}".main.data'
# Every note distinct: a DISTINCT over them needs far more than the 32MB a worker is given.
DISTINCT_NOTES = f"SELECT count(*) FROM (SELECT DISTINCT note FROM {DATA})"
SMALL = "32MB"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> AssetStore:
    root = tmp_path_factory.mktemp("spill")
    source = root / "notes.parquet"
    duckdb.sql(
        f"COPY (SELECT 'p' || i AS person, '{MARKER}' || i || repeat('x', 40) AS note "
        f"FROM range({ROWS}) t(i)) TO '{source}' (FORMAT parquet)"
    )
    store = AssetStore(root / "assets", root / "keyring", b"m" * 32)
    store.register(CARD, source)
    return store


def _files(folder) -> list[bytes]:
    return [path.read_bytes() for path in folder.rglob("*") if path.is_file()]


def test_spilled_pages_are_encrypted(store: AssetStore, tmp_path) -> None:
    (attachment,) = store.attachments()
    spill = tmp_path / "spill"
    spill.mkdir()
    connection = connect()
    connection.execute(attach_sql(attachment.catalog, attachment.path, attachment.key,
                                  read_only=True))  # fmt: skip
    lock_down(connection, Limits(SMALL, 1, str(spill), "2GB"))
    connection.execute(f"CREATE TEMP TABLE held AS SELECT * FROM {DATA} ORDER BY note DESC")
    written = _files(spill)
    assert sum(len(data) for data in written) > 32 * 2**20  # it did spill
    assert not any(MARKER.encode() in data for data in written)
    connection.close()


def test_the_marker_would_show_in_plain_spill(store: AssetStore, tmp_path) -> None:
    """The check above can fail: DuckDB's spill without encryption holds the notes as text."""
    (attachment,) = store.attachments()
    spill = tmp_path / "plain"
    connection = connect(temp_directory=str(spill))
    connection.execute(attach_sql(attachment.catalog, attachment.path, attachment.key,
                                  read_only=True))  # fmt: skip
    connection.execute(f"SET memory_limit = '{SMALL}'")
    connection.execute(f"CREATE TEMP TABLE held AS SELECT * FROM {DATA} ORDER BY note DESC")
    assert any(MARKER.encode() in data for data in _files(spill))
    connection.close()


def _pool(store: AssetStore, config: WorkerConfig) -> WorkerPool:
    return WorkerPool(lambda: (store.generation, store.attachments()), config, size=1)


def test_a_query_larger_than_memory_spills_and_answers(store: AssetStore, tmp_path) -> None:
    spill = tmp_path / "spill"
    pool = _pool(store, WorkerConfig(Limits(SMALL, 1, "", "2GB"), timeout_s=60, spill_root=spill))
    try:
        assert pool.run(DISTINCT_NOTES).rows == [[ROWS]]
        (folder,) = spill.iterdir()  # the worker's own, readable by its user alone
        assert folder.stat().st_mode & 0o777 == 0o700
    finally:
        pool.close()
    assert list(spill.iterdir()) == []  # gone with the worker


def test_without_room_to_spill_it_fails_cleanly(store: AssetStore) -> None:
    pool = _pool(store, WorkerConfig(Limits(SMALL, 1), timeout_s=60))
    try:
        with pytest.raises(ExecutionFailed) as failed:
            pool.run(DISTINCT_NOTES)
        assert failed.value.message == "the query could not be executed"
        worker = pool._idle[-1][1]
        assert pool.run("SELECT 41 + 1").rows == [[42]]
        assert pool._idle[-1][1] is worker  # the same worker: failed, not killed
    finally:
        pool.close()
