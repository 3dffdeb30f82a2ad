"""Government-guided price caps over HTTP: supervisors alone set and remove them, a card priced
above the cap that applies (its asset's, else its classification's) is refused field by field,
a cap set after registration has the policy refuse the asset's paid queries in both engines
until it is lifted, and every change is a ledger entry the ledger still verifies with."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.errors import FailureGroup

from tests.gateway.test_contract import BOUNDED, CHECKS
from tests.support import Server

ROWS = "rider,line\n" + "".join(f"r{i},{'east' if i % 3 else 'west'}\n" for i in range(600))
WHO = ["admin", "operator", "supervisor", "city-hospital", "insurer", "analyst", "fintech"]


def _card(asset_id: str, classification: str = "L2", **pricing: object) -> dict:
    return {
        "id": asset_id, "title": "Bus trips", "provider": "city-hospital",
        "classification": classification, "domain": "transport",
        "rights": {"holder": "city-hospital", "personal_data": True},
        "columns": [
            {"name": "rider", "type": "VARCHAR", "role": "privacy_unit"},
            # A public domain: every answer shows both lines, however noisy their counts.
            {"name": "line", "type": "VARCHAR", "role": "dimension", "domain": ["east", "west"]},
        ],
        "pricing": {"currency": "CNY", **pricing},
        "revenue_shares_bp": {"city-hospital": 10000},
    }  # fmt: skip


def _upload(server: Server, card: dict, path: str = "/v1/assets") -> httpx.Response:
    with server.client("city-hospital") as client:
        return client.post(
            path,
            data={"card": json.dumps(card)},
            files={"file": ("trips.csv", io.BytesIO(ROWS.encode()), "text/csv")},
        )


def _revise(server: Server, card: dict) -> httpx.Response:
    with server.client("city-hospital") as client:
        return client.put(f"/v1/assets/{card['id']}", json=card)


def _registered(server: Server, classification: str = "L2", **pricing: object) -> dict:
    card = _card(f"caps.trips_{uuid.uuid4().hex[:10]}", classification, **pricing)
    registered = _upload(server, card)
    assert registered.status_code == 201, registered.json()
    return card


def _set(server: Server, who: str = "supervisor", **body: object) -> httpx.Response:
    body = {"currency": "CNY", "reason": "guided price", **body}
    with server.client(who) as client:
        return client.put("/v1/price-caps", json=body)


def _remove(server: Server, who: str = "supervisor", **target: str) -> httpx.Response:
    with server.client(who) as client:
        return client.delete("/v1/price-caps", params=target)


def _caps(server: Server, who: str = "analyst") -> list[dict]:
    with server.client(who) as client:
        listed = client.get("/v1/price-caps")
    assert listed.status_code == 200, listed.json()
    return listed.json()["items"]


def _error(response: httpx.Response) -> tuple[int, str, list[tuple[str, str | None]]]:
    error = response.json()["error"]
    rules = [(v["rule"], v.get("column")) for v in error["violations"]]
    return response.status_code, error["code"], rules


def _clear(server: Server) -> None:
    """Lift every cap a test left, so the other tests sharing the demo answer as shipped."""
    for cap in _caps(server, "supervisor"):
        target = {k: cap[k] for k in ("asset", "classification") if cap.get(k)}
        assert _remove(server, **target).status_code == 200


@pytest.fixture
def server(demo: Server) -> Iterator[Server]:
    yield demo
    _clear(demo)


@pytest.fixture
def engine_server(each_engine: Server) -> Iterator[Server]:
    yield each_engine
    _clear(each_engine)


def test_a_supervisor_sets_a_cap_and_no_one_else_can(engine_server: Server) -> None:
    server = engine_server
    card = _registered(server, per_query_minor=100)
    before = len(server.ledger())
    for who in WHO:
        if who == "supervisor":
            continue
        refused = _set(server, who, asset=card["id"], max={"per_query_minor": 1})
        assert refused.status_code == 403, (who, refused.json())
        assert _error(refused)[1:] == ("POLICY_DENIED", [("role_not_permitted", None)])
        removed = _remove(server, who, asset=card["id"])
        assert removed.status_code == 403, (who, removed.json())
    # Nothing changed: no cap, no cap entry (each refusal is an access_denied entry).
    assert _caps(server) == []
    entries = server.ledger()[before:]
    assert {entry["type"] for entry in entries} == {"access_denied"}
    assert {entry["scope"] for entry in entries} == {"price_cap:set", "price_cap:remove"}

    done = _set(server, asset=card["id"], max={"per_query_minor": 100})
    assert done.status_code == 200, done.json()
    body = done.json()
    assert body["type"] == "price_cap_set" and body["by"] == "supervisor"
    assert body["asset"] == card["id"] and body["max"] == {"per_query_minor": 100}
    # Caps are public rules: every principal reads them.
    for who in WHO:
        assert [cap["asset"] for cap in _caps(server, who)] == [card["id"]]


def test_a_card_above_its_asset_cap_is_refused_and_one_at_the_cap_registers(
    server: Server,
) -> None:
    card = _registered(server, per_query_minor=100, per_1k_rows_scanned_minor=2)
    cap = {"per_query_minor": 120, "per_1k_rows_scanned_minor": 2}
    assert _set(server, asset=card["id"], max=cap).status_code == 200

    above = dict(card, pricing=dict(card["pricing"], per_query_minor=121))
    revised = _revise(server, above)
    assert _error(revised) == (
        422,
        "PRICE_ABOVE_CAP",
        [("price_above_cap", "pricing.per_query_minor")],
    )
    versioned = _upload(server, above, f"/v1/assets/{card['id']}/versions")
    assert _error(versioned) == (
        422,
        "PRICE_ABOVE_CAP",
        [("price_above_cap", "pricing.per_query_minor")],
    )
    with server.client("city-hospital") as client:
        assert client.get(f"/v1/assets/{card['id']}").json()["version"] == 1  # nothing changed

    at_cap = dict(card, pricing=dict(card["pricing"], per_query_minor=120))
    registered = _upload(server, at_cap, f"/v1/assets/{card['id']}/versions")
    assert registered.status_code == 201, registered.json()
    assert registered.json()["pricing"]["per_query_minor"] == 120
    assert _revise(server, at_cap).status_code == 200


def test_a_classification_cap_applies_unless_the_asset_has_its_own(server: Server) -> None:
    assert _set(server, classification="L1", max={"per_query_minor": 50}).status_code == 200
    refused = _upload(server, _card(f"caps.l1_{uuid.uuid4().hex[:8]}", "L1", per_query_minor=51))
    assert _error(refused) == (
        422,
        "PRICE_ABOVE_CAP",
        [("price_above_cap", "pricing.per_query_minor")],
    )
    card = _registered(server, "L1", per_query_minor=50)
    other = _registered(server, "L2", per_query_minor=5000)  # another level: not capped

    # The asset's own cap replaces its classification's, higher or lower.
    assert _set(server, asset=card["id"], max={"per_query_minor": 80}).status_code == 200
    assert (
        _revise(server, dict(card, pricing={"currency": "CNY", "per_query_minor": 80})).status_code
        == 200
    )
    over = _revise(server, dict(card, pricing={"currency": "CNY", "per_query_minor": 81}))
    assert _error(over)[1] == "PRICE_ABOVE_CAP"
    assert _remove(server, asset=card["id"]).status_code == 200
    back = _revise(server, dict(card, pricing={"currency": "CNY", "per_query_minor": 80}))
    assert _error(back)[1] == "PRICE_ABOVE_CAP"  # its classification's cap again
    assert _revise(server, other).status_code == 200


def test_an_expensive_plan_or_tier_behind_a_cheap_base_rate_is_refused(server: Server) -> None:
    card = _registered(server, per_query_minor=10, per_1k_rows_scanned_minor=1)
    cap = {"per_query_minor": 50, "per_1k_rows_scanned_minor": 5}
    assert _set(server, asset=card["id"], max=cap).status_code == 200
    base = card["pricing"]
    plan = dict(
        base, plans={"premium": {"per_query_minor": 5000}, "basic": {"per_query_minor": 50}}
    )
    assert _error(_revise(server, dict(card, pricing=plan))) == (
        422, "PRICE_ABOVE_CAP", [("price_above_cap", "pricing.plans.premium.per_query_minor")],
    )  # fmt: skip
    tiers = dict(base, row_tiers=[{"above_rows": 100, "per_1k_rows_scanned_minor": 4},
                                  {"above_rows": 1000, "per_1k_rows_scanned_minor": 9}])  # fmt: skip
    assert _error(_revise(server, dict(card, pricing=tiers))) == (
        422, "PRICE_ABOVE_CAP",
        [("price_above_cap", "pricing.row_tiers.1.per_1k_rows_scanned_minor")],
    )  # fmt: skip
    plan_tier = dict(base, plans={"sensitive": {"row_tiers": [
        {"above_rows": 10, "per_1k_rows_scanned_minor": 6}]}})  # fmt: skip
    assert _error(_revise(server, dict(card, pricing=plan_tier)))[2] == [
        ("price_above_cap", "pricing.plans.sensitive.row_tiers.0.per_1k_rows_scanned_minor")
    ]


def test_a_cap_in_another_currency_refuses_the_card(server: Server) -> None:
    card = _registered(server, per_query_minor=10)
    assert (
        _set(server, asset=card["id"], currency="USD", max={"per_query_minor": 10**6}).status_code
        == 200
    )
    refused = _revise(server, card)
    assert _error(refused) == (
        422, "PRICE_ABOVE_CAP", [("price_cap_currency_mismatch", "pricing.currency")],
    )  # fmt: skip


def _commercial_grant(server: Server, asset_id: str) -> str:
    with server.client("fintech") as client:
        asked = client.post(
            "/v1/grants",
            json={"assets": [asset_id], "purpose": "commercial_pricing", "scenario": "fares",
                  "methods": ["sql"], "valid_until": "2030-01-01T00:00:00Z"},
        )  # fmt: skip
    assert asked.status_code == 201, asked.json()
    server.approve(asked.json()["id"], "city-hospital", "supervisor")
    return asked.json()["id"]


def test_a_cap_set_after_registration_refuses_paid_queries_until_lifted(
    engine_server: Server,
) -> None:
    server = engine_server
    card = _registered(server, per_query_minor=100, per_1k_rows_scanned_minor=2)
    grant = _commercial_grant(server, card["id"])
    sql = f"SELECT line, COUNT(*) AS n FROM {card['id']} GROUP BY line"

    answered = server.query(sql, who="fintech", grant_id=grant)
    assert answered.status_code == 200, answered.json()
    assert answered.json()["cost"]["amount_minor"] >= 100

    assert _set(server, asset=card["id"], max={"per_query_minor": 99}).status_code == 200
    refused = server.query(sql, who="fintech", grant_id=grant)
    assert _error(refused) == (403, "POLICY_DENIED", [("price_above_cap", None)])
    recorded = [
        e for e in server.ledger() if e.get("type") == "query" and e.get("assets") == [card["id"]]
    ]
    assert recorded[-1]["outcome"] == "denied"
    assert recorded[-1]["decision"]["reasons"] == ["price_above_cap"]
    dry = server.query(sql, who="fintech", grant_id=grant, dry_run=True)
    assert dry.json()["decision"]["reasons"] == ["price_above_cap"]

    # A public-welfare grant is charged nothing, so the cap does not stand in its way.
    free = server.grant("analyst", [card["id"]], ["city-hospital", "supervisor"])
    assert server.query(sql, who="analyst", grant_id=free).status_code == 200

    assert _remove(server, asset=card["id"]).status_code == 200
    again = server.query(sql, who="fintech", grant_id=grant)
    assert again.status_code == 200, again.json()
    body = again.json()
    assert body["columns"] == ["line", "n"] and [row[0] for row in body["rows"]] == ["east", "west"]
    assert body["cost"]["amount_minor"] >= 100


def test_cap_changes_are_ledger_entries_and_the_ledger_verifies(server: Server) -> None:
    card = _registered(server, per_query_minor=10)
    first = _set(server, asset=card["id"], max={"per_query_minor": 10}).json()
    second = _set(
        server, asset=card["id"], max={"per_cpu_second_minor": 5}, reason="revised"
    ).json()
    assert second["replaced"] == {"currency": "CNY", "max": {"per_query_minor": 10},
                                  "by": "supervisor", "at": first["at"]}  # fmt: skip
    level = _set(server, classification="L1", max={"per_query_minor": 1}).json()
    removed = _remove(server, asset=card["id"]).json()
    assert removed["type"] == "price_cap_removed" and removed["max"] == {"per_cpu_second_minor": 5}
    assert removed["set_by"] == "supervisor" and removed["set_at"] == second["at"]

    with server.client("supervisor") as client:
        entries = client.get(
            "/v1/ledger/entries", params={"after": first["receipt"]["ledger_index"] - 1}
        )
    by_index = {item["index"]: json.loads(item["data"]) for item in entries.json()["items"]}
    for change in (first, second, level, removed):
        recorded = by_index[change["receipt"]["ledger_index"]]
        assert recorded["type"] == change["type"]
        assert {k: v for k, v in recorded.items() if k != "idempotency_key"} == {
            k: v for k, v in change.items() if k != "receipt" and v is not None
        }
    # The asset's provider reads its asset's caps; a developer reads none of them.
    readable = {
        who: {json.loads(item["data"]).get("type") for item in _entries_of(server, who)}
        for who in ("city-hospital", "analyst")
    }
    assert {"price_cap_set", "price_cap_removed"} <= readable["city-hospital"]
    assert not {"price_cap_set", "price_cap_removed"} & readable["analyst"]

    verified = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "ledger", "verify", "--home", str(server.home)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _entries_of(server: Server, who: str) -> list[dict]:
    items: list[dict] = []
    with server.client(who) as client:
        while page := client.get(
            "/v1/ledger/entries",
            params={"limit": 1000, **({"after": items[-1]["index"]} if items else {})},
        ).json()["items"]:
            items += page
    return items


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"max": {"per_query_minor": 1}}, ("INVALID_CAP", ("cap_target", "asset"))),
        ({"asset": "hospital.visits", "classification": "L3", "max": {"per_query_minor": 1}},
         ("INVALID_CAP", ("cap_target", "classification"))),
        ({"classification": "L5", "max": {"per_query_minor": 1}},
         ("INVALID_CAP", ("cap_target", "classification"))),
        ({"asset": "Not An Id", "max": {"per_query_minor": 1}}, ("INVALID_CAP", ("cap_target", "asset"))),
        ({"classification": "L3", "max": {}}, ("INVALID_CAP", ("cap_field", "max"))),
        ({"classification": "L3", "max": {"per_row_minor": 1}},
         ("INVALID_CAP", ("cap_field", "max.per_row_minor"))),
        ({"classification": "L3", "max": {"per_query_minor": -1}},
         ("INVALID_CAP", ("cap_field", "max.per_query_minor"))),
        ({"classification": "L3", "max": {"per_query_minor": 10**13}},
         ("INVALID_CAP", ("cap_field", "max.per_query_minor"))),
        ({"classification": "L3", "currency": "yuan", "max": {"per_query_minor": 1}},
         ("INVALID_CAP", ("cap_field", "currency"))),
        ({"classification": "L3", "reason": " ", "max": {"per_query_minor": 1}},
         ("INVALID_CAP", ("cap_field", "reason"))),
        ({"classification": "L3", "max": {"per_query_minor": True}},
         ("BAD_REQUEST", ("invalid_field", "max.per_query_minor"))),
        ({"classification": "L3", "max": {"per_query_minor": "1"}},
         ("BAD_REQUEST", ("invalid_field", "max.per_query_minor"))),
    ],
)  # fmt: skip
def test_a_cap_that_is_not_valid_is_refused(server: Server, body: dict, expected: tuple) -> None:
    refused = _set(server, **body)
    status, code, rules = _error(refused)
    assert (status, code) == (422, expected[0]) and expected[1] in rules
    assert _caps(server) == []


def test_what_is_not_there_cannot_be_capped_or_lifted(server: Server) -> None:
    unknown = _set(server, asset="caps.nothing_here", max={"per_query_minor": 1})
    assert _error(unknown) == (404, "NOT_FOUND", [("unknown_asset", None)])
    assert _error(_remove(server, classification="L2"))[:2] == (404, "NOT_FOUND")
    assert _error(_remove(server))[:2] == (422, "INVALID_CAP")


@pytest.mark.parametrize("role", ["supervisor", "analyst"])
def test_setting_and_lifting_caps_keep_the_openapi_contract(server: Server, role: str) -> None:
    """As tests/gateway/test_contract.py does for the other routes, which leaves these two out
    on the shared demo: every answer documented, in its shape; the caps set are lifted after."""
    document = httpx.get(f"{server.url}/openapi.json", timeout=30).raise_for_status().json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(
        base_url=server.url, headers={"Authorization": f"Bearer {server.keys[role]}"}
    )
    findings = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path != "/v1/price-caps":
            continue
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @BOUNDED
        @given(case=strategy)
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            answers_as_documented()
        except FailureGroup as found:
            findings.append(f"{operation.label}: {found}")
    assert not findings, "\n\n".join(findings)
