"""The annual supervision report and the revenue distribution over HTTP, on a demo of their own:
each figure recounted here from the ledger's entries (read as a supervisor), the distribution's
totals equal to the settlement's, the CSV equal to the JSON and inert in a spreadsheet, and
each reader shown only what is theirs."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from ledger import allocate
from tests.gateway.test_jobs import BY_DISTRICT, run
from tests.gateway.test_twins import people_card, register
from tests.support import Server, start_server, stop_server

YEAR = datetime.now(UTC).year
PERIOD = datetime.now(UTC).strftime("%Y-%m")
WARDS = "city.wards"
# A title and a revenue party a provider chose, each a formula to a spreadsheet.
TITLE = '=HYPERLINK("http://evil.example/","open me")'
PARTY = "@evil"
WARDS_CARD = people_card(
    WARDS,
    title=TITLE,
    classification="L2",
    pricing={"per_query_minor": 50, "currency": "CNY", "free_purposes": []},
    privacy={"epsilon_per_period": 2},
    revenue_shares_bp={"city-hospital": 8000, PARTY: 2000},
)
PAID_CLAIMS = "SELECT plan, COUNT(*) AS claims FROM insurance.claims GROUP BY plan"
JOINED = ("SELECT c.plan, COUNT(DISTINCT v.patient_id) AS patients FROM hospital.visits v "
          "JOIN insurance.claims c ON v.patient_id = c.patient_id GROUP BY c.plan")  # fmt: skip
VISITS = "SELECT sex, COUNT(*) AS n FROM hospital.visits GROUP BY sex"
QUERY_OUTCOMES = ("released", "denied", "rejected", "failed", "cancelled", "unavailable",
                  "dry_run", "other")  # fmt: skip
JOB_OUTCOMES = ("succeeded", "held", "failed", "rejected", "cancelled", "timeout", "denied",
                "other")  # fmt: skip
GRANT_EVENTS = ("requested", "approved", "rejected", "revoked", "suspended", "resumed", "expired")


def _call(server: Server, who: str, method: str, path: str, **body: object) -> httpx.Response:
    with server.client(who) as client:
        return client.request(method, path, **body)


def _grant(server: Server, who: str, assets: list[str], purpose: str, *parties: str) -> str:
    asked = _call(server, who, "POST", "/v1/grants", json={
        "assets": assets, "purpose": purpose, "scenario": "reports", "methods": ["sql"],
        "valid_until": "2030-01-01T00:00:00Z"})  # fmt: skip
    assert asked.status_code == 201, asked.json()
    server.approve(asked.json()["id"], *parties)
    return asked.json()["id"]


def _stop(server: Server, action: str, kind: str, target: str) -> None:
    done = _call(server, "supervisor", "POST", f"/v1/emergency/{action}",
                 json={kind: target, "reason": f"report test {action}"})  # fmt: skip
    assert done.status_code == 200, done.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A fresh demo with a year's worth of activity of every kind the reports count."""
    started = start_server(tmp_path_factory.mktemp("reports") / "home")
    try:
        _activity(started)
        yield started
    finally:
        stop_server(started)


def _activity(server: Server) -> None:
    # A paid asset of city-hospital's, answered under DP with room for two questions a month.
    register(server, WARDS_CARD)
    _grant(server, "fintech", [WARDS], "commercial_pricing", "city-hospital", "supervisor")
    for sql in (
        "SELECT COUNT(*) AS n FROM city.wards",
        "SELECT district, COUNT(*) AS n FROM city.wards GROUP BY district",
    ):
        assert server.query(sql, who="fintech").status_code == 200
    spent = server.query("SELECT COUNT(*) AS m FROM city.wards", who="fintech")
    assert spent.status_code == 429 and spent.json()["error"]["code"] == "BUDGET_EXHAUSTED"
    # Paid use of the insurer's asset, and of both holders' at once.
    assert server.query(PAID_CLAIMS, who="fintech").status_code == 200
    with server.client("city-hospital") as client:
        card = client.get("/v1/assets/hospital.visits").json()
        catalogued = {"row_count", "registered_at", "version", "revision", "lifecycle"}
        card = {k: v for k, v in card.items() if k not in catalogued}
        card["purposes"] = [*card["purposes"], "actuarial_research"]
        assert client.put("/v1/assets/hospital.visits", json=card).status_code == 200
    both = _grant(server, "fintech", ["hospital.visits", "insurance.claims"],
                  "actuarial_research", "city-hospital", "insurer", "supervisor")  # fmt: skip
    joined = server.query(JOINED, who="fintech", grant_id=both)
    assert joined.status_code == 200, joined.json()
    assert len([a for a, n in joined.json()["cost"]["assets"].items() if n]) == 2
    assert server.query(VISITS, who="fintech", grant_id=both).json()["cost"]["amount_minor"] > 0
    # Free use, a denial naming an asset, and a rejection naming none.
    assert server.query(VISITS).status_code == 200
    assert server.query("SELECT COUNT(*) AS n FROM city.wards").status_code == 403
    assert server.query("SELECT patient_name FROM hospital.visits").status_code == 422
    assert run(server, BY_DISTRICT)["status"] == "succeeded"
    # A grant approved then revoked, one left pending.
    revoked = _grant(server, "analyst", [WARDS], "public_welfare", "city-hospital", "supervisor")
    assert _call(server, "city-hospital", "POST", f"/v1/grants/{revoked}/revoke",
                 json={"reason": "no longer needed"}).status_code == 200  # fmt: skip
    _grant(server, "analyst", [WARDS], "public_welfare")
    # Stops and resumptions of a grant, an asset and a developer.
    for kind, target in (("grant", both), ("asset", WARDS), ("principal", "fintech")):
        _stop(server, "suspend", kind, target)
        _stop(server, "resume", kind, target)


