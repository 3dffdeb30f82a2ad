"""My usage and receipts: each metered request of the month, and each receipt's inclusion
checked against the ledger's signed checkpoint."""

from __future__ import annotations

import json
import re
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from console.refusals import REFUSED
from console.render import page, refused
from console.visitors import Veil, Viewer
from services.authorisation import authorise
from services.receipts import check_receipt
from services.settlements import usage_report

router = APIRouter(prefix="/console")

MAX_INDEX = 2**53  # as the API bounds it: beyond any real log, within every database

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@router.get("/usage")
def usage(request: Request, visitor: Viewer, veil: Veil, period: str | None = None) -> Response:
    try:
        authorise(veil, caller=visitor.principal, scope="usage:read", resource={})
        chosen = period if period and MONTH.fullmatch(period) else None
        report = usage_report(veil, caller=visitor.principal, period=chosen, limit=200)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    return page(request, "usage.html", visitor, report=report)


@router.get("/receipts/{index}")
def receipt(
    index: Annotated[int, Path(ge=0, le=MAX_INDEX)], request: Request, visitor: Viewer, veil: Veil
) -> Response:
    try:
        authorise(veil, caller=visitor.principal, scope="ledger:read", resource={})
        checked = check_receipt(veil, caller=visitor.principal, index=index)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    entry = json.dumps(json.loads(checked.data), indent=2, ensure_ascii=False)
    return page(request, "receipt.html", visitor, check=checked, entry=entry)
