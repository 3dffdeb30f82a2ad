"""The whole life of an asset and its authorisations over HTTP, each step taking effect at once
and each leaving its entry in the ledger (issue 5's walk)."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime, timedelta

import httpx

from ledger.settlements import period_of
from tests.gateway.test_assets import CARD, _csv

ASSET = "transport.trips"
BY_LINE = f"SELECT line, COUNT(*) AS trips FROM {ASSET} GROUP BY line"
BY_DAY = f"SELECT day, COUNT(*) AS trips FROM {ASSET} GROUP BY day"


def _client(server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"})


def _new_developer(server, name: str) -> str:
    with server.client("admin") as admin:
        made = admin.post("/v1/principals", json={"id": name, "roles": ["developer"], "org": name})
    return made.json()["api_key"]


def _request(client: httpx.Client, **changes) -> dict:
    body = {"assets": [ASSET], "purpose": "public_governance", "scenario": "Ridership by line",
            "methods": ["sql"], "valid_until": "2030-01-01T00:00:00Z", **changes}  # fmt: skip
    response = client.post("/v1/grants", json=body)
    assert response.status_code == 201, response.json()
    return response.json()


def _reasons(response: httpx.Response) -> list[str]:
    return [v["rule"] for v in response.json()["error"].get("violations", [])]


def test_the_whole_life(fresh_demo) -> None:
    server = fresh_demo
    # register
    with server.client("city-hospital") as provider:
        registered = provider.post(
            "/v1/assets",
            data={"card": json.dumps(CARD)},
            files={"file": ("trips.csv", io.BytesIO(_csv(400)), "text/csv")},
        )
    assert registered.status_code == 201, registered.json()

    dev = _client(server, _new_developer(server, "mobility-lab"))
    # request, with columns narrowed
    grant = _request(dev, columns={ASSET: ["line"]})["id"]
    # partial approval: no access yet
    assert server.approve(grant, "city-hospital")["status"] == "pending"
    refused = dev.post("/v1/queries", json={"sql": BY_LINE})
    assert refused.status_code == 403 and "grant_inactive" in _reasons(refused)
    # full approval: access
    assert server.approve(grant, "supervisor")["status"] == "active"
    assert dev.post("/v1/queries", json={"sql": BY_LINE}).status_code == 200
    # purpose and column mismatches are denied
    wrong_purpose = dev.post("/v1/queries", json={"sql": BY_LINE, "purpose": "public_welfare"})
    assert wrong_purpose.status_code == 403 and "purpose_mismatch" in _reasons(wrong_purpose)
    wrong_column = dev.post("/v1/queries", json={"sql": BY_DAY})
    assert wrong_column.status_code == 403 and "column_not_granted" in _reasons(wrong_column)
    # revoke: denied on the next request
    with server.client("city-hospital") as provider:
        assert provider.post(f"/v1/grants/{grant}/revoke").json()["status"] == "revoked"
    assert dev.post("/v1/queries", json={"sql": BY_LINE}).status_code == 403

    # term expiry
    until = datetime.now(UTC) + timedelta(seconds=3)
    short = _request(dev, valid_until=until.strftime("%Y-%m-%dT%H:%M:%SZ"))["id"]
    server.approve(short, "city-hospital", "supervisor")
    assert dev.post("/v1/queries", json={"sql": BY_LINE}).status_code == 200
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 1.1)
    expired = dev.post("/v1/queries", json={"sql": BY_LINE})
    assert expired.status_code == 403
    assert dev.get(f"/v1/grants/{short}").json()["status"] == "expired"

    # other developers, so the disclosure can show this asset
    others = []
    for name in ("transit-uni", "city-planners"):
        other = _client(server, _new_developer(server, name))
        server.approve(_request(other)["id"], "city-hospital", "supervisor")
        assert other.post("/v1/queries", json={"sql": BY_LINE}).status_code == 200
        others.append(other)

    # emergency suspend and resume
    with server.client("supervisor") as supervisor:
        stop = {"asset": ASSET, "reason": "suspected re-identification"}
        assert supervisor.post("/v1/emergency/suspend", json=stop).status_code == 200
        stopped = others[0].post("/v1/queries", json={"sql": BY_LINE})
        assert stopped.status_code == 403 and "asset_inactive" in _reasons(stopped)
        assert supervisor.post("/v1/emergency/resume", json=stop).status_code == 200
    assert others[0].post("/v1/queries", json={"sql": BY_LINE}).status_code == 200

    # destruction: gone, recorded
    with server.client("operator") as operator:
        destroyed = operator.request("DELETE", f"/v1/assets/{ASSET}", json={"reason": "term"})
        assert destroyed.status_code == 200
        assert operator.get(f"/v1/assets/{ASSET}").json()["lifecycle"] == "destroyed"
    gone = others[1].post("/v1/queries", json={"sql": BY_LINE})
    assert gone.status_code == 410

    # disclosure totals equal the ledger's
    entries = server.ledger()
    released = [e for e in entries
                if e.get("outcome") == "released" and e.get("assets") == [ASSET]]  # fmt: skip
    row = next(r for r in httpx.get(f"{server.url}/v1/disclosure").json()["assets"]
               if r["asset"] == ASSET)  # fmt: skip
    assert row["withheld"] is False
    assert row["queries"] == len(released) == 5
    assert row["developers"] == 3 and row["grants"] == 4
    assert row["revenue_minor"] == {"CNY": 0}  # public-governance use is free, still metered

    # every step is a ledger entry, each with its time
    kinds = [e["type"] for e in entries]
    for kind in ("asset_registered", "principal_created", "grant_requested", "grant_approved",
                 "grant_revoked", "grant_expired", "emergency_suspended", "emergency_resumed",
                 "asset_destroyed"):  # fmt: skip
        assert kind in kinds, kind
    outcomes = {e.get("outcome") for e in entries if e["type"] == "query"}
    assert {"released", "denied"} <= outcomes
    assert all(period_of(e) is not None for e in entries), [
        e["type"] for e in entries if period_of(e) is None
    ]