def _entries(server: Server, size: int) -> list[tuple[int, dict]]:
    """Every entry below `size`, with its index, read as the supervisor."""
    found: list[tuple[int, dict]] = []
    with server.client("supervisor") as client:
        while True:
            params = {"limit": 1000, **({"after": found[-1][0]} if found else {})}
            page = client.get("/v1/ledger/entries", params=params).json()["items"]
            if not page:
                return [(i, d) for i, d in found if i < size]
            found += [(item["index"], json.loads(item["data"])) for item in page]


def _shares(server: Server) -> dict[str, dict[str, int]]:
    with server.client("supervisor") as client:
        return {card["id"]: card["revenue_shares_bp"]
                for card in client.get("/v1/assets").json()["items"]}  # fmt: skip


def _credits(data: dict, shares: dict[str, dict[str, int]]) -> Counter[tuple[str, str]]:
    """(asset, party) → minor units of one charged entry: its postings, and where it charged
    several assets, each asset's part split by its card's shares."""
    paid = {p.removeprefix("party:"): n for p, n in data["postings"] if p.startswith("party:")}
    parts = {asset: n for asset, n in data["cost"]["assets"].items() if n}
    if len(parts) == 1:
        (asset,) = parts
        return Counter({(asset, party): n for party, n in paid.items()})
    split: Counter[tuple[str, str]] = Counter()
    for asset, amount in parts.items():
        for party, n in allocate(amount, shares[asset]).items():
            split[asset, party] += n
    assert {p: sum(n for (_, q), n in split.items() if q == p) for p in paid} == paid
    return split


def _supervision(server: Server, who: str, holder: str, **params: object) -> httpx.Response:
    return _call(server, who, "GET", "/v1/reports/supervision",
                 params={"holder": holder, **params})  # fmt: skip


def _distribution(server: Server, who: str, **params: object) -> httpx.Response:
    return _call(server, who, "GET", "/v1/reports/distribution", params=params)


