"""Destruction over HTTP: crypto-shredding ends the asset's grants, leaves a tombstone in the
catalogue and an entry in the ledger, and not even a backup of the files can be queried."""

from __future__ import annotations

import shutil

from tests.support import start_server, stop_server

CLAIMS = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"
VISITS = "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex"


def _destroy(server, who: str, asset: str, **body):
    with server.client(who) as client:
        return client.request("DELETE", f"/v1/assets/{asset}", json=body or None)


def test_destruction_shreds_ends_grants_and_is_recorded(tmp_path) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    try:
        assert server.query(CLAIMS, who="fintech").status_code == 200
        backup = tmp_path / "assets-backup"
        shutil.copytree(home / "assets", backup)

        assert _destroy(server, "operator", "insurance.claims").status_code == 422  # no reason
        assert _destroy(server, "insurer", "insurance.claims", reason="x").status_code == 403
        done = _destroy(server, "operator", "insurance.claims", reason="licence ended")
        assert done.status_code == 200, done.json()
        record = done.json()
        assert record["method"] == "crypto_shred" and record["reason"] == "licence ended"
        assert record["by"] == "operator" and "ledger_index" in record["receipt"]
        assert len(record["grants_ended"]) == 2  # fintech's, and the analyst's on both assets

        gone = server.query(CLAIMS, who="fintech")
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "ASSET_DESTROYED"
        assert "rows" not in gone.json()
        assert server.query(VISITS).status_code == 403  # the analyst's grant ended with it
        with server.client("analyst") as client:
            card = client.get("/v1/assets/insurance.claims").json()
            listed = {a["id"]: a["lifecycle"] for a in client.get("/v1/assets").json()["items"]}
        with server.client("supervisor") as client:
            ended = [client.get(f"/v1/grants/{g}").json() for g in record["grants_ended"]]
        assert card["lifecycle"] == "destroyed" and "destroyed_at" in card
        assert listed == {"hospital.visits": "active", "insurance.claims": "destroyed"}
        assert {grant["developer"] for grant in ended} == {"analyst", "fintech"}
        assert all(grant["status"] == "revoked" for grant in ended)
        assert all(grant["history"][-1]["reason"] == "asset destroyed" for grant in ended)
        assert _destroy(server, "operator", "insurance.claims", reason="again").status_code == 404
        entry = next(e for e in server.ledger() if e["type"] == "asset_destroyed")
        assert entry["asset"] == "insurance.claims" and entry["by"] == "operator"
        assert entry["grants_ended"] == record["grants_ended"]
    finally:
        stop_server(server)

    # Put the asset files back from the backup: without the shredded key they stay dark.
    shutil.rmtree(home / "assets")
    shutil.copytree(backup, home / "assets")
    restored = start_server(home, command="serve")
    try:
        refused = restored.query(CLAIMS, who="fintech")
        assert refused.status_code in (404, 410, 422) and "rows" not in refused.json()
        with restored.client("operator") as client:
            ids = {a["id"] for a in client.get("/v1/assets").json()["items"]
                   if a["lifecycle"] == "active"}  # fmt: skip
        assert ids == {"hospital.visits"}
    finally:
        stop_server(restored)
