"""Red team, re-shredding what a restore brings back, over HTTP: someone who can put files back
in a home (a backup of its keys and assets), or write the ledger's database, against the
promise that a destroyed asset never answers again and a live one is never shredded."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger import canonical_json, leaf_hash
from ledger.settlements import period_of
from sandbox.store import DESTRUCTIONS_FILE
from tests.support import HOUSEHOLDS, start_server, stop_server

CLAIMS = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"
VISITS = "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex"
DESTROYED = "insurance.claims"
LIVE = "hospital.visits"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo with a grant on the hospital's asset, its keys and assets copied aside."""
    folder = tmp_path_factory.mktemp("redteam-restore")
    server = start_server(folder / "home")
    try:
        grant = server.grant("analyst", [LIVE], ["city-hospital", "supervisor"])
        assert server.query(CLAIMS, who="fintech").status_code == 200
    finally:
        stop_server(server)
    (folder / "grant").write_text(grant)
    for part in ("keys", "assets"):
        shutil.copytree(folder / "home" / part, folder / "backup" / part)
    return folder


def _home(base: Path, tmp_path: Path) -> tuple[Path, str]:
    """A copy of the base's home and backup of the test's own; the grant on LIVE."""
    shutil.copytree(base / "home", tmp_path / "home")
    shutil.copytree(base / "backup", tmp_path / "backup")
    return tmp_path / "home", (base / "grant").read_text()


def _destroy(home: Path) -> int:
    """Serve, destroy insurance.claims as the operator, stop; the destruction's ledger index."""
    server = start_server(home, command="serve")
    try:
        with server.client("operator") as client:
            done = client.request("DELETE", f"/v1/assets/{DESTROYED}", json={"reason": "ended"})
        assert done.status_code == 200, done.json()
    finally:
        stop_server(server)
    return done.json()["receipt"]["ledger_index"]


def _put_back(tmp_path: Path, home: Path) -> None:
    """The keys and assets restored from the backup, as the runbook's copy does."""
    for part in ("keys", "assets"):
        shutil.rmtree(home / part)
        shutil.copytree(tmp_path / "backup" / part, home / part)
    assert (home / "assets" / DESTROYED).is_dir()


def _revived(home: Path) -> int:
    """Serve the home (raising if it cannot start) and try to get an answer from the destroyed
    asset as a developer would: a grant on it asked for and approved (which a destroyed asset
    refuses), then the query; the query's status."""
    server = start_server(home, command="serve")
    try:
        with server.client("analyst") as client:
            asked = client.post(
                "/v1/grants",
                json={"assets": [DESTROYED], "purpose": "public_welfare", "scenario": "s",
                      "methods": ["sql"], "valid_until": "2030-01-01T00:00:00Z"},
            )  # fmt: skip
        grant = {}
        if asked.status_code == 201:
            server.approve(asked.json()["id"], "insurer", "supervisor")
            grant = {"grant_id": asked.json()["id"]}
        return server.query(CLAIMS, **grant).status_code
    finally:
        stop_server(server)


def _ledger_tail(home: Path) -> tuple[int, str]:
    """The ledger's size and its last entry's leaf hash, read from its file."""
    with sqlite3.connect(home / "ledger.db") as db:
        idx, leaf = db.execute(
            "SELECT idx, leaf_hash FROM ledger_entries ORDER BY idx DESC LIMIT 1"
        ).fetchone()
    return idx + 1, leaf


def test_a_restored_folder_claiming_a_later_registration_stays_shredded(
    base: Path, tmp_path: Path
) -> None:
    home, _ = _home(base, tmp_path)
    _destroy(home)
    _put_back(tmp_path, home)
    meta_path = home / "assets" / DESTROYED / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["registered_at"] = datetime.now(UTC).isoformat()
    meta_path.write_text(json.dumps(meta))

    assert _revived(home) == 410


def test_a_forged_note_of_destructions_does_not_bring_an_asset_back(
    base: Path, tmp_path: Path
) -> None:
    home, _ = _home(base, tmp_path)
    _destroy(home)
    _put_back(tmp_path, home)
    size, anchor = _ledger_tail(home)
    note = {"format": 1, "size": size, "leaf_hash": anchor, "assets": {}}
    (home / "assets" / DESTRUCTIONS_FILE).write_text(json.dumps(note))

    assert _revived(home) == 410