def _recount(server: Server, entries: list[tuple[int, dict]], holder: str) -> dict[str, dict]:
    """The holder's figures per asset, counted here from the entries alone (and, for grants in
    force at the year's end, from the grants as the control store holds them)."""
    with server.client("admin") as client:
        orgs = {p["id"]: p["org"] for p in client.get("/v1/principals").json()["items"]}
    with server.client("supervisor") as client:
        standing = client.get("/v1/grants").json()["items"]
    shares = _shares(server)
    year = [(i, d) for i, d in entries if d["at"].startswith(str(YEAR))]
    mine = sorted({d["asset"] for _, d in entries
                   if d["type"] == "asset_registered" and d["provider"] == holder})  # fmt: skip
    grant_assets = {d["grant"]["id"]: d["grant"]["assets"]
                    for _, d in entries if d["type"] == "grant_requested"}  # fmt: skip
    developers = {g: d["grant"]["developer"] for _, d in entries
                  if d["type"] == "grant_requested" for g in [d["grant"]["id"]]}  # fmt: skip
    rows = {}
    for asset in mine:
        grants = {event: set() for event in GRANT_EVENTS}
        queries, jobs, incidents, revenue = Counter(), Counter(), Counter(), Counter()
        users, rows_scanned = set(), 0
        for _, d in year:
            kind = d["type"]
            if kind == "grant_requested" and asset in d["grant"]["assets"]:
                grants["requested"].add(d["grant"]["id"])
            changed = kind.startswith("grant_") and kind != "grant_requested"
            if changed and asset in grant_assets[d["grant"]]:
                if kind == "grant_approved" and d["status"] == "active":
                    grants["approved"].add(d["grant"])
                if kind in ("grant_rejected", "grant_revoked", "grant_expired"):
                    grants[kind.removeprefix("grant_")].add(d["grant"])
            if kind.startswith("emergency_"):
                concerned = (
                    (d["kind"] == "asset" and d["target"] == asset)
                    or (d["kind"] == "grant" and asset in grant_assets[d["target"]])
                    or (d["kind"] == "principal" and any(
                        developers[g] == d["target"] and asset in a
                        for g, a in grant_assets.items()))
                )  # fmt: skip
                event = "suspended" if kind == "emergency_suspended" else "resumed"
                if concerned:
                    incidents["suspensions" if event == "suspended" else "resumptions"] += 1
                if concerned and d["kind"] == "grant":
                    grants[event].add(d["target"])
            if kind == "query" and asset in (d.get("assets") or []):
                outcome = "dry_run" if d.get("dry_run") else d["outcome"]
                queries[outcome] += 1
                rows_scanned += d.get("usage", {}).get("rows_scanned", {}).get(asset, 0)
                if outcome == "released":
                    users.add(orgs[d["principal"]])
                reasons = d.get("decision", {}).get("reasons", [])
                if "privacy_budget_exhausted" in reasons and d.get("budget") == asset:
                    incidents["budget_exhausted"] += 1
            if kind == "job" and asset in d["assets"]:
                jobs[d["outcome"]] += 1
                if d["outcome"] in ("succeeded", "held"):
                    users.add(orgs[d["principal"]])
            if d.get("postings"):
                for (credited, party), n in _credits(d, shares).items():
                    if credited == asset and party == holder:
                        revenue[d["cost"]["currency"]] += n
        in_force = {
            g["id"] for g in standing
            if asset in g["assets"] and g["status"] == "active"
            and g["valid_until"] > f"{YEAR + 1}-01-01T00:00:00Z"
        }  # fmt: skip
        rows[asset] = {
            "grants": {**{e: len(ids) for e, ids in grants.items()}, "in_force_at_end": len(in_force)},
            "developers": len(users),
            "organisations": sorted(users),
            "queries": {o: queries[o] for o in QUERY_OUTCOMES},
            "jobs": {o: jobs[o] for o in JOB_OUTCOMES},
            "rows_scanned": rows_scanned,
            "revenue_minor": dict(revenue),
            "incidents": {"suspensions": incidents["suspensions"],
                          "resumptions": incidents["resumptions"], "destructions": 0,
                          "budget_exhausted": incidents["budget_exhausted"]},
        }  # fmt: skip
    return rows


def test_the_supervision_report_equals_the_ledger_recounted(server: Server) -> None:
    response = _supervision(server, "supervisor", "city-hospital", year=YEAR)
    assert response.status_code == 200, response.json()
    report = response.json()
    assert report["holder"] == "city-hospital" and report["year"] == YEAR
    entries = _entries(server, report["tree_size"])
    expected = _recount(server, entries, "city-hospital")
    shown = {row["asset"]: {k: v for k, v in row.items() if k not in ("asset", "title")}
             for row in report["assets"]}  # fmt: skip
    assert shown == expected
    assert set(shown) == {"hospital.visits", WARDS}
    # What the activity did, as a reader would check it by hand.
    wards, visits = shown[WARDS], shown["hospital.visits"]
    assert wards["queries"]["released"] == 2 and wards["queries"]["denied"] == 2
    assert wards["incidents"] == {"suspensions": 2, "resumptions": 2, "destructions": 0,
                                  "budget_exhausted": 1}  # fmt: skip
    assert wards["grants"]["requested"] == 3 and wards["grants"]["revoked"] == 1
    assert wards["grants"]["in_force_at_end"] == 1
    assert wards["organisations"] == ["Haixi Fintech Ltd."]
    assert visits["jobs"]["succeeded"] == 1 and visits["queries"]["rejected"] == 0
    assert visits["grants"]["suspended"] == 1 and visits["grants"]["resumed"] == 1
    assert visits["developers"] == 2 and visits["rows_scanned"] > 0
    assert all(row["revenue_minor"]["CNY"] > 0 for row in shown.values())
    titles = {row["asset"]: row["title"] for row in report["assets"]}
    assert titles[WARDS] == TITLE


