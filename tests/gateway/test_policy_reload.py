"""Operators' modules take effect without a restart, in both engines, and broken ones never do."""

from __future__ import annotations

import json
import shutil
import time

import httpx

from tests.support import OPERATOR_POLICY, Server, start_opa, start_server, stop_server

SQL = "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan"
FREEZE = """package veil.authz

import rego.v1

deny contains "maintenance_freeze" if input.scope == "query:run"
"""


def _reasons(response: httpx.Response) -> list[str]:
    return [v["rule"] for v in response.json()["error"]["violations"]]


def _loaded(server: Server) -> dict:
    with server.client("operator") as client:
        response = client.get("/v1/policies")
    assert response.status_code == 200
    return response.json()


def _reload(server: Server, who: str = "operator") -> httpx.Response:
    with server.client(who) as client:
        return client.post("/v1/policies/reload")


def test_embedded_reload_swaps_modules_only_when_they_compile(tmp_path) -> None:
    operator_dir = tmp_path / "operator-policies"
    operator_dir.mkdir()
    shutil.copy(OPERATOR_POLICY / "tests.rego", operator_dir)
    server = start_server(tmp_path / "home", env={"VEIL_POLICY_DIR": str(operator_dir)})
    try:
        before = _loaded(server)
        assert before["engine"] == "embedded"
        assert "policies/authz.rego" in before["modules"]
        assert server.query(SQL).status_code == 200

        (operator_dir / "freeze.rego").write_text(FREEZE)
        assert server.query(SQL).status_code == 200, "modules change only on reload"
        assert _reload(server, who="analyst").status_code == 403
        reloaded = _reload(server)
        assert reloaded.status_code == 200
        body = reloaded.json()
        assert body["digest"] != before["digest"]
        assert str(operator_dir / "freeze.rego") in body["modules"]
        assert body["receipt"]["ledger_index"] >= 0
        frozen = server.query(SQL)
        assert frozen.status_code == 403 and _reasons(frozen) == ["maintenance_freeze"]

        (operator_dir / "broken.rego").write_text("package veil.authz\n\nthis is not rego\n")
        refused = _reload(server)
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "POLICY_INVALID"
        assert _loaded(server)["digest"] == body["digest"]
        assert _reasons(server.query(SQL)) == ["maintenance_freeze"]

        (operator_dir / "broken.rego").unlink()
        (operator_dir / "freeze.rego").unlink()
        assert _reload(server).json()["digest"] == before["digest"]
        assert server.query(SQL).status_code == 200

        with server.client("supervisor") as client:
            items = client.get("/v1/ledger/entries", params={"limit": 1000}).json()["items"]
        loads = [json.loads(i["data"]) for i in items if '"policy_loaded"' in i["data"]]
        assert [entry["digest"] for entry in loads] == [body["digest"], before["digest"]]
        assert all(entry["by"] == "operator" for entry in loads)
    finally:
        stop_server(server)


HOLD_QUERIES = """package veil.authz

import rego.v1

manual_review contains "sensitive_project" if input.scope == "query:run"
"""


def test_a_query_held_for_review_is_refused_and_recorded(tmp_path) -> None:
    operator_dir = tmp_path / "operator-policies"
    operator_dir.mkdir()
    shutil.copy(OPERATOR_POLICY / "tests.rego", operator_dir)
    (operator_dir / "hold.rego").write_text(HOLD_QUERIES)
    server = start_server(tmp_path / "home", env={"VEIL_POLICY_DIR": str(operator_dir)})
    try:
        held = server.query(SQL)
        assert held.status_code == 403, held.text
        assert _reasons(held) == ["manual_review_required"]
        with server.client("supervisor") as client:
            items = client.get("/v1/ledger/entries", params={"limit": 1000}).json()["items"]
        entry = json.loads(items[-1]["data"])
        assert entry["outcome"] == "denied"
        assert entry["decision"]["reasons"] == ["manual_review_required"]
        assert "rows" not in entry and "cost" not in entry
    finally:
        stop_server(server)


def test_opa_sidecar_picks_up_operator_modules_without_a_gateway_restart(tmp_path) -> None:
    operator_dir = tmp_path / "operator-policies"
    operator_dir.mkdir()
    shutil.copy(OPERATOR_POLICY / "tests.rego", operator_dir)
    opa = start_opa(operator_dir=operator_dir)
    server = start_server(
        tmp_path / "home", env={"VEIL_POLICY_ENGINE": "opa", "VEIL_OPA_URL": opa.url}
    )
    try:
        before = _loaded(server)
        assert before["engine"] == "opa"
        assert server.query(SQL).status_code == 200

        (operator_dir / "freeze.rego").write_text(FREEZE)
        deadline = time.monotonic() + 60
        while (response := server.query(SQL)).status_code == 200:
            assert time.monotonic() < deadline, "OPA never loaded the new module"
            time.sleep(0.5)
        assert _reasons(response) == ["maintenance_freeze"]
        reloaded = _reload(server)
        assert reloaded.status_code == 200
        assert reloaded.json()["digest"] != before["digest"]
        assert any(name.endswith("freeze.rego") for name in reloaded.json()["modules"])
    finally:
        stop_server(server)
        opa.stop()
