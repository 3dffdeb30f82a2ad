"""Settlements and usage, recomputed from the ledger: what was used, charged and owed, as each
reader may see it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from governance import Principal
from ledger import PAYEE, PostingLine, Settlement, settle, usage
from services.errors import Invalid
from services.ledger_access import reader
from services.runtime import Services

# Roles that see every party's figures; a provider sees only its own.
OVERSEERS = ("supervisor", "operator")


@dataclass(frozen=True)
class SettlementReport:
    """A month's totals as the caller may see them, and the postings behind them."""

    summary: dict
    lines: list[PostingLine]


def month(period: str | None) -> str:
    return period or datetime.now(UTC).strftime("%Y-%m")


def settlement_report(
    veil: Services, *, caller: Principal, period: str | None, currency: str | None
) -> SettlementReport:
    """Totals charged and each party's share for a month, settled as of the newest signed
    checkpoint so the figures can be tied to it; a provider sees only what it is owed."""
    size = veil.ledger.checkpoint().tree_size
    settlement = settle(veil.ledger.replay(month(period), size), month(period))
    chosen = _currency(settlement, currency)
    party = None if caller.has(*OVERSEERS) else caller.id
    lines = [
        line
        for line in settlement.lines
        if line.currency == chosen and (party is None or line.account == PAYEE + party)
    ]
    parties = dict(settlement.parties.get(chosen, Counter()))
    developers = dict(settlement.developers.get(chosen, Counter()))
    total = settlement.charged[chosen]
    if party is not None:
        # A provider sees what it is owed, and the charges of the entries that owe it.
        credited = {line.index for line in lines}
        debits = [line for line in settlement.lines if line.index in credited]
        total = -sum(line.amount_minor for line in debits if line.amount_minor < 0)
        parties = {party: parties[party]} if party in parties else {}
        developers = {}
    summary = {
        "period": settlement.period,
        "currency": chosen,
        "total_charged_minor": total,
        "parties": dict(sorted(parties.items())),
        "developers": dict(sorted(developers.items())),
        "tree_size": size,
    }
    return SettlementReport(summary, lines)


def usage_report(veil: Services, *, caller: Principal, period: str | None, limit: int) -> dict:
    """Metered requests in a month: a developer's own, a provider's assets', or everyone's."""
    chosen = month(period)
    report = usage(veil.ledger.replay(chosen), chosen, reader(veil, caller))
    return {
        "period": report.period,
        "requests": report.requests,
        "outcomes": dict(sorted(report.outcomes.items())),
        "charged_minor": dict(sorted(report.charged.items())),
        **report.totals,
        "items": [
            {
                "ledger_index": line.index,
                "at": line.at,
                "principal": line.principal,
                "reference": line.reference,
                "outcome": line.outcome,
                "assets": list(line.assets),
                "rows_scanned": line.rows_scanned,
                "cpu_ms": line.cpu_ms,
                "bytes_returned": line.bytes_returned,
                "amount_minor": line.amount_minor,
                "currency": line.currency,
            }
            for line in report.lines[-limit:]
        ],
    }


def _currency(settlement: Settlement, wanted: str | None) -> str | None:
    if wanted is not None:
        return wanted
    seen = sorted(settlement.charged)
    if len(seen) > 1:
        raise Invalid("this period was charged in several currencies", code="CURRENCY_REQUIRED")
    return seen[0] if seen else None
