"""What overseers watch: the ledger's verification, refusal spikes, the policy modules in
force, and privacy budgets across organisations."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.refusals import REFUSED, explain
from console.render import page
from console.visitors import Veil, Viewer
from services.authorisation import authorise
from services.policies import policy_view
from services.privacy import budget_report

router = APIRouter(prefix="/console")


@router.get("/oversight")
def oversight(request: Request, visitor: Viewer, veil: Veil) -> Response:
    caller = visitor.principal
    try:
        authorise(veil, caller=caller, scope="policy:read", resource={})
        policies = policy_view(veil, veil.policy.loaded())
        authorise(veil, caller=caller, scope="budget:read", resource={})
        budgets = budget_report(veil, caller=caller, period=None)
    except REFUSED as exc:
        refusal = explain(exc)
        return page(request, "refused.html", visitor, refusal.status, refusal=refusal)
    last = veil.ledger_watch.last
    verified = None if last is None else {"ok": last[0], "at": _stamp(last[1])}
    spikes = [{"principal": who, "at": _stamp(at)} for who, at in veil.refusal_watch.recent()]
    return page(request, "oversight.html", visitor, verified=verified, spikes=spikes[::-1],
                policies=policies, budgets=budgets, tree_size=veil.ledger.head()[0])  # fmt: skip


def _stamp(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
