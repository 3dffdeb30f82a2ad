"""The life of a grant over HTTP: checks against the cards, joint approval or rejection with a
reason, who may list what, history, revocation with a reason and expiry at the term."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.support import start_server, stop_server

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
    entry = next(e for e in demo.ledger() if e.get("grant") == grant["id"]
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
    demo.approve(grant, "insurer", "supervisor")
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
    kinds = [e["type"] for e in demo.ledger() if e.get("grant") in (grant, {"id": grant})
             or (isinstance(e.get("grant"), dict) and e["grant"]["id"] == grant)]  # fmt: skip
    assert kinds == ["grant_requested", "grant_approved", "grant_approved", "grant_revoked"]


def test_a_grant_expires_at_its_term_and_the_expiry_is_recorded(demo) -> None:
    until = datetime.now(UTC) + timedelta(seconds=4)
    grant = _request(demo, valid_until=until.strftime("%Y-%m-%dT%H:%M:%SZ")).json()["id"]
    demo.approve(grant, "insurer", "supervisor")
    assert demo.query(CLAIMS, who="fintech", grant_id=grant).status_code == 200
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 1.1)
    denied = demo.query(CLAIMS, who="fintech", grant_id=grant)
    assert denied.status_code == 403
    body = _get(demo, "fintech", f"/v1/grants/{grant}").json()
    assert body["status"] == "expired"
    assert body["history"][-1]["event"] == "expired" and body["history"][-1]["by"] == "system"
    expired = [e for e in demo.ledger() if e["type"] == "grant_expired" and e["grant"] == grant]
    assert len(expired) == 1


def _active(server, **changes) -> str:
    grant = _request(server, **changes)
    assert grant.status_code == 201, grant.json()
    grant_id = grant.json()["id"]
    assert server.approve(grant_id, "insurer", "supervisor")["status"] == "active"
    return grant_id


def test_a_daily_query_quota_stops_the_grant_when_used_up(demo) -> None:
    grant = _active(demo, quotas={"queries_per_day": 2})
    for _ in range(2):
        assert demo.query(CLAIMS, who="fintech", grant_id=grant).status_code == 200
    over = demo.query(CLAIMS, who="fintech", grant_id=grant)
    assert over.status_code == 429, over.json()
    error = over.json()["error"]
    assert error["code"] == "BUDGET_EXHAUSTED"
    assert error["violations"] == [{"rule": "quota_exhausted", "column": "queries_per_day"}]
    assert "retry-after" not in over.headers  # waiting does not bring a spent quota back
    # Unpinned, the query is served by the developer's other grant, which has no quota.
    other = demo.query(CLAIMS, who="fintech")
    assert other.status_code == 200, other.json()
    body = _get(demo, "fintech", f"/v1/grants/{grant}").json()
    assert body["quotas"] == {"queries_per_day": 2}
    assert body["quota_use"]["queries_today"] == 2
    refused = [e for e in demo.ledger() if e.get("grant_id") == grant and e.get("quota")]
    assert len(refused) == 1 and refused[0]["outcome"] == "denied"
    assert refused[0]["decision"]["reasons"] == ["quota_exhausted"] and "cost" not in refused[0]


def test_a_rows_scanned_quota_counts_every_row_read(demo) -> None:
    rows = next(a for a in _get(demo, "fintech", "/v1/assets").json()["items"]
                if a["id"] == "insurance.claims")["row_count"]  # fmt: skip
    grant = _active(demo, quotas={"rows_scanned": 2 * rows + rows // 2})
    for _ in range(2):
        assert demo.query(CLAIMS, who="fintech", grant_id=grant).status_code == 200
    over = demo.query(CLAIMS, who="fintech", grant_id=grant)
    assert over.status_code == 429
    assert over.json()["error"]["violations"][0]["column"] == "rows_scanned"
    assert (
        _get(demo, "fintech", f"/v1/grants/{grant}").json()["quota_use"]["rows_scanned"] == 2 * rows
    )


def test_a_retried_query_is_counted_once(demo) -> None:
    grant = _active(demo, quotas={"queries_per_day": 1})
    with demo.client("fintech") as client:
        send = {"sql": CLAIMS, "grant_id": grant}
        first = client.post("/v1/queries", json=send, headers={"Idempotency-Key": "quota-1"})
        again = client.post("/v1/queries", json=send, headers={"Idempotency-Key": "quota-1"})
    assert first.status_code == again.status_code == 200
    assert again.json()["query_id"] == first.json()["query_id"]
    assert demo.query(CLAIMS, who="fintech", grant_id=grant).status_code == 429


def test_concurrent_queries_never_overspend_a_quota(tmp_path) -> None:
    server = start_server(tmp_path / "home", env={"VEIL_QUERIES_RUNNING": "8"})
    try:
        grant = _active(server, quotas={"queries_per_day": 3})
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(
                lambda _: server.query(CLAIMS, who="fintech", grant_id=grant), range(8)
            ))  # fmt: skip
    finally:
        stop_server(server)
    assert sorted(answer.status_code for answer in answers) == [200] * 3 + [429] * 5


@pytest.mark.parametrize(
    "quotas",
    [{"queries_per_day": 0}, {"rows_scanned": -5}, {"queries_per_day": 1.5}, {"bytes": 10}],
)
def test_bad_quotas_are_refused(demo, quotas: dict) -> None:
    response = _request(demo, quotas=quotas)
    assert response.status_code == 422 and response.json()["error"]["code"] == "BAD_REQUEST"
