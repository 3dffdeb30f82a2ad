"""The reports the seeds ask for, computed from the ledger as of the newest signed checkpoint:
a holder's annual supervision report and a month's revenue distribution, as each reader may
see them (the replays are in services/supervision.py and services/distribution.py)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from governance import Principal
from ledger.settlements import check_period
from sandbox.errors import SandboxError
from services.asset_revenue import SharesAt
from services.distribution import distribute
from services.errors import Denied, Invalid, Missing
from services.grants import EARLIEST, LATEST
from services.runtime import Services
from services.supervision import (
    GRANT_EVENTS,
    IN_FORCE,
    INCIDENT_COUNTS,
    JOB_OUTCOMES,
    QUERY_OUTCOMES,
    AssetYear,
    Supervision,
    supervise,
)

# Roles that read every holder's report and every party's lines; a provider reads its own.
OVERSEERS = ("supervisor", "operator")
NOT_HOLDER = "not_holder"


def report_resource(holder: str) -> dict:
    """The policy's `input.resource` for report:supervision: the holder asked about."""
    return {"holder": holder}


def current_year() -> int:
    return datetime.now(UTC).year


def supervision_report(veil: Services, *, caller: Principal, holder: str, year: int) -> dict:
    """`holder`'s year: per asset it provides, grants, developers, queries and jobs by outcome,
    rows scanned, its revenue and incidents, with totals and the tree size it was read at.

    A provider reads only its own report, with the same refusal whether or not the holder it
    named exists; overseers read any holder's, and one the ledger never named is Missing."""
    if not EARLIEST <= year <= LATEST:
        raise Invalid("the year is out of range", [{"rule": "invalid_parameter", "column": "year"}])
    if not caller.has(*OVERSEERS) and holder != caller.id:
        raise Denied("the policy does not allow report:supervision", [{"rule": NOT_HOLDER}])
    size = veil.ledger.checkpoint().tree_size
    report = supervise(veil.ledger.replay(None, size), holder, year, card_shares(veil))
    if not report.known:
        raise Missing("no such holder")
    titles = asset_titles(veil)
    return {
        "holder": holder,
        "year": year,
        "tree_size": size,
        "assets": [
            {"asset": asset, "title": titles.get(asset), **_figures(report, report.assets[asset])}
            for asset in sorted(report.assets)
        ],
        "totals": _figures(report, report.totals),
        "incidents": [
            {
                "ledger_index": incident.index,
                "at": incident.at,
                "event": incident.event,
                "kind": incident.kind,
                "target": incident.target,
                "assets": list(incident.assets),
                "reason": incident.reason,
            }
            for incident in report.incidents
        ],
        "apportioned_entries": report.apportioned,
    }


def distribution_report(veil: Services, *, caller: Principal, period: str | None) -> dict:
    """A month's revenue per asset, party and currency, from the postings: each party's total
    is what `GET /v1/settlements` says it is owed, and each currency's total charged is the
    settlement's. A provider reads only its own lines, and the charges of the entries that
    credited it (as its settlement does)."""
    month = check_period(period or datetime.now(UTC).strftime("%Y-%m"))
    size = veil.ledger.checkpoint().tree_size
    distribution = distribute(veil.ledger.replay(month, size), month, card_shares(veil))
    settlement = distribution.settlement
    party = None if caller.has(*OVERSEERS) else caller.id
    totals = {}
    for currency in sorted(settlement.charged):
        parties = +settlement.parties.get(currency, Counter())
        if party is None:
            charged = settlement.charged[currency]
        elif party in parties:
            charged = distribution.charged_for[party][currency]
            parties = Counter({party: parties[party]})
        else:
            continue
        totals[currency] = {
            "total_charged_minor": charged,
            "parties": dict(sorted(parties.items())),
        }
    titles = asset_titles(veil)
    lines = [
        {
            "asset": asset,
            "title": titles.get(asset),
            "party": name,
            "currency": currency,
            "amount_minor": share.amount_minor,
            "entries": share.entries,
        }
        for (currency, asset, name), share in sorted(distribution.shares.items())
        if party is None or name == party
    ]
    return {
        "period": month,
        "tree_size": size,
        "totals": totals,
        "lines": lines,
        "apportioned_entries": distribution.apportioned,
    }


def card_shares(veil: Services) -> SharesAt:
    """The revenue shares each asset's card stated at a time: its latest card written by then
    (to the second, as entries are stamped), or its first; a destroyed asset's last card."""
    store = veil.enclave.store
    destroyed = store.destroyed()
    known: dict[str, list[tuple[str, dict]]] = {}

    def cards(asset: str) -> list[tuple[str, dict]]:
        if asset not in known:
            try:
                history = store.history(asset)
                known[asset] = [
                    (str(h["at"])[:19], h["card"]["revenue_shares_bp"]) for h in history
                ]
            except SandboxError:
                gone = destroyed.get(asset)
                known[asset] = [("", dict(gone.card.revenue_shares_bp))] if gone else []
        return known[asset]

    def shares_at(asset: str, at: str) -> dict | None:
        written = cards(asset)
        in_force = [shares for since, shares in written if since <= at[:19]] or written[:1]
        return in_force[-1] if in_force else None

    return shares_at


def asset_titles(veil: Services) -> dict[str, str]:
    """Each asset's title as its card says now (a destroyed asset's, as it last said)."""
    store = veil.enclave.store
    gone = {asset: destroyed.card.title for asset, destroyed in store.destroyed().items()}
    return {**gone, **{asset: card.title for asset, card in store.cards().items()}}


def _figures(report: Supervision, year: AssetYear) -> dict:
    developers = report.developers(year)
    return {
        "grants": {event: len(year.grants[event]) for event in (*GRANT_EVENTS, IN_FORCE)},
        "developers": len(developers),
        "organisations": developers,
        "queries": {outcome: year.queries[outcome] for outcome in QUERY_OUTCOMES},
        "jobs": {outcome: year.jobs[outcome] for outcome in JOB_OUTCOMES},
        "rows_scanned": year.rows_scanned,
        "revenue_minor": dict(sorted(year.revenue.items())),
        "incidents": {kind: year.incidents[kind] for kind in INCIDENT_COUNTS},
    }
