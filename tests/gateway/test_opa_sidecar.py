"""The gateway with VEIL_POLICY_ENGINE=opa: a real OPA server decides, and its loss fails closed."""

from __future__ import annotations

import httpx

from tests.support import start_opa, start_server, stop_server

SQL = "SELECT district, COUNT(*) AS n FROM hospital.visits GROUP BY district"


def test_queries_are_decided_by_opa_and_fail_closed_without_it(tmp_path) -> None:
    opa = start_opa()
    server = start_server(
        tmp_path / "home", env={"VEIL_POLICY_ENGINE": "opa", "VEIL_OPA_URL": opa.url}
    )
    try:
        assert server.query(SQL).status_code == 200
        assert server.query(SQL, who="fintech").status_code == 403
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        opa.stop()
        response = server.query(SQL)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "POLICY_DENIED"
        assert response.json()["error"]["violations"] == [{"rule": "policy_error"}]
        assert "rows" not in response.json()
        assert httpx.get(f"{server.url}/readyz").status_code == 503
    finally:
        opa.stop()
        stop_server(server)