def test_the_supervision_totals_count_each_entry_once(server: Server) -> None:
    report = _supervision(server, "city-hospital", "city-hospital").json()
    entries = _entries(server, report["tree_size"])
    totals, rows = report["totals"], report["assets"]
    # Each posting to the holder in the year, whichever asset earned it.
    credited = sum(n for _, d in entries if d["at"].startswith(str(YEAR))
                   for party, n in d.get("postings") or [] if party == "party:city-hospital")  # fmt: skip
    assert totals["revenue_minor"] == {"CNY": credited}
    assert credited == sum(row["revenue_minor"].get("CNY", 0) for row in rows)
    assert totals["rows_scanned"] == sum(row["rows_scanned"] for row in rows)
    assert totals["queries"]["released"] <= sum(row["queries"]["released"] for row in rows)
    # Three stops, each concerning both assets or one, counted once each.
    assert totals["incidents"]["suspensions"] == 3 and totals["incidents"]["resumptions"] == 3
    assert [(i["event"], i["kind"]) for i in report["incidents"]] == [
        ("suspended", "grant"), ("resumed", "grant"), ("suspended", "asset"),
        ("resumed", "asset"), ("suspended", "principal"), ("resumed", "principal"),
    ]  # fmt: skip
    # The holder learns a developer was stopped, not why; its own asset's stop, with the reason.
    by_kind = {i["kind"]: i for i in report["incidents"] if i["event"] == "suspended"}
    assert by_kind["principal"]["reason"] is None
    assert by_kind["asset"]["reason"] == "report test suspend"
    assert totals["organisations"] == sorted({"Haixi Fintech Ltd.",
                                              "Provincial Public Health Institute"})  # fmt: skip
    assert report["apportioned_entries"] == 0


def test_the_distribution_splits_the_settlement_by_asset(server: Server) -> None:
    report = _distribution(server, "operator", period=PERIOD).json()
    settlement = _call(server, "operator", "GET", "/v1/settlements",
                       params={"period": PERIOD}).json()  # fmt: skip
    assert report["totals"]["CNY"]["parties"] == settlement["parties"]
    assert report["totals"]["CNY"]["total_charged_minor"] == settlement["total_charged_minor"]
    entries = _entries(server, report["tree_size"])
    shares = _shares(server)
    expected: Counter[tuple[str, str]] = Counter()
    behind: Counter[tuple[str, str]] = Counter()
    for _, d in entries:
        if d.get("postings") and d["at"].startswith(PERIOD):
            for key, n in _credits(d, shares).items():
                expected[key] += n
                behind[key] += 1
    lines = {(line["asset"], line["party"]): line for line in report["lines"]}
    assert {key: line["amount_minor"] for key, line in lines.items()} == dict(expected)
    assert {key: line["entries"] for key, line in lines.items()} == dict(behind)
    assert {line["currency"] for line in report["lines"]} == {"CNY"}
    # Each asset's lines add up to what its parts of the charges earned.
    earned = Counter()
    for _, d in entries:
        if d.get("postings") and d["at"].startswith(PERIOD):
            earned.update(d["cost"]["assets"])
    for asset in {asset for asset, _ in lines}:
        assert sum(n for (a, _), n in expected.items() if a == asset) == earned[asset]
    assert (WARDS, PARTY) in lines and ("hospital.visits", "insurer") not in lines


def test_a_provider_reads_only_its_own_lines(server: Server) -> None:
    everyone = _distribution(server, "supervisor").json()
    mine = _distribution(server, "insurer").json()
    settlement = _call(server, "insurer", "GET", "/v1/settlements").json()
    assert {line["party"] for line in mine["lines"]} == {"insurer"}
    assert mine["lines"] == [line for line in everyone["lines"] if line["party"] == "insurer"]
    assert mine["totals"]["CNY"]["parties"] == settlement["parties"] == {
        "insurer": everyone["totals"]["CNY"]["parties"]["insurer"]}  # fmt: skip
    assert mine["totals"]["CNY"]["total_charged_minor"] == settlement["total_charged_minor"]
    assert 0 < settlement["total_charged_minor"] < everyone["totals"]["CNY"]["total_charged_minor"]


