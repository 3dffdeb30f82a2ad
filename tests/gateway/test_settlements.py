"""Settlements and usage over HTTP: recomputed from the ledger, exact, and scoped to the caller."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

PAID = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"
FREE = "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex"


def _get(demo, who: str, path: str, **params):
    with demo.client(who) as client:
        return client.get(path, params=params)


def _charged_entries(demo, period: str) -> list[dict]:
    return [e for e in demo.ledger() if "cost" in e and e["at"].startswith(period)]


def test_settlement_equals_the_sum_of_charged_entries(demo) -> None:
    paid = [demo.query(PAID, who="fintech").json() for _ in range(3)]
    assert demo.query(FREE).status_code == 200
    period = datetime.now(UTC).strftime("%Y-%m")
    body = _get(demo, "supervisor", "/v1/settlements").json()
    assert body["period"] == period and body["currency"] == "CNY"
    # Settled as of the newest signed checkpoint, which it names.
    assert (
        body["tree_size"] == _get(demo, "supervisor", "/v1/ledger/checkpoint").json()["tree_size"]
    )
    charged = _charged_entries(demo, period)
    assert body["total_charged_minor"] == sum(e["cost"]["amount_minor"] for e in charged)
    assert body["total_charged_minor"] >= sum(p["cost"]["amount_minor"] for p in paid) > 0
    assert sum(body["parties"].values()) == body["total_charged_minor"]
    assert sum(body["developers"].values()) == body["total_charged_minor"]
    assert body["developers"]["fintech"] >= 3 * paid[0]["cost"]["amount_minor"]
    assert set(body["parties"]) >= {"insurer", "operator", "platform"}
    assert "analyst" not in body["developers"]  # public-welfare use is metered at zero


def test_csv_export_lists_every_posting(demo) -> None:
    demo.query(PAID, who="fintech")
    body = _get(demo, "operator", "/v1/settlements").json()
    response = _get(demo, "operator", "/v1/settlements", format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows and set(rows[0]) == {"ledger_index", "at", "reference", "account",
                                     "amount_minor", "currency"}  # fmt: skip
    assert sum(int(r["amount_minor"]) for r in rows) == 0
    credits = sum(int(r["amount_minor"]) for r in rows if r["account"].startswith("party:"))
    assert credits == body["total_charged_minor"]


def test_a_provider_sees_only_its_own_share(demo) -> None:
    demo.query(PAID, who="fintech")
    everyone = _get(demo, "supervisor", "/v1/settlements").json()
    insurer = _get(demo, "insurer", "/v1/settlements").json()
    assert insurer["parties"] == {"insurer": everyone["parties"]["insurer"]}
    assert insurer["developers"] == {}
    assert 0 < insurer["total_charged_minor"] <= everyone["total_charged_minor"]
    rows = list(csv.DictReader(io.StringIO(
        _get(demo, "insurer", "/v1/settlements", format="csv").text)))  # fmt: skip
    assert rows and {r["account"] for r in rows} == {"party:insurer"}


def test_developers_cannot_read_settlements(demo) -> None:
    response = _get(demo, "fintech", "/v1/settlements")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "POLICY_DENIED"


def test_empty_and_malformed_periods(demo) -> None:
    empty = _get(demo, "supervisor", "/v1/settlements", period="2001-01").json()
    assert empty["total_charged_minor"] == 0 and empty["parties"] == {}
    for period in ("2026-13", "2026-1", "november", "2026-11-01"):
        response = _get(demo, "supervisor", "/v1/settlements", period=period)
        assert response.status_code == 422, period
    assert _get(demo, "supervisor", "/v1/settlements", format="xml").status_code == 422


def test_usage_shows_a_developer_only_its_own_use(demo) -> None:
    mine = demo.query(PAID, who="fintech").json()
    demo.query(FREE)
    fintech = _get(demo, "fintech", "/v1/usage", limit=1000).json()
    assert {item["principal"] for item in fintech["items"]} == {"fintech"}
    last = fintech["items"][-1]
    assert last["reference"] == mine["query_id"]
    assert last["ledger_index"] == mine["receipt"]["ledger_index"]
    assert last["amount_minor"] == mine["cost"]["amount_minor"] and last["rows_scanned"] > 0
    assert fintech["charged_minor"]["CNY"] >= mine["cost"]["amount_minor"]
    everyone = _get(demo, "supervisor", "/v1/usage", limit=1000).json()
    assert {"fintech", "analyst"} <= {item["principal"] for item in everyone["items"]}
    hospital = _get(demo, "city-hospital", "/v1/usage", limit=1000).json()
    catalogue = _get(demo, "city-hospital", "/v1/assets").json()["items"]
    its_own = {card["id"] for card in catalogue if card["provider"] == "city-hospital"}
    # Its assets' use, and requests refused before naming any asset under a grant it approved.
    assert hospital["items"] and all(
        its_own & set(i["assets"]) or not i["assets"] or i["principal"] == "city-hospital"
        for i in hospital["items"]
    )
    assert any("hospital.visits" in i["assets"] for i in hospital["items"])
    assert all(
        i["assets"] != ["insurance.claims"] or i["principal"] == "city-hospital"
        for i in hospital["items"]
    )
