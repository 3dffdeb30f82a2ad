"""Privacy budgets: what each developer organisation has spent and has left, per asset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from gateway.auth import Veil
from gateway.authorisation import Allowed
from governance.budgets import EVERYONE

router = APIRouter(prefix="/v1", tags=["budgets"])

Period = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
OVERSEERS = ("supervisor", "operator")


@router.get("/budgets")
def budgets(permit: Allowed("budget:read"), veil: Veil, period: Period = None) -> dict:
    """ε and δ spent and left this month (or `period`): a developer sees its organisation's,
    overseers every organisation's and the cap across all of them."""
    chosen = period or datetime.now(UTC).strftime("%Y-%m")
    caller = permit.caller
    if caller.has(*OVERSEERS):
        spent = veil.budgets.spent(chosen)
        organisations: dict[str, list] = {}
        for row in spent:
            if row.spender != EVERYONE:
                organisations.setdefault(row.spender, []).append(row.as_dict())
        caps = [row.as_dict() for row in spent if row.spender == EVERYONE]
        return {"period": chosen, "organisations": organisations, "all_developers": caps}
    own = veil.budgets.spent(chosen, caller.org)
    return {"period": chosen, "organisation": caller.org, "assets": [r.as_dict() for r in own]}
