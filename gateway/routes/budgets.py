"""Privacy budgets: what each developer organisation has spent and has left, per asset."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.auth import Veil
from gateway.authorisation import Allowed
from services.privacy import budget_report

router = APIRouter(prefix="/v1", tags=["budgets"])

Period = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


@router.get("/budgets")
def budgets(permit: Allowed("budget:read"), veil: Veil, period: Period = None) -> dict:
    """ε and δ spent and left this month (or `period`): a developer sees its organisation's,
    overseers every organisation's and the cap across all of them."""
    return budget_report(veil, caller=permit.caller, period=period)