def _rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert "\r\n" in response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def test_the_csv_equals_the_json_and_runs_no_formula(server: Server) -> None:
    report = _supervision(server, "supervisor", "city-hospital").json()
    rows = _rows(_supervision(server, "supervisor", "city-hospital", format="csv"))
    assert [row["asset"] for row in rows] == [row["asset"] for row in report["assets"]]
    for row, shown in zip(rows, report["assets"], strict=True):
        flat = {"holder": report["holder"], "year": report["year"],
                "tree_size": report["tree_size"], "asset": shown["asset"],
                "title": shown["title"], "developers": shown["developers"],
                "organisations": "; ".join(shown["organisations"]),
                "rows_scanned": shown["rows_scanned"]}  # fmt: skip
        for group in ("grants", "queries", "jobs", "incidents"):
            flat |= {f"{group}_{name}": n for name, n in shown[group].items()}
        flat |= {f"revenue_minor_{c}": n for c, n in shown["revenue_minor"].items()}
        assert row == {key: _cell(value) for key, value in flat.items()}
    assert {row["asset"]: row["title"] for row in rows}[WARDS] == "'" + TITLE

    lines = _distribution(server, "supervisor").json()
    rows = _rows(_distribution(server, "supervisor", format="csv"))
    assert rows == [
        {"period": lines["period"], "tree_size": str(lines["tree_size"]), "asset": line["asset"],
         "title": _cell(line["title"]), "party": _cell(line["party"]),
         "currency": line["currency"], "amount_minor": str(line["amount_minor"]),
         "entries": str(line["entries"])}
        for line in lines["lines"]
    ]  # fmt: skip
    assert {row["party"] for row in rows if row["asset"] == WARDS} == {"city-hospital", "'@evil"}


def test_readers_see_only_their_own_reports(server: Server) -> None:
    own = _supervision(server, "insurer", "insurer")
    assert own.status_code == 200 and {r["asset"] for r in own.json()["assets"]} == {
        "insurance.claims"}  # fmt: skip
    # Another holder, and one that does not exist: the same refusal, word for word.
    other = _supervision(server, "insurer", "city-hospital")
    nobody = _supervision(server, "insurer", "no-such-holder")
    assert other.status_code == nobody.status_code == 403
    assert other.json() == nobody.json()
    assert other.json()["error"]["code"] == "POLICY_DENIED"
    assert other.json()["error"]["violations"] == [{"rule": "not_holder"}]
    for who in ("fintech", "analyst", "admin"):
        for refused in (_supervision(server, who, "city-hospital"), _distribution(server, who)):
            assert refused.status_code == 403, who
            assert refused.json()["error"]["code"] == "POLICY_DENIED"
    # Overseers read any holder; one the ledger never named is not found.
    assert _supervision(server, "operator", "insurer").status_code == 200
    missing = _supervision(server, "supervisor", "no-such-holder")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"holder": "x' OR '1'='1"}, "holder"),
        ({"holder": "<script>alert(1)</script>"}, "holder"),
        ({"holder": "city-hospital; DROP TABLE grants"}, "holder"),
        ({"holder": ""}, "holder"),
        ({"holder": "city-hospital", "year": 1999}, "year"),
        ({"holder": "city-hospital", "year": 2201}, "year"),
        ({"holder": "city-hospital", "year": "twenty"}, "year"),
        ({"holder": "city-hospital", "format": "xlsx"}, "format"),
    ],
)
def test_malformed_supervision_requests_leak_nothing(
    server: Server, params: dict, parameter: str
) -> None:
    for who in ("supervisor", "city-hospital"):
        response = _call(server, who, "GET", "/v1/reports/supervision", params=params)
        assert response.status_code == 422, (who, params)
        error = response.json()["error"]
        assert error["code"] == "BAD_REQUEST"
        assert error["violations"] == [{"rule": "invalid_parameter", "column": parameter}]
        assert str(params[parameter]) not in response.text or params[parameter] == ""


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "november", "2026-11-01", "' OR 1=1"])
def test_malformed_periods_are_refused(server: Server, period: str) -> None:
    response = _distribution(server, "supervisor", period=period)
    assert response.status_code == 422
    assert response.json()["error"]["violations"] == [
        {"rule": "invalid_parameter", "column": "period"}]  # fmt: skip
    assert period not in response.text


def test_an_empty_year_and_month_report_nothing(server: Server) -> None:
    report = _supervision(server, "supervisor", "city-hospital", year=2001).json()
    assert report["assets"] == [] and report["incidents"] == []
    assert report["totals"]["revenue_minor"] == {}
    empty = _distribution(server, "supervisor", period="2001-01").json()
    assert empty["totals"] == {} and empty["lines"] == []
    assert _rows(_distribution(server, "supervisor", period="2001-01", format="csv")) == []


def test_a_report_names_the_signed_tree_size_it_was_read_at(server: Server) -> None:
    report = _supervision(server, "supervisor", "insurer").json()
    checkpoint = httpx.get(f"{server.url}/v1/ledger/checkpoint", timeout=30).json()
    assert 0 < report["tree_size"] <= checkpoint["tree_size"]
