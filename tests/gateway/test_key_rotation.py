"""Rotating the master key: every data key wrapped anew, the old key useless afterwards, and a
rotation cut short still leaves every asset readable and finishes when run again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import keys
from sandbox.keys import create_master_key
from services.attachments import AttachmentStore
from tests.support import start_server, stop_server

SQL = "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex"


def veil(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    made = veil("demo", "--no-serve", "--home", str(tmp_path / "home"))
    assert made.returncode == 0, made.stderr
    return tmp_path / "home"


def wrapped_keys(home: Path) -> dict[str, bytes]:
    return {path.name.removesuffix(".wrapped"): path.read_bytes()
            for path in (home / "keys" / "assets").glob("*.wrapped")}  # fmt: skip


def test_rotation_wraps_every_data_key_under_a_new_master_key(home: Path) -> None:
    master = home / "keys" / "master.key"
    old_key, before = master.read_bytes(), wrapped_keys(home)
    assert len(before) >= 2

    rotated = veil("keys", "rotate-master", "--home", str(home))

    assert rotated.returncode == 0, rotated.stderr
    # The demo's two registrations each filed a legal opinion and a valuation report.
    assert json.loads(rotated.stdout) == {"rewrapped": len(before), "documents_rewrapped": 4}
    new_key, after = master.read_bytes(), wrapped_keys(home)
    assert new_key != old_key and after.keys() == before.keys()
    assert sorted(path.name for path in master.parent.iterdir()) == [
        "assets", "ledger-signing.key", "master.key", "metrics.token"
    ]  # fmt: skip
    assert os.stat(master).st_mode & 0o077 == 0
    for asset_id, wrapped in after.items():
        # The same data key, now opened only by the new master key.
        assert keys.unwrap(new_key, wrapped, asset_id) == keys.unwrap(
            old_key, before[asset_id], asset_id
        )
        with pytest.raises(ValueError):
            keys.unwrap(old_key, wrapped, asset_id)
    # The registrations' documents open under the new key alone, and not under the old one.
    documents = sorted((home / "attachments").glob("*/*"))
    assert len(documents) == 4
    for path in documents:
        content = AttachmentStore(home / "attachments", lambda: [new_key]).get(
            path.parent.name, path.name
        )
        assert b"Demo" in content
        with pytest.raises(ValueError):
            AttachmentStore(home / "attachments", lambda: [old_key]).get(
                path.parent.name, path.name
            )
    server = start_server(home, command="serve")
    try:
        assert server.query(SQL).status_code == 200
    finally:
        stop_server(server)


def test_a_rotation_cut_short_still_serves_and_finishes_when_run_again(home: Path) -> None:
    folder = home / "keys"
    # The state a rotation leaves if stopped right after swapping in the new key.
    create_master_key(folder / "master.key.next")
    os.link(folder / "master.key", folder / "master.key.previous")
    os.replace(folder / "master.key.next", folder / "master.key")
    new_key = (folder / "master.key").read_bytes()

    server = start_server(home, command="serve")
    try:
        assert server.query(SQL).status_code == 200  # opened with the replaced key
    finally:
        stop_server(server)
    finished = veil("keys", "rotate-master", "--home", str(home))

    assert finished.returncode == 0, finished.stderr
    assert (folder / "master.key").read_bytes() == new_key  # finished, not rotated again
    assert not (folder / "master.key.previous").exists()
    for asset_id, wrapped in wrapped_keys(home).items():
        assert keys.unwrap(new_key, wrapped, asset_id)


def test_an_uninitialised_home_is_refused(tmp_path: Path) -> None:
    refused = veil("keys", "rotate-master", "--home", str(tmp_path / "empty"))
    assert refused.returncode == 1
    assert not (tmp_path / "empty" / "keys").exists()


def test_rotating_the_signing_key_keeps_the_ledger_verifiable(home: Path) -> None:
    signing = home / "keys" / "ledger-signing.key"
    old = signing.read_bytes()

    rotated = veil("keys", "rotate-signing", "--home", str(home))

    assert rotated.returncode == 0, rotated.stderr
    assert signing.read_bytes() != old and os.stat(signing).st_mode & 0o077 == 0
    assert not (home / "keys" / "ledger-signing.key.next").exists()
    server = start_server(home, command="serve")
    try:
        assert server.query(SQL).status_code == 200  # signed with the new key
        with server.client("supervisor") as client:
            served = client.get("/v1/ledger/public-key").json()["public_key"]
        entries = server.ledger()
    finally:
        stop_server(server)
    (rotation,) = [entry for entry in entries if entry["type"] == "signing_key_rotated"]
    assert rotation["public_key"] == served
    verified = veil("ledger", "verify", "--home", str(home))
    assert verified.returncode == 0, verified.stdout
