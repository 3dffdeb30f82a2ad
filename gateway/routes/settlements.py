"""Settlements and usage, recomputed from the ledger: what was used, charged and owed."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gateway.auth import Veil
from gateway.authorisation import Allowed
from ledger import PostingLine
from services.settlements import settlement_report, usage_report

router = APIRouter(prefix="/v1", tags=["settlements"])

Period = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
Currency = Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")]
CSV_HEADER = ["ledger_index", "at", "reference", "account", "amount_minor", "currency"]


@router.get("/settlements", response_model=None)
def settlements(
    permit: Allowed("settlement:read"),
    veil: Veil,
    period: Period = None,
    currency: Currency = None,
    format: Literal["json", "csv"] = "json",
) -> dict | Response:
    """Totals charged and each party's share for a month; `format=csv` lists every posting."""
    report = settlement_report(veil, caller=permit.caller, period=period, currency=currency)
    if format == "csv":
        return Response(_csv(report.lines), media_type="text/csv; charset=utf-8")
    return report.summary


@router.get("/usage")
def usage(
    permit: Allowed("usage:read"),
    veil: Veil,
    period: Period = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """Metered requests in a month: a developer's own, a provider's assets', or everyone's."""
    return usage_report(veil, caller=permit.caller, period=period, limit=limit)


def _csv(lines: list[PostingLine]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for line in lines:
        writer.writerow(
            [line.index, line.at, line.reference, line.account, line.amount_minor, line.currency]
        )
    return out.getvalue()
