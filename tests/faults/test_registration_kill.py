"""A gateway killed (SIGKILL) in the middle of registering an asset, between storing it and
writing its ledger entry: the asset is never served without its registration on record, and
the next process writes the entry (once) before it serves anything."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.support import HOUSEHOLDS, register_households, start_server, stop_server


def _stored(home: Path, asset_id: str) -> bool:
    return (home / "assets" / asset_id / "meta.json").exists()


def test_an_asset_stored_when_its_gateway_dies_is_served_only_once_on_record(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    first = start_server(home)
    asset_id = HOUSEHOLDS["id"]
    # Another writer holds the ledger: the registration stores the asset, then waits to write
    # its entry, and the process is killed while it waits.
    holder = sqlite3.connect(home / "ledger.db", isolation_level=None, timeout=60)
    holder.execute("BEGIN EXCLUSIVE")
    answered: list[httpx.Response | Exception] = []

    def register() -> None:
        try:
            answered.append(register_households(first, 200))
        except httpx.HTTPError as error:
            answered.append(error)

    registering = threading.Thread(target=register)
    registering.start()
    try:
        deadline = time.monotonic() + 120
        while not _stored(home, asset_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _stored(home, asset_id), "the registration never reached the store"
        # Stored, its entry not written: nobody may use it yet.
        with first.client("city-hospital") as provider:
            assert provider.get(f"/v1/assets/{asset_id}").status_code == 404
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=30)
        holder.rollback()
        holder.close()
        registering.join(timeout=120)
    assert answered and not (
        isinstance(answered[0], httpx.Response) and answered[0].status_code == 201
    )
    second = start_server(home, command="serve")
    try:
        with second.client("city-hospital") as provider:
            shown = provider.get(f"/v1/assets/{asset_id}")
        assert shown.status_code == 200, shown.json()
        entries = [e for e in second.ledger() if e.get("asset") == asset_id]
        assert [e["type"] for e in entries] == ["asset_registered"]
        assert entries[0]["at"] == shown.json()["registered_at"]
        assert entries[0]["row_count"] == shown.json()["row_count"] == 200
    finally:
        stop_server(second)
    # A third start finds nothing left to record: the entry is written once.
    third = start_server(home, command="serve")
    try:
        entries = [e for e in third.ledger() if e.get("asset") == asset_id]
        assert [e["type"] for e in entries] == ["asset_registered"]
    finally:
        stop_server(third)
    verified = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "ledger", "verify", "--home", str(home)],
        env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["tree_size"] > 0
