"""Emergency stops over HTTP: suspend and resume a principal, grant or asset, with effect on the
very next request, work already running cancelled, and every step in the ledger."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support import start_server, stop_server

VISITS = "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex"
CLAIMS = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"
# Every visit meets every claim of its facility: some 65 million rows, seconds of work.
SLOW = (
    "SELECT v.sex, COUNT(*) AS n FROM hospital.visits v "
    "JOIN insurance.claims c ON v.facility_code = c.facility_code GROUP BY v.sex"
)


def _post(server, who: str, path: str, body: dict):
    with server.client(who) as client:
        return client.post(path, json=body)


def _grant_of(server, who: str) -> str:
    with server.client(who) as client:
        return client.get("/v1/grants").json()["items"][0]["id"]


def _rules(response) -> list[str]:
    return [v["rule"] for v in response.json()["error"].get("violations", [])]


def test_suspending_a_developer_stops_every_request_until_resumed(fresh_demo) -> None:
    assert fresh_demo.query(VISITS).status_code == 200
    stop = {"principal": "analyst", "reason": "exfiltration suspected"}
    suspended = _post(fresh_demo, "supervisor", "/v1/emergency/suspend", stop)
    assert suspended.status_code == 200, suspended.json()
    body = suspended.json()
    assert body["kind"] == "principal" and body["target"] == "analyst"
    assert body["by"] == "supervisor" and "ledger_index" in body["receipt"]

    refused = fresh_demo.query(VISITS)
    assert refused.status_code == 403 and "principal_inactive" in _rules(refused)
    with fresh_demo.client("analyst") as client:
        assert client.get("/v1/assets").status_code == 403
    assert fresh_demo.query(CLAIMS, who="fintech").status_code == 200  # others go on

    resume = {"principal": "analyst", "reason": "cleared by review"}
    assert _post(fresh_demo, "operator", "/v1/emergency/resume", resume).status_code == 200
    assert fresh_demo.query(VISITS).status_code == 200

    types = [(e["type"], e.get("by")) for e in fresh_demo.ledger() if "emergency" in e["type"]]
    assert types == [("emergency_suspended", "supervisor"), ("emergency_resumed", "operator")]
    denials = [e for e in fresh_demo.ledger() if e.get("principal") == "analyst"]
    assert any("principal_inactive" in e.get("reasons", []) for e in denials)


def test_suspending_a_grant_or_an_asset_stops_only_what_depends_on_it(fresh_demo) -> None:
    grant = _grant_of(fresh_demo, "fintech")
    stop = {"grant": grant, "reason": "scope exceeded"}
    assert _post(fresh_demo, "supervisor", "/v1/emergency/suspend", stop).status_code == 200
    refused = fresh_demo.query(CLAIMS, who="fintech")
    assert refused.status_code == 403 and "grant_inactive" in _rules(refused)
    with fresh_demo.client("fintech") as client:
        assert client.get(f"/v1/grants/{grant}").json()["status"] == "suspended"
    assert fresh_demo.query(CLAIMS).status_code == 200  # the analyst's grant is untouched
    assert _post(fresh_demo, "supervisor", "/v1/emergency/resume", stop).status_code == 200
    assert fresh_demo.query(CLAIMS, who="fintech").status_code == 200

    stop = {"asset": "hospital.visits", "reason": "source data recalled"}
    assert _post(fresh_demo, "operator", "/v1/emergency/suspend", stop).status_code == 200
    refused = fresh_demo.query(VISITS)
    assert refused.status_code == 403 and "asset_inactive" in _rules(refused)
    assert fresh_demo.query(CLAIMS).status_code == 200  # other assets stay open
    request = {"assets": ["hospital.visits"], "purpose": "public_welfare", "scenario": "s",
               "methods": ["sql"], "valid_until": "2030-01-01T00:00:00Z"}  # fmt: skip
    asked = _post(fresh_demo, "analyst", "/v1/grants", request)
    assert asked.status_code == 403 and "asset_inactive" in _rules(asked)
    assert _post(fresh_demo, "operator", "/v1/emergency/resume", stop).status_code == 200
    assert fresh_demo.query(VISITS).status_code == 200


@pytest.mark.parametrize(
    ("who", "body", "status", "code"),
    [
        ("supervisor", {"principal": "analyst", "grant": "g_0000000000000000", "reason": "x"},
         422, "BAD_REQUEST"),
        ("supervisor", {"principal": "analyst"}, 422, "BAD_REQUEST"),
        ("supervisor", {"principal": "analyst", "reason": ""}, 422, "BAD_REQUEST"),
        ("supervisor", {"asset": "../etc", "reason": "x"}, 422, "BAD_REQUEST"),
        ("supervisor", {"grant": "g_0000000000000000", "reason": "x"}, 404, "NOT_FOUND"),
        ("supervisor", {"asset": "nowhere.nothing", "reason": "x"}, 404, "NOT_FOUND"),
        ("supervisor", {"principal": "nobody", "reason": "x"}, 404, "NOT_FOUND"),
        ("supervisor", {"principal": "supervisor", "reason": "x"}, 422, "BAD_REQUEST"),
        ("analyst", {"principal": "fintech", "reason": "x"}, 403, "POLICY_DENIED"),
        ("city-hospital", {"asset": "hospital.visits", "reason": "x"}, 403, "POLICY_DENIED"),
    ],
)  # fmt: skip
def test_bad_emergency_requests(demo, who: str, body: dict, status: int, code: str) -> None:
    response = _post(demo, who, "/v1/emergency/suspend", body)
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code


def test_suspending_twice_or_resuming_what_runs_is_a_conflict(fresh_demo) -> None:
    stop = {"principal": "fintech", "reason": "x"}
    assert _post(fresh_demo, "supervisor", "/v1/emergency/resume", stop).status_code == 409
    assert _post(fresh_demo, "supervisor", "/v1/emergency/suspend", stop).status_code == 200
    again = _post(fresh_demo, "supervisor", "/v1/emergency/suspend", stop)
    assert again.status_code == 409 and again.json()["error"]["code"] == "CONFLICT"


def _run_in_background(server, sql: str, who: str = "analyst") -> tuple[threading.Thread, list]:
    answers: list = []
    thread = threading.Thread(target=lambda: answers.append(server.query(sql, who=who)))
    thread.start()
    time.sleep(1.0)  # let it reach the enclave; it needs several seconds more
    return thread, answers


@pytest.mark.parametrize(
    ("how", "path", "body"),
    [
        ("revoke", "/v1/grants/{grant}/revoke", {}),
        ("suspend grant", "/v1/emergency/suspend", {"grant": "{grant}", "reason": "x"}),
        ("suspend developer", "/v1/emergency/suspend", {"principal": "analyst", "reason": "x"}),
        ("suspend asset", "/v1/emergency/suspend", {"asset": "insurance.claims", "reason": "x"}),
    ],
)
def test_a_stop_cancels_the_query_running_under_it(fresh_demo, how: str, path: str, body: dict):
    grant = _grant_of(fresh_demo, "analyst")
    thread, answers = _run_in_background(fresh_demo, SLOW)
    filled = {key: value.format(grant=grant) for key, value in body.items()}
    stopped = _post(fresh_demo, "supervisor", path.format(grant=grant), filled)
    assert stopped.status_code == 200, stopped.json()
    thread.join(timeout=30)
    answer = answers[0]
    assert answer.status_code == 409, answer.json()
    assert answer.json()["error"]["code"] == "CANCELLED"
    assert "rows" not in answer.json()
    entries = fresh_demo.ledger()
    cancelled = [e for e in entries if e.get("outcome") == "cancelled"]
    assert len(cancelled) == 1 and cancelled[0]["principal"] == "analyst"
    assert "cost" not in cancelled[0]
    stop_entry = next(e for e in entries if e["type"] in ("grant_revoked", "emergency_suspended"))
    # Its developer reads this entry: a count of stopped work would say whether a held job
    # was still running. Each stopped request has its own entry (above).
    assert "cancelled" not in stop_entry
    if how.startswith("suspend"):  # the overseer who stopped it is told how much it stopped
        assert stopped.json()["cancelled"] == 1


def test_a_stop_made_through_another_gateway_process_holds_back_the_release(tmp_path) -> None:
    """Two gateway processes share one home: a revocation through the second cannot kill the
    first's worker, but the first checks again before releasing and releases nothing."""
    env = {"VEIL_QUERY_TIMEOUT_S": "60"}
    first = start_server(tmp_path / "home", env=env)
    second = start_server(tmp_path / "home", env=env, command="serve")
    try:
        grant = _grant_of(first, "analyst")
        thread, answers = _run_in_background(first, SLOW)
        assert _post(second, "supervisor", f"/v1/grants/{grant}/revoke", {}).status_code == 200
        thread.join(timeout=90)
        answer = answers[0]
        assert answer.status_code == 409, answer.json()
        assert answer.json()["error"]["code"] == "CANCELLED" and "rows" not in answer.json()
        outcomes = [e.get("outcome") for e in second.ledger() if e.get("type") == "query"]
        assert outcomes[-1] == "cancelled"
    finally:
        stop_server(second)
        stop_server(first)
