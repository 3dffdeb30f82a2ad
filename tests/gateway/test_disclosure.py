"""The public disclosure report over HTTP: no key, no developer named, figures that equal the
ledger's, and an asset's figures withheld until enough developers used it."""

from __future__ import annotations

import json

import httpx

CLAIMS = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"


def _public(server, **params) -> httpx.Response:
    return httpx.get(f"{server.url}/v1/disclosure", params=params)


def _claims_row(server) -> dict:
    rows = _public(server).json()["assets"]
    return next(row for row in rows if row["asset"] == "insurance.claims")


def _third_developer(server) -> str:
    with server.client("admin") as admin:
        key = admin.post(
            "/v1/principals", json={"id": "third", "roles": ["developer"], "org": "Third Co."}
        ).json()["api_key"]
    server.keys["third"] = key
    server.grant("third", ["insurance.claims"], ["insurer", "supervisor"])
    return key


def test_disclosure_is_public_and_withholds_until_three_developers(fresh_demo) -> None:
    assert fresh_demo.query(CLAIMS).status_code == 200
    assert fresh_demo.query(CLAIMS, who="fintech").status_code == 200
    body = _public(fresh_demo).json()
    assert body["min_developers"] == 3
    assert _claims_row(fresh_demo) == {"asset": "insurance.claims", "withheld": True}

    key = _third_developer(fresh_demo)
    with httpx.Client(base_url=fresh_demo.url, headers={"Authorization": f"Bearer {key}"}) as dev:
        assert dev.post("/v1/queries", json={"sql": CLAIMS}).status_code == 200
    row = _claims_row(fresh_demo)
    assert row["withheld"] is False and row["developers"] == 3

    released = fresh_demo.ledger()
    released = [e for e in released if e.get("outcome") == "released"
                and "insurance.claims" in e.get("assets", [])]  # fmt: skip
    assert row["queries"] == len(released)
    assert row["grants"] == len({e["grant_id"] for e in released})
    earned = sum(e["cost"]["assets"]["insurance.claims"] for e in released)
    assert row["revenue_minor"] == ({"CNY": earned} if released else {})
    text = json.dumps(_public(fresh_demo).json())
    assert not any(name in text for name in ("analyst", "fintech", "third"))


def test_disclosure_periods(demo) -> None:
    assert _public(demo, period="2020-01").json()["assets"] == []
    assert _public(demo, period="2026-13").status_code == 422
