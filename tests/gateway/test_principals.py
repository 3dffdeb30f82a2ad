"""Principals over HTTP: the admin lists, rotates keys and revokes; keys are shown once and
stored only as hashes; every change is in the ledger."""

from __future__ import annotations

import json

import httpx

CLAIMS = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"


def _as(server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"})


def test_the_admin_lists_principals_without_keys(demo) -> None:
    with demo.client("admin") as client:
        items = client.get("/v1/principals").json()["items"]
        one = client.get("/v1/principals/fintech").json()
        missing = client.get("/v1/principals/nobody")
    ids = {item["id"] for item in items}
    assert {"admin", "analyst", "fintech", "insurer", "supervisor"} <= ids
    assert one == {"id": "fintech", "roles": ["developer"], "org": one["org"], "status": "active"}
    assert not any("key" in field for item in items for field in item)
    assert missing.status_code == 404
    with demo.client("operator") as client:
        assert client.get("/v1/principals").status_code == 403
        # Whether an id exists is the admin's to learn: anyone else meets the same refusal.
        for path in ("/v1/principals/fintech", "/v1/principals/nobody"):
            refused = client.get(path)
            assert refused.status_code == 403, path
            assert refused.json()["error"]["code"] == "POLICY_DENIED"
        exists = client.post("/v1/principals/fintech/rotate-key")
        absent = client.post("/v1/principals/nobody/rotate-key")
        assert exists.status_code == absent.status_code == 403
        assert exists.json() == absent.json()


def test_rotation_replaces_the_key_and_revocation_ends_the_principal(fresh_demo) -> None:
    old = fresh_demo.keys["fintech"]
    with fresh_demo.client("admin") as admin:
        rotated = admin.post("/v1/principals/fintech/rotate-key").json()
    new = rotated["api_key"]
    assert new != old and new.startswith("veil_")
    with _as(fresh_demo, old) as client:
        assert client.get("/v1/assets").status_code == 401
    with _as(fresh_demo, new) as client:
        assert client.post("/v1/queries", json={"sql": CLAIMS}).status_code == 200
    stored = (fresh_demo.home / "control.db").read_bytes()
    assert new.encode() not in stored and old.encode() not in stored  # hashes only

    with fresh_demo.client("admin") as admin:
        assert admin.post("/v1/principals/admin/revoke").status_code == 422  # not itself
        revoked = admin.post("/v1/principals/fintech/revoke")
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        assert admin.post("/v1/principals/fintech/revoke").status_code == 409
        assert admin.post("/v1/principals/fintech/rotate-key").status_code == 409
        assert admin.post("/v1/principals/nobody/rotate-key").status_code == 404
    with _as(fresh_demo, new) as client:
        assert client.post("/v1/queries", json={"sql": CLAIMS}).status_code == 401
    with fresh_demo.client("supervisor") as client:
        stop = {"principal": "fintech", "reason": "x"}
        assert client.post("/v1/emergency/suspend", json=stop).status_code == 409
    changes = fresh_demo.ledger()
    kinds = [(e["type"], e["by"]) for e in changes if e.get("principal") == "fintech"
             and e["type"].startswith("principal_")]  # fmt: skip
    assert kinds == [
        ("principal_created", "admin"),
        ("principal_key_rotated", "admin"),
        ("principal_revoked", "admin"),
    ]
    assert all("api_key" not in json.dumps(e) for e in changes)
