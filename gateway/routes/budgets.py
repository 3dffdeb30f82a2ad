"""Privacy budgets: what each developer organisation has spent and has left, per asset."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.schemas import AUTHORISED, errors
from services.privacy import budget_report

router = APIRouter(prefix="/v1", tags=["budgets"])

Period = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


class AssetBudget(BaseModel):
    asset: str
    epsilon_spent: float
    epsilon_left: float
    delta_spent: float
    delta_left: float


class OrganisationBudgets(BaseModel):
    """What a developer sees: its own organisation's budgets."""

    model_config = ConfigDict(extra="forbid")

    period: str
    organisation: str
    assets: list[AssetBudget]


class AllBudgets(BaseModel):
    """What overseers see: every organisation's, and each asset's cap across all of them."""

    model_config = ConfigDict(extra="forbid")

    period: str
    organisations: dict[str, list[AssetBudget]]
    all_developers: list[AssetBudget]


@router.get(
    "/budgets",
    response_model=OrganisationBudgets | AllBudgets,
    responses=errors(*AUTHORISED, 422),
)
def budgets(permit: Allowed("budget:read"), veil: Veil, period: Period = None) -> dict:
    """ε and δ spent and left this month (or `period`): a developer sees its organisation's,
    overseers every organisation's and the cap across all of them."""
    return budget_report(veil, caller=permit.caller, period=period)
