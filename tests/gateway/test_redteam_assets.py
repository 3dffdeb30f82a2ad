"""Red team, asset changes kept until their ledger entry is written: a provider's card must
not be able to leave behind a change that no start can put on record, nor a change that is
served without its own record."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

from ledger import canonical_json
from sandbox.cards import parse_card
from tests.support import HOUSEHOLDS, Server, start_server, stop_server

# A valid asset id whose registration entry's idempotency key (`asset:<id>:<registered_at>`)
# is longer than the ledger's 256 characters, while its files' names still fit the filesystem.
LONG_ID = "city." + "h" * 225
VISITS = "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex"
ASSET = "hospital.visits"
CATALOGUED = {"row_count", "registered_at", "version", "revision", "lifecycle"}


def test_a_card_whose_entry_the_ledger_refuses_leaves_nothing_that_stops_a_start(
    tmp_path: Path,
) -> None:
    """Found: the store kept the registration (unserved, with its entry beside it), the ledger
    then refused the entry (LEDGER_INVALID_ENTRY) and every later start failed on writing it:
    one provider request stopped the service for good. Fixed in services/assets.py (the entry
    is checked as the ledger would before the store changes; ledger/log.py `check_entry`)."""
    home = tmp_path / "home"
    server = start_server(home)
    try:
        content = "household,size\n" + "".join(f"h{i},{i % 4}\n" for i in range(30))
        with server.client("city-hospital") as client:
            made = client.post(
                "/v1/assets",
                data={"card": json.dumps(dict(HOUSEHOLDS, id=LONG_ID))},
                files={"file": ("data.csv", io.BytesIO(content.encode()), "text/csv")},
            )
        assert made.status_code == 422, made.text
        with server.client("analyst") as client:
            listed = [a["id"] for a in client.get("/v1/assets").json()["items"]]
        assert LONG_ID not in listed
    finally:
        stop_server(server)
    assert not (home / "assets" / LONG_ID).exists()
    assert not (home / "keys" / "assets" / f"{LONG_ID}.wrapped").exists()

    server = start_server(home, command="serve")  # raises if the gateway cannot start
    try:
        grant = server.grant("analyst", ["hospital.visits"], ["city-hospital", "supervisor"])
        assert server.query(VISITS, grant_id=grant).status_code == 200
    finally:
        stop_server(server)


def _card(server: Server) -> dict:
    """The hospital's card as its provider reads it, without what the catalogue adds."""
    with server.client("city-hospital") as client:
        shown = client.get(f"/v1/assets/{ASSET}").json()
    return {key: value for key, value in shown.items() if key not in CATALOGUED}


def _changed(server: Server, title: str) -> str:
    """Change the card's title as its provider; the SHA-256 of the card now served."""
    card = dict(_card(server), title=title)
    with server.client("city-hospital") as client:
        assert client.put(f"/v1/assets/{ASSET}", json=card).status_code == 200
    served = canonical_json(parse_card(_card(server)).model_dump(mode="json"))
    return hashlib.sha256(served.encode()).hexdigest()


def test_a_card_changed_after_a_restore_is_on_record(tmp_path: Path) -> None:
    """Found: a card change's idempotency key was its version and revision, which repeat once
    the assets folder is restored from a backup; the ledger then took the new change for the
    one it had recorded before, and the card served (any field: pricing, personal_data) was on
    no record. Fixed in services/assets.py (the key holds the entry's digest)."""
    home = tmp_path / "home"
    stop_server(start_server(home))
    shutil.copytree(home / "assets", tmp_path / "assets")
    server = start_server(home, command="serve")
    try:
        before = _changed(server, "Changed before the restore")
    finally:
        stop_server(server)
    shutil.rmtree(home / "assets")
    shutil.copytree(tmp_path / "assets", home / "assets")
    server = start_server(home, command="serve")
    try:
        after = _changed(server, "Changed after the restore")
        recorded = [
            entry["card_sha256"]
            for entry in server.ledger()
            if entry["type"] == "asset_card_updated" and entry["asset"] == ASSET
        ]
    finally:
        stop_server(server)
    assert before != after
    assert before in recorded and after in recorded, recorded
