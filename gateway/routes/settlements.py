"""Settlements and usage, recomputed from the ledger: what was used, charged and owed."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.schemas import AUTHORISED, errors, example
from ledger import PostingLine
from services.settlements import settlement_report, usage_report

router = APIRouter(prefix="/v1", tags=["settlements"])

Period = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
Currency = Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")]
CSV_HEADER = ["ledger_index", "at", "reference", "account", "amount_minor", "currency"]


class Settlement(BaseModel):
    """A month's charges and shares in one currency, as of a signed checkpoint's tree size."""

    period: str
    currency: str | None = Field(description="Null when nothing was charged in the month")
    total_charged_minor: int
    parties: dict[str, int] = Field(description="What each party is owed")
    developers: dict[str, int] = Field(description="What each developer paid")
    tree_size: int


class UsageLine(BaseModel):
    ledger_index: int
    at: str
    principal: str
    reference: str = Field(description="The query or job id")
    outcome: str
    assets: list[str]
    rows_scanned: int
    cpu_ms: int
    bytes_returned: int
    amount_minor: int
    currency: str | None


class Usage(BaseModel):
    """Metered requests in a month, with totals over all of them and the latest `limit`."""

    period: str
    requests: int
    outcomes: dict[str, int]
    charged_minor: dict[str, int]
    rows_scanned: int
    cpu_ms: int
    bytes_returned: int
    items: list[UsageLine]


SETTLEMENT_RESPONSES = {
    200: {
        "model": Settlement,
        "description": "The month's settlement; with `format=csv`, every posting behind it",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    },
    **errors(
        *AUTHORISED,
        422,
        examples={
            422: example("CURRENCY_REQUIRED", "this period was charged in several currencies")
        },
    ),
}


@router.get("/settlements", response_model=Settlement, responses=SETTLEMENT_RESPONSES)
def settlements(
    permit: Allowed("settlement:read"),
    veil: Veil,
    period: Period = None,
    currency: Currency = None,
    format: Literal["json", "csv"] = "json",
) -> Settlement | Response:
    """Totals charged and each party's share for a month; `format=csv` lists every posting."""
    report = settlement_report(veil, caller=permit.caller, period=period, currency=currency)
    if format == "csv":
        return Response(_csv(report.lines), media_type="text/csv; charset=utf-8")
    return Settlement.model_validate(report.summary)


@router.get("/usage", responses=errors(*AUTHORISED, 422))
def usage(
    permit: Allowed("usage:read"),
    veil: Veil,
    period: Period = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Usage:
    """Metered requests in a month: a developer's own, a provider's assets', or everyone's."""
    return Usage.model_validate(
        usage_report(veil, caller=permit.caller, period=period, limit=limit)
    )


def _csv(lines: list[PostingLine]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for line in lines:
        writer.writerow(
            [line.index, line.at, line.reference, line.account, line.amount_minor, line.currency]
        )
    return out.getvalue()
