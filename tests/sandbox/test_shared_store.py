"""One asset store shared by several gateway processes: each sees the others' changes on its
next read, changes never collide, and a destruction anywhere hides the asset everywhere."""

from __future__ import annotations

import fcntl
import multiprocessing
import threading
from pathlib import Path

import pytest

from sandbox.changes import ChangeMarker
from sandbox.errors import AssetExists, AssetNotFound
from sandbox.store import LOCK_FILE, AssetStore
from tests.sandbox.test_store import CARD

MASTER = b"k" * 32


def _open(tmp_path: Path) -> AssetStore:
    return AssetStore(tmp_path / "assets", tmp_path / "keyring", MASTER)


def _csv(tmp_path: Path, rows: int, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text("household,size\n" + "".join(f"h{i},{i % 5}\n" for i in range(rows)))
    return path


def _register_elsewhere(root: str, upload: str) -> None:
    AssetStore(Path(root) / "assets", Path(root) / "keyring", MASTER).register(CARD, Path(upload))


def test_the_marker_reports_each_announcement_once_to_every_other_reader(tmp_path) -> None:
    path = tmp_path / "marker"
    speaker, first, second = ChangeMarker(path), ChangeMarker(path), ChangeMarker(path)
    assert not first.changed()
    speaker.announce()
    assert first.changed() and second.changed()
    assert not first.changed() and not second.changed()
    assert not speaker.changed()  # its own announcement
    speaker.announce()
    speaker.announce()
    assert first.changed() and not first.changed()


def test_a_registration_in_another_process_is_seen_on_the_next_read(tmp_path) -> None:
    store = _open(tmp_path)
    before = store.generation
    assert store.list() == []
    child = multiprocessing.get_context("spawn").Process(
        target=_register_elsewhere, args=(str(tmp_path), str(_csv(tmp_path, 20)))
    )
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    assert [asset.card.id for asset in store.list()] == ["city.households"]
    assert store.get("city.households").row_count == 20
    assert store.generation > before
    assert [a.asset_id for a in store.attachments()] == ["city.households"]


def test_a_destruction_in_one_process_hides_the_asset_in_every_other(tmp_path) -> None:
    here, there = _open(tmp_path), _open(tmp_path)
    here.register(CARD, _csv(tmp_path, 20))
    assert there.get("city.households").row_count == 20
    here.destroy("city.households")
    with pytest.raises(AssetNotFound):
        there.get("city.households")
    assert there.attachments() == []
    assert "city.households" in there.destroyed()


def test_a_new_version_in_one_process_is_read_by_the_other(tmp_path) -> None:
    here, there = _open(tmp_path), _open(tmp_path)
    here.register(CARD, _csv(tmp_path, 20))
    assert there.get("city.households").version == 1
    here.register_version(CARD, _csv(tmp_path, 30, "v2.csv"))
    assert there.get("city.households").version == 2
    assert there.get("city.households").row_count == 30
    # And the other way round: the second store's change starts from the first one's.
    there.register_version(CARD, _csv(tmp_path, 40, "v3.csv"))
    assert here.get("city.households").version == 3


def test_two_processes_never_register_one_id_twice(tmp_path) -> None:
    stores = [_open(tmp_path), _open(tmp_path)]
    uploads = [_csv(tmp_path, 5000, f"race{i}.csv") for i in range(2)]
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def register(index: int) -> None:
        start.wait()
        try:
            stores[index].register(CARD, uploads[index])
            outcomes.append("registered")
        except AssetExists:
            outcomes.append("exists")

    threads = [threading.Thread(target=register, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["exists", "registered"]
    assert [asset.version for asset in _open(tmp_path).list()] == [1]


def test_leftovers_are_cleared_only_when_no_other_process_is_changing_the_store(
    tmp_path,
) -> None:
    _open(tmp_path)
    staging = tmp_path / "assets" / ".staging-inflight"
    staging.mkdir()
    with open(tmp_path / "assets" / LOCK_FILE, "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process mid-registration
        _open(tmp_path)
        assert staging.exists()
    _open(tmp_path)
    assert not staging.exists()
