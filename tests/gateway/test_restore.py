"""Restores that respect destruction, over HTTP: keys and data put back from a backup taken
before an asset was destroyed are shredded again before the gateway answers anything, by
`veil serve` at start-up and by `veil keys restore` before it returns."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT, VEIL, Server, start_server, stop_server

CLAIMS = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"
VISITS = "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex"
DESTROYED = "insurance.claims"


def _veil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VEIL, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def _key(home: Path, asset: str) -> Path:
    return home / "keys" / "assets" / f"{asset}.wrapped"


def _destroy(server: Server) -> dict:
    """Destroy insurance.claims as the operator; its ledger entry with its index."""
    with server.client("operator") as client:
        done = client.request("DELETE", f"/v1/assets/{DESTROYED}", json={"reason": "term ended"})
    assert done.status_code == 200, done.json()
    return done.json()


def _demo_destroyed_after_backup(tmp_path: Path, keys_backup: bool) -> tuple[Path, dict, str]:
    """The demo with its two assets and a grant on the one that stays; the keys and assets
    backed up; then the other destroyed. Returns the home, the destruction and the grant."""
    home = tmp_path / "home"
    server = start_server(home)
    try:
        visits = server.grant("analyst", ["hospital.visits"], ["city-hospital", "supervisor"])
        assert server.query(CLAIMS, who="fintech").status_code == 200
        if keys_backup:
            made = _veil("keys", "backup", "--home", str(home), "--to", str(tmp_path / "keys"))
            assert made.returncode == 0, made.stderr
            assert json.loads(made.stdout)["wrapped_keys"] == 2
        else:
            shutil.copytree(home / "keys", tmp_path / "keys")
        shutil.copytree(home / "assets", tmp_path / "assets")
        record = _destroy(server)
    finally:
        stop_server(server)
    assert not _key(home, DESTROYED).exists()
    return home, record, visits


def _put_back(tmp_path: Path, home: Path, folder: str) -> None:
    shutil.rmtree(home / folder)
    shutil.copytree(tmp_path / folder, home / folder)


def _assert_stays_gone(home: Path, grant: str, destruction_index: int, trigger: str) -> None:
    """Served again: the destroyed asset refused as destroyed and shown so, the other one
    answering, the re-shred in the ledger, and the ledger verifying."""
    server = start_server(home, command="serve")
    try:
        gone = server.query(CLAIMS, who="fintech")
        assert gone.status_code == 410, gone.json()
        assert gone.json()["error"]["code"] == "ASSET_DESTROYED" and "rows" not in gone.json()
        assert server.query(VISITS, grant_id=grant).status_code == 200
        with server.client("analyst") as client:
            listed = {a["id"]: a["lifecycle"] for a in client.get("/v1/assets").json()["items"]}
            card = client.get(f"/v1/assets/{DESTROYED}").json()
        assert listed == {"hospital.visits": "active", DESTROYED: "destroyed"}
        assert card["lifecycle"] == "destroyed"
        reshreds = [e for e in server.ledger() if e["type"] == "asset_reshredded"]
    finally:
        stop_server(server)
    assert [(e["asset"], e["destruction_index"], e["trigger"]) for e in reshreds] == [
        (DESTROYED, destruction_index, trigger)
    ]
    assert reshreds[0]["removed"] == ["wrapped data key", "encrypted data file"]
    assert not _key(home, DESTROYED).exists() and not (home / "assets" / DESTROYED).exists()
    verified = _veil("ledger", "verify", "--home", str(home))
    assert verified.returncode == 0, verified.stdout


def test_files_copied_back_are_shredded_again_at_start_up(tmp_path: Path) -> None:
    home, record, grant = _demo_destroyed_after_backup(tmp_path, keys_backup=False)
    _put_back(tmp_path, home, "keys")
    _put_back(tmp_path, home, "assets")
    # The restore brought the destroyed asset's key and data back, as the runbook's copy does.
    assert _key(home, DESTROYED).exists() and (home / "assets" / DESTROYED).is_dir()

    _assert_stays_gone(home, grant, record["receipt"]["ledger_index"], "startup")
    # Once shredded, a second start finds nothing to shred and records nothing more.
    _assert_stays_gone(home, grant, record["receipt"]["ledger_index"], "startup")


def test_keys_restore_shreds_again_before_it_returns(tmp_path: Path) -> None:
    home, record, grant = _demo_destroyed_after_backup(tmp_path, keys_backup=True)
    _put_back(tmp_path, home, "assets")

    restored = _veil("keys", "restore", "--home", str(home), "--from", str(tmp_path / "keys"))
    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout)
    index = record["receipt"]["ledger_index"]
    assert report["wrapped_keys"] == [DESTROYED] and report["kept"] == ["hospital.visits"]
    assert [(r["asset"], r["destruction_index"]) for r in report["reshredded"]] == [
        (DESTROYED, index)
    ]
    assert report["unopenable"] == []
    # Shredded before the command returned, before any gateway starts.
    assert not _key(home, DESTROYED).exists() and not (home / "assets" / DESTROYED).exists()
    assert _key(home, "hospital.visits").exists()

    _assert_stays_gone(home, grant, index, "keys_restore")


def test_a_reshred_that_fails_keeps_the_gateway_from_serving(tmp_path: Path) -> None:
    home, _, _ = _demo_destroyed_after_backup(tmp_path, keys_backup=False)
    _put_back(tmp_path, home, "keys")
    _put_back(tmp_path, home, "assets")
    # A key that cannot be read or removed as a file: the re-shred fails.
    key = _key(home, DESTROYED)
    key.unlink()
    key.mkdir()
    (key / "held").write_bytes(b"x")

    with pytest.raises(RuntimeError, match="server exited"):
        start_server(home, command="serve")
    logs = "".join(p.read_text() for p in home.parent.glob("home-serve-*.log"))
    assert "destroyed assets back on disk); not serving" in logs
    assert (home / "assets" / DESTROYED).is_dir()  # nothing was half-done after the failure
