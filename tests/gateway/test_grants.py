"""The life of a grant over HTTP: checks against the cards, joint approval or rejection with a
reason, who may list what, history, revocation with a reason and expiry at the term."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

CLAIMS = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"


def _request(server, who: str = "fintech", **changes) -> dict:
    body = {
        "assets": ["insurance.claims"],
        "purpose": "actuarial_research",
        "scenario": "Claim frequency by plan",
        "methods": ["sql"],
        "valid_until": "2030-01-01T00:00:00Z",
        **changes,
    }
    with server.client(who) as client:
        return client.post("/v1/grants", json=body)


def _act(server, who: str, grant: str, action: str, **body):
    with server.client(who) as client:
        return client.post(f"/v1/grants/{grant}/{action}", json=body or None)


def _get(server, who: str, path: str, **params):
    with server.client(who) as client:
        return client.get(path, params=params)


def _ledger(server) -> list[dict]:
    with server.client("supervisor") as client:
        items, after = [], None
        while page := client.get(
            "/v1/ledger/entries", params={"limit": 1000} | ({"after": after} if after else {})
        ).json()["items"]:
            items += page
            after = page[-1]["index"]
    return [json.loads(item["data"]) for item in items]


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"purpose": "marketing"}, "purpose_not_allowed"),
        ({"valid_until": "2031-06-01T00:00:00Z"}, "term_beyond_retention"),
        ({"columns": {"insurance.claims": ["plan", "no_such_column"]}}, "column_not_grantable"),
        ({"columns": {"insurance.claims": ["policy_no"]}}, "column_not_grantable"),
    ],
)
def test_requests_the_cards_do_not_allow_are_refused(demo, changes: dict, rule: str) -> None:
    response = _request(demo, **changes)
    assert response.status_code == 422, response.json()
    assert rule in [v["rule"] for v in response.json()["error"]["violations"]]


def test_a_party_rejects_with_a_reason_and_the_grant_never_activates(demo) -> None:
    grant = _request(demo).json()
    assert grant["status"] == "pending"
    rejected = _act(demo, "insurer", grant["id"], "reject", reason="pricing use only")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    late = _act(demo, "supervisor", grant["id"], "approve")
    assert late.status_code == 409 and late.json()["error"]["code"] == "CONFLICT"
    assert _act(demo, "fintech", grant["id"], "reject", reason="x").status_code == 403
    assert _act(demo, "insurer", grant["id"], "reject").status_code == 422  # reason required
    history = _get(demo, "fintech", f"/v1/grants/{grant['id']}").json()["history"]
    assert [(e["event"], e["party"], e["by"]) for e in history] == [
        ("requested", None, "fintech"),
        ("rejected", "insurer", "insurer"),
    ]
    assert history[1]["reason"] == "pricing use only"
    entry = next(e for e in _ledger(demo) if e.get("grant") == grant["id"]
                 and e["type"] == "grant_rejected")  # fmt: skip
    assert entry["reason"] == "pricing use only" and entry["by"] == "insurer"


def test_each_role_lists_the_grants_it_may_see(demo) -> None:
    mine = _request(demo, who="analyst", purpose="public_welfare").json()["id"]

    def listed(who: str, **params) -> set[str]:
        return {g["id"] for g in _get(demo, who, "/v1/grants", **params).json()["items"]}

    assert mine in listed("analyst") and mine not in listed("fintech")
    assert mine in listed("insurer")  # its approval is required
    assert mine not in listed("city-hospital")  # not its asset
    assert mine in listed("supervisor") and mine in listed("operator")
    assert mine in listed("supervisor", status="pending")
    assert mine not in listed("supervisor", status="active")
    assert _get(demo, "supervisor", "/v1/grants", status="bogus").status_code == 422
    assert _get(demo, "city-hospital", f"/v1/grants/{mine}").status_code == 403


def test_history_follows_every_change(demo) -> None:
    grant = _request(demo).json()["id"]
    _act(demo, "insurer", grant, "approve")
    _act(demo, "supervisor", grant, "approve")
    assert demo.query(CLAIMS, who="fintech", grant_id=grant).status_code == 200
    revoked = _act(demo, "supervisor", grant, "revoke", reason="contract ended")
    assert revoked.json()["status"] == "revoked"
    denied = demo.query(CLAIMS, who="fintech", grant_id=grant)
    assert denied.status_code == 403
    history = _get(demo, "supervisor", f"/v1/grants/{grant}").json()["history"]
    assert [(e["event"], e["by"]) for e in history] == [
        ("requested", "fintech"),
        ("approved", "insurer"),
        ("approved", "supervisor"),
        ("activated", "supervisor"),
        ("revoked", "supervisor"),
    ]
    assert history[-1]["reason"] == "contract ended"
    kinds = [e["type"] for e in _ledger(demo) if e.get("grant") in (grant, {"id": grant})
             or (isinstance(e.get("grant"), dict) and e["grant"]["id"] == grant)]  # fmt: skip
    assert kinds == ["grant_requested", "grant_approved", "grant_approved", "grant_revoked"]


def test_a_grant_expires_at_its_term_and_the_expiry_is_recorded(demo) -> None:
    until = datetime.now(UTC) + timedelta(seconds=4)
    grant = _request(demo, valid_until=until.strftime("%Y-%m-%dT%H:%M:%SZ")).json()["id"]
    _act(demo, "insurer", grant, "approve")
    _act(demo, "supervisor", grant, "approve")
    assert demo.query(CLAIMS, who="fintech", grant_id=grant).status_code == 200
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 1.1)
    denied = demo.query(CLAIMS, who="fintech", grant_id=grant)
    assert denied.status_code == 403
    body = _get(demo, "fintech", f"/v1/grants/{grant}").json()
    assert body["status"] == "expired"
    assert body["history"][-1]["event"] == "expired" and body["history"][-1]["by"] == "system"
    expired = [e for e in _ledger(demo) if e["type"] == "grant_expired" and e["grant"] == grant]
    assert len(expired) == 1
