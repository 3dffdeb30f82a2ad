"""Asset storage under faults, with the gateway serving: an asset's encrypted file truncated or
corrupted, and the asset volume full when an asset is registered.

A damaged asset fails closed: each query on it is refused with one stable error, recorded and
counted, while the other assets answer; a copy of the file put back (by rename, as restore
tools do) answers again without a restart. A full volume refuses a registration with
507 STORAGE_FULL and keeps nothing of it: the id is free again once there is room."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.changes import ChangeMarker
from tests.faults.after_fault import (
    assert_answers_recorded,
    assert_log_whole,
    assert_verifies,
    ledger_items,
    released_queries,
)
from tests.support import HOUSEHOLDS, Server, register_households, start_server, stop_server

VISITS = "SELECT department, COUNT(*) AS n{turn} FROM hospital.visits GROUP BY department"
CLAIMS = "SELECT plan, COUNT(*) AS n{turn} FROM insurance.claims GROUP BY plan"
# All a client learns of a damaged asset: no engine, crypto or file-system word, no path.
FAILED = {"error": {"code": "EXECUTION_FAILED", "message": "the query could not be executed",
                    "violations": []}}  # fmt: skip
FULL = {"error": {"code": "STORAGE_FULL",
                  "message": "there is no room to store this file; nothing of it was kept",
                  "violations": []}}  # fmt: skip
FAILED_QUERIES = 'veil_queries_total{outcome="failed"}'


def _truncate(path: Path) -> None:
    """Cut the file to half its length, as a copy or a disk that stopped half-way would."""
    os.truncate(path, path.stat().st_size // 2)


def _corrupt(path: Path) -> None:
    """Flip every bit of the file's middle half, in place."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(size // 4)
        middle = handle.read(size // 2)
        handle.seek(size // 4)
        handle.write(bytes(byte ^ 0xFF for byte in middle))


def _ask(server: Server, template: str, turn: int) -> tuple[int, dict]:
    """One question, made distinct by its alias so that no answer is a repeat."""
    response = server.query(template.format(turn=turn))
    return response.status_code, response.json()


def _entries(server: Server) -> list[dict]:
    return [item["data"] for item in ledger_items(server)]


def _assert_recorded(server: Server, answers: list[dict]) -> None:
    """Every answer is in the ledger under its receipt, none charged twice, none lost."""
    items = ledger_items(server)
    assert_log_whole(server, items)
    released_queries(items)
    assert_answers_recorded(items, answers)


def _counted(metrics: str, series: str) -> float:
    lines = [line for line in metrics.splitlines() if line.startswith(series + " ")]
    return float(lines[0].split()[-1]) if lines else 0.0


@pytest.mark.parametrize("damage", [_truncate, _corrupt], ids=["truncated", "corrupted"])
def test_a_damaged_asset_file_fails_closed_is_recorded_and_answers_once_restored(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    server = start_server(tmp_path / "home")
    answers: list[dict] = []
    try:
        data = server.home / "assets" / "hospital.visits" / "data.duckdb"
        backup = tmp_path / "visits.duckdb"
        shutil.copyfile(data, backup)
        status, truth = _ask(server, VISITS, 0)
        assert status == 200, truth
        answers.append(truth)
        failed_before = _counted(server.metrics(), FAILED_QUERIES)

        damage(data)
        for turn in (1, 2):
            status, refused = _ask(server, VISITS, turn)
            assert (status, refused) == (422, FAILED)
        status, other = _ask(server, CLAIMS, 3)
        assert status == 200, other  # the other assets keep answering
        answers.append(other)
        # Recorded as failed queries on that asset, and visible to operators as such.
        failed = [
            entry
            for entry in _entries(server)
            if entry.get("outcome") == "failed" and entry["assets"] == ["hospital.visits"]
        ]
        assert [entry["error"] for entry in failed] == ["EXECUTION_FAILED"] * 2
        assert _counted(server.metrics(), FAILED_QUERIES) == failed_before + 2

        # Put back as restore tools do: a whole copy renamed over the damaged file.
        staged = data.with_name("data.duckdb.restoring")
        shutil.copyfile(backup, staged)
        os.replace(staged, data)
        status, again = _ask(server, VISITS, 4)
        assert status == 200, again
        assert again["rows"] == truth["rows"]  # the right numbers, by the same process
        assert server.process.poll() is None
        answers.append(again)
        _assert_recorded(server, answers)
    finally:
        stop_server(server)
    assert_verifies(server.home)


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A home whose assets live on a tmpfs of their own: 8 MiB and 64 inodes, filled at will.
    Mounting takes root (CI runs as root); elsewhere the test is skipped."""
    assets = tmp_path / "home" / "assets"
    assets.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,nr_inodes=64,mode=0755", "veil-test", str(assets)],
        capture_output=True, text=True,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here: {mounted.stderr.strip()}")
    try:
        yield tmp_path / "home"
    finally:
        subprocess.run(["umount", "--lazy", str(assets)], check=True)


def _fill_blocks(volume: Path) -> Path:
    """Write one file until the volume has no byte left; returns it."""
    filler = volume / "filler"
    with filler.open("wb", buffering=0) as handle, pytest.raises(OSError) as full:
        while True:
            handle.write(b"\0" * 65536)
    assert full.value.errno == 28  # ENOSPC
    return filler


def _fill_inodes(volume: Path) -> Path:
    """Create empty files until the volume has no inode left; returns their folder."""
    fillers = volume / "fillers"
    fillers.mkdir()
    with pytest.raises(OSError) as full:
        for number in range(1000):
            (fillers / str(number)).touch()
    assert full.value.errno == 28
    return fillers


def _assert_nothing_kept(server: Server, volume: Path, before: set[str]) -> None:
    """The refused asset is neither served nor listed, nor recorded, nor left on disk: the
    volume holds what it held `before`, and the filler."""
    asset = HOUSEHOLDS["id"]
    with server.client("operator") as client:
        assert client.get(f"/v1/assets/{asset}").status_code == 404
        assert asset not in {card["id"] for card in client.get("/v1/assets").json()["items"]}
    assert not [entry for entry in _entries(server) if entry.get("asset") == asset]
    assert not (server.home / "keys" / "assets" / f"{asset}.wrapped").exists()
    # No data folder, no staging folder, no half-written change marker.
    assert {path.name for path in volume.iterdir()} - before in ({"filler"}, {"fillers"})


def test_a_full_asset_volume_refuses_a_registration_and_keeps_nothing_of_it(
    small_volume: Path,
) -> None:
    server = start_server(small_volume)
    volume = server.home / "assets"
    before = {path.name for path in volume.iterdir()}
    answers: list[dict] = []
    try:
        # No byte left, then no inode left: each refused the same way, nothing kept.
        for fill, empty in ((_fill_blocks, Path.unlink), (_fill_inodes, shutil.rmtree)):
            filler = fill(volume)
            refused = register_households(server, 2000)
            assert (refused.status_code, refused.json()) == (507, FULL)
            _assert_nothing_kept(server, volume, before)
            status, answer = _ask(server, CLAIMS, len(answers))
            assert status == 200, answer  # reading and recording need no room there
            answers.append(answer)
            empty(filler)
        # With room again the same id registers, once.
        registered = register_households(server, 2000)
        assert registered.status_code == 201, registered.json()
        with server.client("operator") as client:
            assert client.get(f"/v1/assets/{HOUSEHOLDS['id']}").status_code == 200
        registrations = [e for e in _entries(server) if e.get("asset") == HOUSEHOLDS["id"]]
        assert [entry["type"] for entry in registrations] == ["asset_registered"]
        _assert_recorded(server, answers)
    finally:
        stop_server(server)
    assert_verifies(server.home)


def test_a_change_is_announced_to_other_processes_on_a_full_volume(small_volume: Path) -> None:
    """A change the store made as the volume filled up is still announced (a completed
    registration is not reported as failed, nor left unseen by the other processes), and
    announcing leaves nothing behind."""
    volume = small_volume / "assets"
    announcer, listener = ChangeMarker(volume / ".changed"), ChangeMarker(volume / ".changed")
    announcer.announce()
    assert listener.changed()
    _fill_blocks(volume)
    _fill_inodes(volume)
    announcer.announce()
    assert listener.changed() and not listener.changed()
    assert sorted(p.name for p in volume.iterdir()) == [".changed", "filler", "fillers"]
