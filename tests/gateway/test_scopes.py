"""Every route is decided by the policy for its scope, in both engines, and fails closed."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from itertools import count

import httpx
from fastapi.routing import APIRoute, iter_route_contexts

from gateway.app import create_app
from gateway.authorisation import SCOPE_OF
from policies import EmbeddedEngine
from tests.support import Opa, Server, start_opa, start_server, stop_server

# The disclosure report is public by design: the documents ask for open disclosure. So are the
# ledger's checkpoints, key and proofs, so that anyone can verify a receipt, and registration
# certificates with their standing, as the register is.
PUBLIC = {
    "/healthz", "/readyz", "/v1/disclosure", "/v1/ledger/checkpoint",
    "/v1/ledger/public-key", "/v1/ledger/proof/inclusion", "/v1/ledger/proof/consistency",
    "/v1/certificates/{code}",
}  # fmt: skip
# Prometheus's, with the metrics token: metrics count everyone's activity, so no key opens them.
SCRAPED = {"/metrics"}
# Ordered so that the principals a case allows act after every one it refuses.
WHO = ["admin", "supervisor", "insurer", "analyst", "fintech", "city-hospital", "operator"]
SQL = "SELECT plan, COUNT(*) AS n FROM insurance.claims GROUP BY plan"
serial = count()


def _scopes_of(dependant) -> list[str]:
    found = [SCOPE_OF[dependant.call]] if dependant.call in SCOPE_OF else []
    for child in dependant.dependencies:
        found += _scopes_of(child)
    return found


def _routes() -> Iterator[tuple[str, str, list[str]]]:
    """The API's routes. The console's pages decide their scopes in their handlers, through
    the same services (tests/console); they are not part of the API's contract."""
    for context in iter_route_contexts(create_app().routes):
        if isinstance(context.route, APIRoute) and context.include_in_schema:
            for method in sorted(context.methods):
                yield method, context.path, _scopes_of(context.route.dependant)


def test_every_route_declares_exactly_one_scope() -> None:
    undeclared = [
        (method, path, scopes)
        for method, path, scopes in _routes()
        if len(scopes) != (0 if path in PUBLIC | SCRAPED else 1)
    ]
    assert undeclared == []
    assert {path for _, path, _ in _routes()} >= PUBLIC | SCRAPED


def test_every_declared_scope_is_covered_by_the_shipped_policy() -> None:
    engine = EmbeddedEngine()
    for scope in {scope for _, _, scopes in _routes() for scope in scopes}:
        decision = engine.decide({"scope": scope})
        assert "scope_not_covered" not in decision.reasons, scope
    assert engine.decide({"scope": "made:up"}).reasons == ("scope_not_covered",)


def _card(asset_id: str, provider: str) -> str:
    return json.dumps(
        {
            "id": asset_id,
            "title": "Scope test",
            "provider": provider,
            "classification": "L2",
            "domain": "test",
            "rights": {"holder": provider, "personal_data": True},
            "columns": [
                {"name": "unit", "type": "VARCHAR", "role": "privacy_unit"},
                {"name": "kind", "type": "VARCHAR", "role": "dimension"},
            ],
            "revenue_shares_bp": {provider: 10000},
        }
    )


def _register(client: httpx.Client, asset_id: str, provider: str = "city-hospital"):
    csv = "unit,kind\n" + "".join(f"u{i},k{i % 2}\n" for i in range(30))
    return client.post(
        "/v1/assets",
        data={"card": _card(asset_id, provider)},
        files={"file": ("data.csv", io.BytesIO(csv.encode()), "text/csv")},
    )


