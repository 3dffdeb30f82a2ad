"""Dry runs over HTTP: the decision, price and ε a query or job would meet, worked out from
public facts alone; nothing runs, nothing is spent or charged, and no answer depends on data."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count

import pytest

from tests.gateway.test_twins import (
    Developer,
    ledger_mark,
    ledger_since,
    new_developer,
    people_card,
    register,
)
from tests.support import Server

serial = count()
PRICING = {"per_query_minor": 100, "per_1k_rows_scanned_minor": 10, "currency": "CNY",
           "free_purposes": []}  # fmt: skip
# 600 rows: 100 per query, and 10 per 1,000 rows scanned rounded up.
PRICE = 106
BY_DISTRICT = "SELECT district, COUNT(*) AS n FROM {asset} GROUP BY district"


@pytest.fixture(scope="module")
def priced(demo: Server) -> Iterator[tuple[Server, str, Developer]]:
    """A personal asset answered under DP, paid, with room for 1.5 ε per organisation."""
    asset = f"dryrun.people_{next(serial)}"
    card = people_card(asset, pricing=PRICING, privacy={"epsilon_per_period": 1.5})
    register(demo, card)
    yield demo, asset, new_developer(demo, [asset])


def _ask(server: Server, developer: Developer, sql: str, **extra: object):
    with developer.client(server) as client:
        return client.post("/v1/queries", json={"sql": sql, **extra})


def _spent(server: Server, developer: Developer, asset: str) -> float:
    with developer.client(server) as client:
        report = client.get("/v1/budgets").json()
    return sum(row["epsilon_spent"] for row in report["assets"] if row["asset"] == asset)


def _entries(server: Server, developer: Developer, mark: int) -> list[dict]:
    return [e for e in ledger_since(server, mark) if e.get("principal") == developer.id]


def test_a_dry_run_quotes_what_the_real_run_then_charges_and_spends(priced) -> None:
    server, asset, developer = priced
    sql = BY_DISTRICT.format(asset=asset)
    mark = ledger_mark(server)
    dry = _ask(server, developer, sql, dry_run=True)
    assert dry.status_code == 200, dry.json()
    quote = dry.json()
    assert quote["dry_run"] is True and "rows" not in quote
    assert quote["decision"]["allow"] is True and quote["decision"]["reasons"] == []
    assert quote["decision"]["grant_id"] == developer.grant_id
    assert quote["decision"]["obligations"]["noise"] == "dp"
    assert quote["price"]["amount_minor"] == PRICE and quote["price"]["basis"] == "query"
    assert quote["price"]["plus_cpu_time"] is False
    assert quote["privacy"]["epsilon"] == pytest.approx(1.0)
    assert quote["privacy"]["budget_left"][asset]["epsilon"] == pytest.approx(1.5)
    # Nothing spent, nothing charged: the dry run's entry quotes, with no cost or postings.
    assert _spent(server, developer, asset) == 0
    entries = _entries(server, developer, mark)
    assert [e["outcome"] for e in entries if e["type"] == "query"] == ["dry_run"]
    assert not any("cost" in e or "postings" in e for e in entries)
    assert entries[-1]["quoted"]["price"]["amount_minor"] == PRICE

    real = _ask(server, developer, sql)
    assert real.status_code == 200, real.json()
    assert real.json()["cost"]["amount_minor"] == quote["price"]["amount_minor"]
    assert real.json()["privacy"]["epsilon"] == pytest.approx(quote["privacy"]["epsilon"])
    assert _spent(server, developer, asset) == pytest.approx(1.0)

    # Another question would need 1.0 of the 0.5 left: the dry run says so, as a 200.
    other = f"SELECT COUNT(*) AS n FROM {asset}"
    short = _ask(server, developer, other, dry_run=True)
    assert short.status_code == 200
    assert short.json()["decision"] == dict(
        quote["decision"], allow=False, reasons=["privacy_budget_exhausted"]
    )
    assert short.json()["privacy"]["budget_left"][asset]["epsilon"] == pytest.approx(0.5)
    refused = _ask(server, developer, other)
    assert refused.status_code == 429
    assert refused.json()["error"]["violations"][0]["rule"] == "privacy_budget_exhausted"


def test_a_denied_dry_run_names_the_reasons_a_real_run_would(priced) -> None:
    server, asset, _ = priced
    sql = BY_DISTRICT.format(asset=asset)
    dry = server.query(sql, "fintech", dry_run=True)
    real = server.query(sql, "fintech")
    assert dry.status_code == 200 and real.status_code == 403
    assert dry.json()["decision"]["allow"] is False
    rules = [violation["rule"] for violation in real.json()["error"]["violations"]]
    assert dry.json()["decision"]["reasons"] == rules
    assert dry.json()["price"] is None and dry.json()["privacy"] is None
    # The guard rejects a dry run as it rejects the query itself.
    rejected = server.query(f"SELECT name FROM {asset}", "fintech", dry_run=True)
    assert rejected.status_code == 422
    assert rejected.json()["error"]["code"] == "QUERY_REJECTED"


def test_a_dry_run_depends_on_no_data(priced) -> None:
    """Filters that select a present person, an absent one, a present and an absent public
    value: every dry run answers the same, since none of it is computed from rows."""
    server, asset, developer = priced
    answers = []
    for where in ("postcode = '350001'", "postcode = '999999'", "district = 'north'",
                  "district = 'absent'"):  # fmt: skip
        response = _ask(
            server, developer, f"SELECT COUNT(*) AS n FROM {asset} WHERE {where}", dry_run=True
        )
        assert response.status_code == 200, response.json()
        answers.append({key: value for key, value in response.json().items() if key != "receipt"})
    assert all(answer == answers[0] for answer in answers)


JOB = """
answer = sql("SELECT district, COUNT(*) AS n FROM {asset} GROUP BY district")
publish("by_district", [["district", "label"], ["n", "count"]], answer["rows"])
"""


def test_a_job_dry_run_is_decided_and_priced_but_never_queued(priced) -> None:
    server, asset, developer = priced
    with developer.client(server) as client:
        dry = client.post(
            "/v1/jobs",
            json={"code": JOB.format(asset=asset), "grant_id": developer.grant_id,
                  "dry_run": True},
        )  # fmt: skip
        assert dry.status_code == 200, dry.json()
        quote = dry.json()
        assert quote["decision"]["allow"] is True
        assert quote["decision"]["obligations"]["review"] == "auto"
        # Each sql() pays as a query over the assets it reads, and spends a query's ε.
        assert quote["price"] == dict(quote["price"], amount_minor=PRICE, basis="per_query")
        assert quote["privacy"]["epsilon"] == pytest.approx(1.0)
        assert client.get("/v1/jobs").json()["items"] == []
        broken = client.post("/v1/jobs", json={"code": "x = ().__class__", "dry_run": True})
        assert broken.status_code == 422 and broken.json()["error"]["code"] == "JOB_REJECTED"


def test_a_held_job_dry_run_quotes_its_fixed_footprint(demo: Server) -> None:
    """L4 jobs wait for a reviewer, so they pay one fixed price and reserve four queries' ε
    as they start, whatever they ask."""
    asset = f"dryrun.sensitive_{next(serial)}"
    register(demo, people_card(asset, classification="L4", pricing=PRICING))
    developer = new_developer(demo, [asset])
    with developer.client(demo) as client:
        dry = client.post("/v1/jobs", json={"code": JOB.format(asset=asset), "dry_run": True})
    assert dry.status_code == 200, dry.json()
    quote = dry.json()
    assert quote["decision"]["obligations"]["review"] == "manual"
    assert quote["price"]["basis"] == "fixed" and quote["price"]["amount_minor"] == 100
    assert quote["privacy"]["epsilon"] == pytest.approx(4.0)