def test_a_destruction_the_ledger_missed_still_keeps_a_restored_asset_dark(
    base: Path, tmp_path: Path
) -> None:
    """A destruction is recorded before it is done: one the ledger cannot take is not done
    (the asset as it was, answering), so none is ever done off the record; done again once
    the ledger takes it, it survives a restore."""
    home, _ = _home(base, tmp_path)
    server = start_server(home, command="serve")
    try:
        # The ledger's file held by another writer for longer than the gateway waits for it.
        with sqlite3.connect(home / "ledger.db", isolation_level=None) as holder:
            holder.execute("BEGIN IMMEDIATE")
            with server.client("operator") as client:
                done = client.request("DELETE", f"/v1/assets/{DESTROYED}", json={"reason": "x"})
            holder.execute("ROLLBACK")
        assert done.status_code == 503, done.text
        assert done.json()["error"]["code"] == "LEDGER_UNAVAILABLE"
        assert (home / "keys" / "assets" / f"{DESTROYED}.wrapped").exists()
        assert server.query(CLAIMS, who="fintech").status_code == 200  # not destroyed
        assert not [e for e in server.ledger() if e["type"] == "asset_destroyed"]
        with server.client("operator") as client:
            again = client.request("DELETE", f"/v1/assets/{DESTROYED}", json={"reason": "x"})
        assert again.status_code == 200, again.text
        assert server.query(CLAIMS, who="fintech").status_code == 410
    finally:
        stop_server(server)
    _put_back(tmp_path, home)

    assert _revived(home) == 410


def test_a_destruction_forged_in_the_ledger_database_shreds_nothing(
    base: Path, tmp_path: Path
) -> None:
    home, grant = _home(base, tmp_path)
    registered_at = json.loads((home / "assets" / LIVE / "meta.json").read_text())["registered_at"]
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    key = f"destroy:{LIVE}:{registered_at}"
    entry = {"type": "asset_destroyed", "asset": LIVE, "provider": "city-hospital",
             "registered_at": registered_at, "method": "crypto_shred", "at": at,
             "idempotency_key": key}  # fmt: skip
    data = canonical_json(entry)
    size, _ = _ledger_tail(home)
    with sqlite3.connect(home / "ledger.db") as db:
        db.execute(
            "INSERT INTO ledger_entries (idx, idempotency_key, data, leaf_hash, created_at, period)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (size, key, data, leaf_hash(data.encode()).hex(), datetime.now(UTC).isoformat(),
             period_of(entry)),
        )  # fmt: skip

    server = start_server(home, command="serve")
    try:
        # The asset is not shredded; the ledger, which holds a row no signed checkpoint
        # covers, refuses to sign over it, so nothing is answered until an operator repairs it.
        answer = server.query(VISITS, grant_id=grant)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "LEDGER_UNAVAILABLE"
    finally:
        stop_server(server)
    assert (home / "keys" / "assets" / f"{LIVE}.wrapped").exists()


def test_a_long_asset_id_destroyed_then_restored_does_not_stop_the_gateway(
    base: Path, tmp_path: Path
) -> None:
    home, _ = _home(base, tmp_path)
    long_id = "city." + "h" * 190
    server = start_server(home, command="serve")
    try:
        content = "household,size\n" + "".join(f"h{i},{i % 4}\n" for i in range(30))
        with server.client("city-hospital") as client:
            made = client.post(
                "/v1/assets",
                data={"card": json.dumps(dict(HOUSEHOLDS, id=long_id))},
                files={"file": ("data.csv", io.BytesIO(content.encode()), "text/csv")},
            )
            # Past the longest id a card may take, the registration is refused, naming the id.
            too_long = client.post(
                "/v1/assets",
                data={"card": json.dumps(dict(HOUSEHOLDS, id="city." + "h" * 196))},
                files={"file": ("data.csv", io.BytesIO(content.encode()), "text/csv")},
            )
        assert made.status_code == 201, made.text
        assert too_long.status_code == 422, too_long.text
        assert too_long.json()["error"]["code"] == "CARD_INVALID"
        assert {"rule": "card_field", "column": "id"} in too_long.json()["error"]["violations"]
    finally:
        stop_server(server)
    shutil.rmtree(tmp_path / "backup")
    for part in ("keys", "assets"):
        shutil.copytree(home / part, tmp_path / "backup" / part)
    server = start_server(home, command="serve")
    try:
        with server.client("operator") as client:
            done = client.request("DELETE", f"/v1/assets/{long_id}", json={"reason": "ended"})
        assert done.status_code == 200, done.json()
    finally:
        stop_server(server)
    _put_back(tmp_path, home)

    server = start_server(home, command="serve")  # raises if the gateway cannot start
    try:
        with server.client("analyst") as client:
            assert client.get(f"/v1/assets/{long_id}").json()["lifecycle"] == "destroyed"
    finally:
        stop_server(server)
