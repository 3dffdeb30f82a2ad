"""Settlements by month, as each reader may see them: totals, each party's share as a chart,
and every posting as CSV."""

from __future__ import annotations

import csv
import io
import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.refusals import REFUSED, explain
from console.render import bar_chart, page, refused
from console.visitors import Veil, Viewer
from services.authorisation import authorise
from services.settlements import settlement_report

router = APIRouter(prefix="/console/settlements")

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
# Months the chart of totals spans, ending with the one shown.
MONTHS_SHOWN = 6


def _report(visitor: Viewer, veil: Veil, period: str | None, currency: str | None):
    authorise(veil, caller=visitor.principal, scope="settlement:read", resource={})
    return settlement_report(
        veil, caller=visitor.principal,
        period=period if period and MONTH.fullmatch(period) else None,
        currency=currency if currency and CURRENCY.fullmatch(currency) else None,
    )  # fmt: skip


@router.get("")
def settlements(
    request: Request,
    visitor: Viewer,
    veil: Veil,
    period: str | None = None,
    currency: str | None = None,
) -> Response:
    try:
        report = _report(visitor, veil, period, currency)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    parties = report.summary["parties"]
    chart = bar_chart(list(parties), [float(amount) for amount in parties.values()])
    # The months before, in the currency shown: one report each, the policy asked once above.
    chosen = report.summary["currency"]
    earlier = _months_before(report.summary["period"], MONTHS_SHOWN)[:-1]
    totals = [*_totals(visitor, veil, earlier, chosen), report.summary]
    by_month = bar_chart([t["period"] for t in totals],
                         [float(t["total_charged_minor"] or 0) for t in totals])  # fmt: skip
    return page(request, "settlements.html", visitor, summary=report.summary, chart=chart,
                by_month=by_month)  # fmt: skip


def _totals(visitor: Viewer, veil: Veil, months: list[str], currency: str | None) -> list[dict]:
    """Each month's summary; a month that cannot be shown in one currency is left out."""
    shown = []
    for month in months:
        try:
            report = settlement_report(veil, caller=visitor.principal, period=month,
                                       currency=currency)  # fmt: skip
        except REFUSED:
            continue
        shown.append(report.summary)
    return shown


def _months_before(period: str, count: int) -> list[str]:
    """`count` months ending with `period`, oldest first."""
    year, month = int(period[:4]), int(period[5:])
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months[::-1]


@router.get("/csv")
def postings_csv(
    visitor: Viewer, veil: Veil, period: str | None = None, currency: str | None = None
) -> Response:
    try:
        report = _report(visitor, veil, period, currency)
    except REFUSED as exc:
        refusal = explain(exc)
        return Response(refusal.code + "\n", status_code=refusal.status,
                        media_type="text/plain")  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ledger_index", "at", "reference", "account", "amount_minor", "currency"])
    for line in report.lines:
        writer.writerow([line.index, line.at, line.reference, line.account, line.amount_minor,
                         line.currency])  # fmt: skip
    name = f"settlement-{report.summary['period']}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip
