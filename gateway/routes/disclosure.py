"""The public disclosure report: what each asset was used for in a month, for anyone to read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.auth import Veil
from services.disclosure import disclosure_report

router = APIRouter(prefix="/v1", tags=["disclosure"])

Period = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


@router.get("/disclosure")
def disclosure(veil: Veil, period: Period = None) -> dict:
    """Per asset: grants in use, developers, completed queries and jobs, and revenue, as of the
    newest signed checkpoint. Public, with no key; names no developer, and withholds an
    asset's figures when fewer than a few developers used it."""
    return disclosure_report(veil, period=period)
