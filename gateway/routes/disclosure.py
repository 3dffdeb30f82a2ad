"""The public disclosure report: what each asset was used for in a month, for anyone to read."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Veil
from gateway.schemas import errors
from services.disclosure import disclosure_report

router = APIRouter(prefix="/v1", tags=["disclosure"])

Period = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


class Withheld(BaseModel):
    """An asset used by too few developers for any figure about it to be shown."""

    model_config = ConfigDict(extra="forbid")

    asset: str
    withheld: Literal[True]


class Disclosed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset: str
    withheld: Literal[False]
    grants: int
    developers: int
    queries: int
    jobs: int
    revenue_minor: dict[str, int] = Field(description="What the asset earned, per currency")


class Notice(BaseModel):
    """A registration under public notice: anyone may object until `notice_until`."""

    registration: str
    asset: str
    kind: str
    holder: str
    notice_until: str | None
    objections: int


class DisclosureReport(BaseModel):
    period: str
    tree_size: int = Field(description="The signed checkpoint the report was replayed to")
    min_developers: int
    assets: list[Withheld | Disclosed]
    notices: list[Notice] = Field(description="Registrations under public notice")


@router.get("/disclosure", responses=errors(422, 503))
def disclosure(veil: Veil, period: Period = None) -> DisclosureReport:
    """Per asset: grants in use, developers, completed queries and jobs, and revenue, as of the
    newest signed checkpoint. Public, with no key; names no developer, and withholds an
    asset's figures when fewer than a few developers used it."""
    return DisclosureReport.model_validate(disclosure_report(veil, period=period))
