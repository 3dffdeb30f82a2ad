"""Reports from the ledger: a holder's annual supervision report and a month's revenue
distribution, each as a page, a printable page and a CSV, through the same scopes and services
as `GET /v1/reports/...`."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.refusals import REFUSED, Refusal, explain
from console.render import page, refused
from console.visitors import Veil, Viewer, Visitor
from sandbox.cards import PRINCIPAL_ID
from services.authorisation import authorise
from services.grants import EARLIEST, LATEST
from services.report_csv import distribution_csv, supervision_csv
from services.reports import (
    OVERSEERS,
    current_year,
    distribution_report,
    report_resource,
    supervision_report,
)
from services.supervision import (
    GRANT_EVENTS,
    IN_FORCE,
    INCIDENT_COUNTS,
    JOB_OUTCOMES,
    QUERY_OUTCOMES,
)

router = APIRouter(prefix="/console/reports")

HOLDER = re.compile(PRINCIPAL_ID)
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
YEAR = re.compile(r"^\d{4}$")
COLUMNS = {"grant_events": (*GRANT_EVENTS, IN_FORCE), "query_outcomes": QUERY_OUTCOMES,
           "job_outcomes": JOB_OUTCOMES, "incident_counts": INCIDENT_COUNTS}  # fmt: skip


@router.get("")
def reports(request: Request, visitor: Viewer, veil: Veil) -> Response:
    """The two reports' forms: a provider's holder is itself; overseers choose one."""
    try:
        authorise(veil, caller=visitor.principal, scope="report:distribution", resource={})
    except REFUSED as exc:
        return refused(request, visitor, exc)
    return _forms(request, visitor, veil)


@router.get("/supervision")
def supervision(
    request: Request, visitor: Viewer, veil: Veil, holder: str = "", year: str = ""
) -> Response:
    return _supervision(request, visitor, veil, holder, year, "page")


@router.get("/supervision/print")
def supervision_print(
    request: Request, visitor: Viewer, veil: Veil, holder: str = "", year: str = ""
) -> Response:
    return _supervision(request, visitor, veil, holder, year, "print")


@router.get("/supervision/csv")
def supervision_download(
    request: Request, visitor: Viewer, veil: Veil, holder: str = "", year: str = ""
) -> Response:
    return _supervision(request, visitor, veil, holder, year, "csv")


@router.get("/distribution")
def distribution(request: Request, visitor: Viewer, veil: Veil, period: str = "") -> Response:
    return _distribution(request, visitor, veil, period, "page")


@router.get("/distribution/print")
def distribution_print(request: Request, visitor: Viewer, veil: Veil, period: str = "") -> Response:
    return _distribution(request, visitor, veil, period, "print")


@router.get("/distribution/csv")
def distribution_download(
    request: Request, visitor: Viewer, veil: Veil, period: str = ""
) -> Response:
    return _distribution(request, visitor, veil, period, "csv")


def _supervision(
    request: Request, visitor: Visitor, veil: Veil, holder: str, year: str, view: str
) -> Response:
    holder = holder.strip() or visitor.principal.id
    year = year.strip() or str(current_year())
    typed = {"holder": holder, "year": year}
    fine = {"holder": bool(HOLDER.fullmatch(holder)),
            "year": bool(YEAR.fullmatch(year)) and EARLIEST <= int(year) <= LATEST}  # fmt: skip
    if not all(fine.values()):
        wrong = [
            {"rule": "invalid_parameter", "column": name} for name, ok in fine.items() if not ok
        ]
        refusal = Refusal(422, "BAD_REQUEST", "the report's parameters are not valid", wrong)
        return _refuse(request, visitor, veil, view, refusal, typed)

    def made() -> dict:
        authorise(veil, caller=visitor.principal, scope="report:supervision",
                  resource=report_resource(holder))  # fmt: skip
        return supervision_report(veil, caller=visitor.principal, holder=holder, year=int(year))

    return _shown(request, visitor, veil, view, typed, "supervision", made, supervision_csv,
                  f"supervision-{holder}-{year}.csv")  # fmt: skip


def _distribution(
    request: Request, visitor: Visitor, veil: Veil, period: str, view: str
) -> Response:
    period = period.strip() or datetime.now(UTC).strftime("%Y-%m")
    typed = {"period": period}
    if not MONTH.fullmatch(period):
        wrong = [{"rule": "invalid_parameter", "column": "period"}]
        refusal = Refusal(422, "BAD_REQUEST", "the report's parameters are not valid", wrong)
        return _refuse(request, visitor, veil, view, refusal, typed)

    def made() -> dict:
        authorise(veil, caller=visitor.principal, scope="report:distribution", resource={})
        return distribution_report(veil, caller=visitor.principal, period=period)

    return _shown(request, visitor, veil, view, typed, "distribution", made, distribution_csv,
                  f"distribution-{period}.csv")  # fmt: skip


def _shown(
    request: Request,
    visitor: Visitor,
    veil: Veil,
    view: str,
    typed: dict,
    kind: str,
    made: Callable[[], dict],
    as_csv: Callable[[dict], str],
    name: str,
) -> Response:
    """The report as a page, a printable page or a CSV download; a refusal as its own page
    (as plain text for a download)."""
    try:
        report = made()
    except REFUSED as exc:
        return _refuse(request, visitor, veil, view, explain(exc), typed)
    if view == "csv":
        disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
        return Response(as_csv(report), media_type="text/csv; charset=utf-8", headers=disposition)
    template = "report_print.html" if view == "print" else f"report_{kind}.html"
    return page(request, template, visitor, kind=kind, report=report, typed=typed, **COLUMNS)


def _refuse(
    request: Request, visitor: Visitor, veil: Veil, view: str, refusal: Refusal, typed: dict
) -> Response:
    if view == "csv":
        return Response(refusal.code + "\n", status_code=refusal.status, media_type="text/plain")
    if refusal.status == 422:  # the forms again, the wrong field marked
        return _forms(request, visitor, veil, typed, refusal)
    return refused(request, visitor, refusal)


def _forms(
    request: Request,
    visitor: Visitor,
    veil: Veil,
    typed: dict | None = None,
    refusal: Refusal | None = None,
) -> Response:
    overseer = visitor.principal.has(*OVERSEERS)
    store = veil.enclave.store
    cards = [*store.cards().values(), *(gone.card for gone in store.destroyed().values())]
    holders = sorted({card.provider for card in cards}) if overseer else [visitor.principal.id]
    typed = {"holder": holders[0] if holders else "", "year": str(current_year()),
             "period": datetime.now(UTC).strftime("%Y-%m"), **(typed or {})}  # fmt: skip
    if not overseer:
        typed["holder"] = visitor.principal.id
    status = refusal.status if refusal else 200
    return page(request, "reports.html", visitor, status, holders=holders, typed=typed,
                refusal=refusal)  # fmt: skip
