"""The report replays over entries written as the services write them: the split of a charge
among its assets, a month's distribution against its settlement, a holder's year (grants,
stops, destructions, exhausted budgets, summaries) and the CSV a spreadsheet opens safely."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest

from ledger import AssetUse, LedgerError, post, price, settle
from services.asset_revenue import entry_revenue
from services.distribution import distribute
from services.records import cost_of
from services.report_csv import inert, table
from services.supervision import supervise

PRICING = {"per_query_minor": 101, "per_1k_rows_scanned_minor": 3, "currency": "CNY"}
SHARES = {
    "hosp.visits": {"hosp": 7000, "operator": 2000, "platform": 1000},
    "ins.claims": {"ins": 7500, "operator": 1500, "platform": 1000},
    "hosp.beds": {"hosp": 10000},
}


def shares_now(asset: str, at: str) -> dict[str, int]:
    return SHARES[asset]


def query(index: int, at: str, assets: dict[str, int], developer: str = "dev", **extra) -> tuple:
    """A released, charged query on `assets` (rows scanned each), priced and posted as the
    services price and post one."""
    uses = [AssetUse(a, rows, PRICING, SHARES[a]) for a, rows in assets.items()]
    charge = price(uses, plan="standard", purpose="research", cpu_ms=0)
    return index, {
        "type": "query", "query_id": f"q{index}", "principal": developer, "at": at,
        "outcome": "released", "assets": sorted(assets),
        "usage": {"rows_scanned": assets, "cpu_ms": 0, "bytes_returned": 10},
        "cost": cost_of(charge), "postings": [p.as_entry() for p in post(charge, developer)],
        **extra,
    }  # fmt: skip


def grant(index: int, at: str, grant_id: str, assets: list[str], until: str) -> tuple:
    return index, {
        "type": "grant_requested", "at": at, "by": "dev",
        "grant": {"id": grant_id, "developer": "dev", "assets": assets, "status": "pending",
                  "valid_from": at, "valid_until": until},
    }  # fmt: skip


def change(index: int, at: str, kind: str, grant_id: str, **extra) -> tuple:
    return index, {"type": kind, "at": at, "grant": grant_id, "by": "x", **extra}


def stop(index: int, at: str, event: str, kind: str, target: str) -> tuple:
    return index, {"type": f"emergency_{event}", "at": at, "kind": kind, "target": target,
                   "reason": "why", "by": "supervisor"}  # fmt: skip


def test_a_charge_on_two_assets_splits_as_it_was_posted() -> None:
    index, data = query(1, "2026-03-01T00:00:00Z", {"hosp.visits": 4000, "ins.claims": 9000})
    revenue = entry_revenue(index, data, shares_now)
    assert not revenue.apportioned
    split = {(c.asset, c.party): c.amount_minor for c in revenue.credits}
    parts = data["cost"]["assets"]
    for asset, part in parts.items():
        assert sum(n for (a, _), n in split.items() if a == asset) == part
    paid = {p.removeprefix("party:"): n for p, n in data["postings"] if n > 0}
    assert {p: sum(n for (_, q), n in split.items() if q == p) for p in paid} == paid
    assert ("ins.claims", "hosp") not in split and ("hosp.visits", "ins") not in split


def test_shares_that_no_longer_reproduce_the_postings_are_apportioned() -> None:
    index, data = query(1, "2026-03-01T00:00:00Z", {"hosp.visits": 4000, "ins.claims": 9000})
    changed = {**SHARES, "hosp.visits": {"hosp": 5000, "newcomer": 5000}}
    revenue = entry_revenue(index, data, lambda asset, at: changed[asset])
    assert revenue.apportioned
    totals: Counter[str] = Counter()
    for credit in revenue.credits:
        totals[credit.party] += credit.amount_minor
    assert totals == Counter({p.removeprefix("party:"): n for p, n in data["postings"] if n > 0})
    unknown = entry_revenue(index, data, lambda asset, at: None)
    assert unknown.apportioned and unknown.credits == revenue.credits


def test_a_months_distribution_sums_to_its_settlement() -> None:
    entries = [
        query(1, "2026-02-28T23:59:59Z", {"hosp.visits": 10}),
        query(2, "2026-03-01T00:00:00Z", {"hosp.visits": 4000, "ins.claims": 9000}),
        query(3, "2026-03-02T00:00:00Z", {"ins.claims": 500}, developer="other"),
        query(4, "2026-03-03T00:00:00Z", {"hosp.beds": 1}),
        (5, {"type": "query", "at": "2026-03-04T00:00:00Z", "outcome": "denied"}),
    ]
    distribution = distribute(entries, "2026-03", shares_now)
    assert distribution.settlement.parties == settle(entries, "2026-03").parties
    by_party: Counter[str] = Counter()
    for (currency, _, party), share in distribution.shares.items():
        assert currency == "CNY"
        by_party[party] += share.amount_minor
    assert by_party == distribution.settlement.parties["CNY"]
    assert distribution.shares["CNY", "ins.claims", "ins"].entries == 2
    assert distribution.shares["CNY", "hosp.beds", "hosp"].entries == 1
    charged = {i: d["cost"]["amount_minor"] for i, d in entries[1:4]}
    assert distribution.charged_for["ins"]["CNY"] == charged[2] + charged[3]
    assert distribution.charged_for["hosp"]["CNY"] == charged[2] + charged[4]


def test_postings_that_do_not_balance_stop_the_distribution() -> None:
    index, data = query(2, "2026-03-01T00:00:00Z", {"hosp.visits": 4000})
    data["postings"][1][1] += 1
    with pytest.raises(LedgerError):
        distribute([(index, data)], "2026-03", shares_now)


HOLDER_YEAR = [
    (0, {"type": "principal_created", "principal": "hosp", "org": "City Hospital",
         "at": "2025-01-01T00:00:00Z"}),
    (1, {"type": "principal_created", "principal": "dev", "org": "Dev Org",
         "at": "2025-01-01T00:00:00Z"}),
    (2, {"type": "asset_registered", "asset": "hosp.visits", "provider": "hosp",
         "at": "2025-01-02T00:00:00.000001+00:00"}),
    (3, {"type": "asset_registered", "asset": "hosp.old", "provider": "hosp",
         "at": "2025-01-02T00:00:00Z"}),
    (4, {"type": "asset_registered", "asset": "hosp.beds", "provider": "hosp",
         "at": "2025-06-01T00:00:00Z"}),
    (5, {"type": "asset_destroyed", "asset": "hosp.old", "grants_ended": [], "reason": "old",
         "at": "2025-07-01T00:00:00Z"}),
    grant(6, "2025-02-01T00:00:00Z", "g_old", ["hosp.visits"], "2030-01-01T00:00:00Z"),
    change(7, "2025-02-02T00:00:00Z", "grant_approved", "g_old", status="active"),
    grant(8, "2026-02-01T00:00:00Z", "g_short", ["hosp.visits", "ins.claims"],
          "2026-06-01T00:00:00Z"),
    change(9, "2026-02-02T00:00:00Z", "grant_approved", "g_short", party="hosp",
           status="pending"),
    change(10, "2026-02-02T00:00:00Z", "grant_approved", "g_short", status="active"),
    grant(11, "2026-02-03T00:00:00Z", "g_beds", ["hosp.beds"], "2030-01-01T00:00:00Z"),
    change(12, "2026-02-04T00:00:00Z", "grant_approved", "g_beds", status="active"),
    stop(13, "2026-03-01T00:00:00Z", "suspended", "grant", "g_old"),
    stop(14, "2026-03-02T00:00:00Z", "suspended", "principal", "dev"),
    stop(15, "2026-03-03T00:00:00Z", "resumed", "principal", "dev"),
    stop(16, "2026-03-04T00:00:00Z", "suspended", "asset", "ins.claims"),
    query(17, "2026-04-01T00:00:00Z", {"hosp.visits": 4000, "ins.claims": 9000}),
    query(18, "2026-04-02T00:00:00Z", {"hosp.beds": 7}),
    (19, {"type": "query", "principal": "dev", "at": "2026-04-03T00:00:00Z",
          "outcome": "denied", "assets": ["hosp.visits", "ins.claims"], "budget": "hosp.visits",
          "decision": {"allow": False, "reasons": ["privacy_budget_exhausted"]}}),
    (20, {"type": "query", "principal": "dev", "at": "2026-04-03T00:00:00Z", "dry_run": True,
          "outcome": "denied", "assets": ["hosp.visits"], "budget": "hosp.visits",
          "decision": {"allow": False, "reasons": ["privacy_budget_exhausted"]}}),
    (21, {"type": "refusals_summarised", "principal": "dev", "at": "2026-04-05T00:00:00Z",
          "assets": ["hosp.visits"], "refusals": 7, "counts": [
              {"record": "query", "scope": "query:run", "outcome": "denied", "refusals": 5,
               "reasons": {"privacy_budget_exhausted": 4, "no_covering_grant": 1}},
              {"record": "access_denied", "scope": "job:submit", "outcome": "denied",
               "refusals": 2, "reasons": {"no_covering_grant": 2}}]}),
    (22, {"type": "job", "job_id": "j1", "principal": "dev", "assets": ["hosp.beds"],
          "outcome": "succeeded", "at": "2026-05-01T00:00:00Z"}),
    (23, {"type": "access_denied", "scope": "job:submit", "principal": "dev",
          "resource": {"assets": [{"id": "hosp.beds"}]}, "at": "2026-05-02T00:00:00Z"}),
    (24, {"type": "grant_expired", "grant": "g_short", "at": "2026-06-01T00:00:05Z"}),
    (25, {"type": "asset_destroyed", "asset": "hosp.beds", "grants_ended": ["g_beds"],
          "reason": "done", "at": "2026-11-01T00:00:00Z"}),
    query(26, "2027-01-01T00:00:00Z", {"hosp.visits": 10}),
    change(27, "2027-01-02T00:00:00Z", "grant_revoked", "g_old"),
]  # fmt: skip


def test_a_holders_year_is_replayed_from_its_entries() -> None:
    report = supervise(HOLDER_YEAR, "hosp", 2026, shares_now)
    assert report.known and sorted(report.assets) == ["hosp.beds", "hosp.visits"]
    visits, beds, totals = report.assets["hosp.visits"], report.assets["hosp.beds"], report.totals
    # Grants: what happened in 2026 only, and the state the year ended in.
    assert visits.grants["requested"] == {"g_short"} and visits.grants["approved"] == {"g_short"}
    assert visits.grants["suspended"] == {"g_old"} and visits.grants["expired"] == {"g_short"}
    assert visits.grants["in_force_at_end"] == set()  # g_old suspended, g_short past its term
    assert beds.grants["revoked"] == {"g_beds"} and beds.grants["in_force_at_end"] == set()
    # Queries, the two denials and the summary's, with the budgets that ran out.
    assert visits.queries == Counter({"released": 1, "denied": 6, "dry_run": 1})
    assert visits.incidents["budget_exhausted"] == 1 + 4
    assert totals.queries == Counter({"released": 2, "denied": 6, "dry_run": 1})
    assert visits.rows_scanned == 4000 and totals.rows_scanned == 4007
    assert beds.jobs == Counter({"succeeded": 1, "denied": 1}) and visits.jobs["denied"] == 2
    assert report.developers(visits) == ["Dev Org"] and report.developers(beds) == ["Dev Org"]
    # Revenue: the holder's postings of 2026, by the asset that earned them.
    credited = sum(n for i, d in HOLDER_YEAR if d.get("at", "").startswith("2026")
                   for p, n in d.get("postings") or [] if p == "party:hosp")  # fmt: skip
    assert totals.revenue == Counter({"CNY": credited})
    assert visits.revenue["CNY"] + beds.revenue["CNY"] == credited
    assert visits.revenue["CNY"] == query(0, "", {"hosp.visits": 4000, "ins.claims": 9000})[1][
        "cost"]["assets"]["hosp.visits"] * 7000 // 10000  # fmt: skip
    # Stops of its grant and of a developer holding grants on both; not the insurer's asset.
    assert [(i.index, i.event, i.kind, i.assets) for i in report.incidents] == [
        (13, "suspended", "grant", ("hosp.visits",)),
        (14, "suspended", "principal", ("hosp.beds", "hosp.visits")),
        (15, "resumed", "principal", ("hosp.beds", "hosp.visits")),
        (25, "destroyed", "asset", ("hosp.beds",)),
    ]  # fmt: skip
    assert [i.reason for i in report.incidents] == ["why", None, None, "done"]
    assert totals.incidents == Counter({"suspensions": 2, "resumptions": 1, "destructions": 1,
                                        "budget_exhausted": 5})  # fmt: skip


def test_other_years_and_holders() -> None:
    before = supervise(HOLDER_YEAR, "hosp", 2025, shares_now)
    assert sorted(before.assets) == ["hosp.beds", "hosp.old", "hosp.visits"]
    assert before.assets["hosp.visits"].grants["in_force_at_end"] == {"g_old"}
    assert before.assets["hosp.old"].incidents["destructions"] == 1
    later = supervise(HOLDER_YEAR, "hosp", 2027, shares_now)
    assert sorted(later.assets) == ["hosp.visits"]  # old and beds were destroyed before 2027
    assert later.assets["hosp.visits"].grants["revoked"] == {"g_old"}
    assert later.totals.queries["released"] == 1
    assert supervise(HOLDER_YEAR, "hosp", 2001, shares_now).known
    nobody = supervise(HOLDER_YEAR, "nobody", 2026, shares_now)
    assert not nobody.known and nobody.assets == {}
    developer = supervise(HOLDER_YEAR, "dev", 2026, shares_now)
    assert developer.known and developer.assets == {}


@pytest.mark.parametrize(
    ("cell", "shown"),
    [("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-2", "'-2"),
     ("@SUM(A1)", "'@SUM(A1)"), ("\tcmd", "'\tcmd"), ("\rcmd", "'\rcmd"), ("plain", "plain"),
     ("a=b", "a=b"), (-5, -5), (12, 12)],
)  # fmt: skip
def test_no_cell_is_a_formula(cell: object, shown: object) -> None:
    assert inert(cell) == shown


def test_csv_is_rfc_4180_and_reads_back() -> None:
    rows = [["a,b", 'say "hi"', "line\nbreak", None, 3], ["=1+1", "汉字", "", 0, -1]]
    text = table(["one", "two", "three", "four", "five"], rows)
    assert text.endswith("\r\n") and text.startswith("one,two,three,four,five\r\n")
    assert '"a,b","say ""hi""","line\nbreak",,3\r\n' in text
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["one", "two", "three", "four", "five"],
        ["a,b", 'say "hi"', "line\nbreak", "", "3"],
        ["'=1+1", "汉字", "", "0", "-1"],
    ]  # fmt: skip
