"""Settlements and usage, recomputed from the ledger: what was used, charged and owed."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.errors import ApiError
from ledger import PAYEE, PostingLine, Settlement, settle, usage
from services.ledger_access import reader

router = APIRouter(prefix="/v1", tags=["settlements"])

Period = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
Currency = Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")]
# Roles that see every party's figures; a provider sees only its own.
OVERSEERS = ("supervisor", "operator")
CSV_HEADER = ["ledger_index", "at", "reference", "account", "amount_minor", "currency"]


def _period(period: str | None) -> str:
    return period or datetime.now(UTC).strftime("%Y-%m")


@router.get("/settlements", response_model=None)
def settlements(
    permit: Allowed("settlement:read"),
    veil: Veil,
    period: Period = None,
    currency: Currency = None,
    format: Literal["json", "csv"] = "json",
) -> dict | Response:
    """Totals charged and each party's share for a month; `format=csv` lists every posting."""
    # Settled as of the newest signed checkpoint, so the figures can be tied to it.
    size = veil.ledger.checkpoint().tree_size
    settlement = settle(veil.ledger.replay(_period(period), size), _period(period))
    chosen = _currency(settlement, currency)
    party = None if permit.caller.has(*OVERSEERS) else permit.caller.id
    lines = [
        line
        for line in settlement.lines
        if line.currency == chosen and (party is None or line.account == PAYEE + party)
    ]
    if format == "csv":
        return Response(_csv(lines), media_type="text/csv; charset=utf-8")
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
    return {
        "period": settlement.period,
        "currency": chosen,
        "total_charged_minor": total,
        "parties": dict(sorted(parties.items())),
        "developers": dict(sorted(developers.items())),
        "tree_size": size,
    }


@router.get("/usage")
def usage_report(
    permit: Allowed("usage:read"),
    veil: Veil,
    period: Period = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """Metered requests in a month: a developer's own, a provider's assets', or everyone's."""
    month = _period(period)
    report = usage(veil.ledger.replay(month), month, reader(veil, permit.caller))
    return {
        "period": report.period,
        "requests": len(report.lines),
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
        raise ApiError(422, "CURRENCY_REQUIRED", "this period was charged in several currencies")
    return seen[0] if seen else None


def _csv(lines: list[PostingLine]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for line in lines:
        writer.writerow(
            [line.index, line.at, line.reference, line.account, line.amount_minor, line.currency]
        )
    return out.getvalue()