def _new_grant(server: Server) -> str:
    with server.client("analyst") as client:
        response = client.post(
            "/v1/grants",
            json={
                "assets": ["hospital.visits"],
                "purpose": "public_welfare",
                "scenario": "scope test",
                "methods": ["sql"],
                "valid_until": "2030-01-01T00:00:00Z",
            },
        )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _cases(
    server: Server,
) -> list[tuple[str, Callable[[httpx.Client], httpx.Response], set[str]]]:
    """(name, request, principals allowed): one request per route, shared state set up first."""
    tag = next(serial)
    readable, approvable, revocable = _new_grant(server), _new_grant(server), _new_grant(server)
    with server.client("operator") as operator:
        assert _register(operator, f"scopes.doomed_{tag}").status_code == 201
    developers = {"analyst", "fintech"}
    return [
        ("catalog:read list", lambda c: c.get("/v1/assets"), set(WHO)),
        ("catalog:read one", lambda c: c.get("/v1/assets/hospital.visits"), set(WHO)),
        (
            "principal:manage",
            lambda c: c.post(
                "/v1/principals",
                json={"id": f"p{tag}-{next(serial)}", "roles": ["developer"], "org": "x"},
            ),
            {"admin"},
        ),
        (
            "asset:register",
            lambda c: _register(c, f"scopes.new_{tag}_{next(serial)}"),
            {"city-hospital", "operator"},
        ),
        (
            "asset:register for another provider",
            lambda c: _register(c, f"scopes.other_{tag}_{next(serial)}", provider="insurer"),
            {"insurer", "operator"},
        ),
        (
            "asset:destroy",
            lambda c: c.request(
                "DELETE", f"/v1/assets/scopes.doomed_{tag}", json={"reason": "scope test"}
            ),
            {"operator"},
        ),
        (
            "grant:request",
            lambda c: c.post(
                "/v1/grants",
                json={
                    "assets": ["insurance.claims"],
                    "purpose": "public_welfare",
                    "scenario": "s",
                    "methods": ["sql"],
                    "valid_until": "2030-01-01T00:00:00Z",
                },
            ),
            developers,
        ),
        ("grant:read list", lambda c: c.get("/v1/grants"), set(WHO)),
        (
            "grant:read one",
            lambda c: c.get(f"/v1/grants/{readable}"),
            {"admin", "operator", "supervisor", "city-hospital", "analyst"},
        ),
        (
            "grant:approve",
            lambda c: c.post(f"/v1/grants/{approvable}/approve"),
            {"supervisor", "city-hospital"},
        ),
        (
            "grant:revoke",
            lambda c: c.post(f"/v1/grants/{revocable}/revoke"),
            {"supervisor", "city-hospital", "operator"},
        ),
        ("query:run", lambda c: c.post("/v1/queries", json={"sql": SQL}), developers),
        ("ledger:read", lambda c: c.get("/v1/ledger/entries"), set(WHO)),
        ("policy:read", lambda c: c.get("/v1/policies"), {"admin", "supervisor", "operator"}),
        ("policy:reload", lambda c: c.post("/v1/policies/reload"), {"operator"}),
    ]


def _opa_env(opa: Opa) -> dict[str, str]:
    return {"VEIL_POLICY_ENGINE": "opa", "VEIL_OPA_URL": opa.url}


def test_each_scope_admits_exactly_its_principals(each_engine: Server) -> None:
    server = each_engine
    wrong = []
    for name, send, allowed in _cases(server):
        for who in WHO:
            with server.client(who) as client:
                response = send(client)
            if who in allowed:
                if response.status_code == 403:
                    wrong.append((name, who, response.json()))
            elif response.status_code != 403 or response.json()["error"]["code"] != "POLICY_DENIED":
                wrong.append((name, who, response.status_code))
    assert wrong == []


def test_denials_name_their_reasons_and_reach_the_ledger(each_engine: Server) -> None:
    server = each_engine
    with server.client("analyst") as client:
        response = client.post("/v1/policies/reload")
        assert response.status_code == 403
        assert response.json()["error"]["violations"] == [{"rule": "role_not_permitted"}]
    with server.client("insurer") as client:
        response = _register(client, f"scopes.theft_{next(serial)}")
        assert response.json()["error"]["violations"] == [{"rule": "not_asset_provider"}]
    with server.client("supervisor") as client:
        items = client.get("/v1/ledger/entries", params={"limit": 1000}).json()["items"]
    denials = [json.loads(item["data"]) for item in items]
    denials = [entry for entry in denials if entry.get("type") == "access_denied"]
    assert any(
        entry["scope"] == "policy:reload"
        and entry["principal"] == "analyst"
        and entry["reasons"] == ["role_not_permitted"]
        and entry["decision_id"]
        for entry in denials
    )


def test_stopping_opa_fails_every_scope_closed(tmp_path) -> None:
    opa = start_opa()
    server = start_server(tmp_path / "home", env=_opa_env(opa))
    try:
        assert server.query(SQL).status_code == 200
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        cases = _cases(server)
        assert "veil_policy_engine_up 1.0" in server.metrics()
        opa.stop()
        _assert_every_case_denied_for_policy_error(server, cases)
        assert httpx.get(f"{server.url}/readyz").status_code == 503
        metrics = server.metrics()
        assert "veil_policy_engine_up 0.0" in metrics
        errors = re.findall(
            r'^veil_policy_decisions_total\{.*result="error".*\} (\S+)$', metrics, re.M
        )
        assert sum(float(count) for count in errors) >= len(cases)
        # An engine that cannot decide refuses everyone alike: no one is probing.
        for _ in range(25):
            assert server.query(SQL).status_code == 403
        metrics = server.metrics()
        assert "veil_refusal_spikes_total 0.0" in metrics
        assert 'veil_refusals_total{kind="denied",reason="policy_error"}' in metrics
    finally:
        opa.stop()
        stop_server(server)


def _assert_every_case_denied_for_policy_error(server: Server, cases) -> None:  # noqa: ANN001
    leaked = []
    for name, send, allowed in cases:
        for who in sorted(allowed):
            with server.client(who) as client:
                response = send(client)
            body = response.json()
            denied = response.status_code == 403 and body["error"]["violations"] == [
                {"rule": "policy_error"}
            ]
            if not denied or "rows" in body:
                leaked.append((name, who, response.status_code))
    assert leaked == []
