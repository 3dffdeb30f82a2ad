"""Reports computed from the ledger: a holder's annual supervision report and a month's revenue
distribution, as JSON or (`format=csv`) as a spreadsheet's CSV."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, create_model

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.schemas import AUTHORISED, errors, example
from sandbox.cards import PRINCIPAL_ID
from services.grants import EARLIEST, LATEST
from services.report_csv import distribution_csv, supervision_csv
from services.reports import (
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

router = APIRouter(prefix="/v1/reports", tags=["reports"])

Holder = Annotated[str, Query(pattern=PRINCIPAL_ID, description="The provider the report is of")]
Year = Annotated[int | None, Query(ge=EARLIEST, le=LATEST, description="UTC; default this year")]
Period = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
Format = Literal["json", "csv"]
CSV = {"text/csv": {"schema": {"type": "string"}}}


def _counts(name: str, keys: tuple[str, ...]) -> type[BaseModel]:
    return create_model(
        name, __config__=ConfigDict(extra="forbid"), **dict.fromkeys(keys, (int, ...))
    )


GrantCounts = _counts("GrantCounts", (*GRANT_EVENTS, IN_FORCE))
QueryCounts = _counts("QueryCounts", QUERY_OUTCOMES)
JobCounts = _counts("JobCounts", JOB_OUTCOMES)
IncidentCounts = _counts("IncidentCounts", INCIDENT_COUNTS)


class YearFigures(BaseModel):
    """A year's figures: of one asset, or over all of the holder's (each entry once)."""

    grants: GrantCounts = Field(
        description="Grants on it per event in the year (each grant once), and in force at its end"
    )
    developers: int = Field(description="Distinct organisations that used it (released, completed)")
    organisations: list[str]
    queries: QueryCounts
    jobs: JobCounts
    rows_scanned: int
    revenue_minor: dict[str, int] = Field(description="The holder's postings, per currency")
    incidents: IncidentCounts


class AssetYear(YearFigures):
    asset: str
    title: str | None


class Incident(BaseModel):
    ledger_index: int
    at: str
    event: Literal["suspended", "resumed", "destroyed"]
    kind: Literal["asset", "grant", "principal"]
    target: str
    assets: list[str] = Field(description="The holder's assets it concerns")
    reason: str | None = Field(description="Given where the holder is party to the stop")


class SupervisionReport(BaseModel):
    """A holder's calendar year, replayed from the ledger up to `tree_size`."""

    holder: str
    year: int
    tree_size: int = Field(description="The signed checkpoint the report was replayed to")
    assets: list[AssetYear]
    totals: YearFigures
    incidents: list[Incident]
    apportioned_entries: int = Field(
        description="Charges on several assets whose split among them was apportioned"
    )


class CurrencyTotals(BaseModel):
    total_charged_minor: int
    parties: dict[str, int] = Field(description="What each party received in the month")


class DistributionLine(BaseModel):
    asset: str
    title: str | None
    party: str
    currency: str
    amount_minor: int
    entries: int = Field(description="Charged entries behind the amount")


class DistributionReport(BaseModel):
    """A month's revenue per asset and party, from the postings, up to `tree_size`."""

    period: str
    tree_size: int
    totals: dict[str, CurrencyTotals] = Field(description="Per currency: the settlement's figures")
    lines: list[DistributionLine]
    apportioned_entries: int


SUPERVISION_RESPONSES = {
    200: {"model": SupervisionReport, "description": "The report; `format=csv`, a row per asset",
          "content": CSV},
    **errors(*AUTHORISED, 404, 422, examples={
        403: example("POLICY_DENIED", "the policy does not allow report:supervision",
                     ("not_holder", None)),
        404: example("NOT_FOUND", "no such holder"),
        422: example("BAD_REQUEST", "the query parameter 'year' is not valid",
                     ("invalid_parameter", "year")),
    }),
}  # fmt: skip
DISTRIBUTION_RESPONSES = {
    200: {"model": DistributionReport, "description": "The report; `format=csv`, a row per line",
          "content": CSV},
    **errors(*AUTHORISED, 422),
}  # fmt: skip


def holder_resource(holder: Holder) -> dict:
    return report_resource(holder)


@router.get("/supervision", response_model=SupervisionReport, responses=SUPERVISION_RESPONSES)
def supervision(
    permit: Allowed("report:supervision", holder_resource),
    veil: Veil,
    holder: Holder,
    year: Year = None,
    format: Format = "json",
) -> SupervisionReport | Response:
    """A holder's annual supervision report: per asset it provides, the year's grants,
    developers, queries and jobs by outcome, rows scanned, its revenue and incidents, and
    totals. A provider reads its own; supervisors and operators any holder's."""
    chosen = year or current_year()
    report = supervision_report(veil, caller=permit.caller, holder=holder, year=chosen)
    if format == "csv":
        return _csv(supervision_csv(report), f"supervision-{holder}-{chosen}.csv")
    return SupervisionReport.model_validate(report)


@router.get("/distribution", response_model=DistributionReport, responses=DISTRIBUTION_RESPONSES)
def distribution(
    permit: Allowed("report:distribution"),
    veil: Veil,
    period: Period = None,
    format: Format = "json",
) -> DistributionReport | Response:
    """A month's revenue distribution: per asset, party and currency, from the postings, with
    each party's total and the total charged as `GET /v1/settlements` gives them. A provider
    reads its own lines only."""
    report = distribution_report(veil, caller=permit.caller, period=period)
    if format == "csv":
        return _csv(distribution_csv(report), f"distribution-{report['period']}.csv")
    return DistributionReport.model_validate(report)


def _csv(text: str, name: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
