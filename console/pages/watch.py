"""What overseers watch: the ledger's verification, refusal spikes, the policy modules in
force, and privacy budgets across organisations."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from console.refusals import REFUSED, Refusal, explain
from console.render import page, refused
from console.visitors import Poster, Veil, Viewer, Visitor
from services.authorisation import authorise
from services.policies import PolicyTests, policy_view, reload_policies, run_policy_tests
from services.privacy import budget_report

router = APIRouter(prefix="/console")


@router.get("/oversight")
def oversight(request: Request, visitor: Viewer, veil: Veil) -> Response:
    return _oversight(request, visitor, veil)


@router.post("/oversight/reload-policy")
def reload_policy(request: Request, visitor: Poster, veil: Veil) -> Response:
    """Recompile the modules on disk; broken ones are refused and the previous ones decide."""
    try:
        permit = authorise(veil, caller=visitor.principal, scope="policy:reload", resource={})
        reloaded = reload_policies(veil, permit=permit)
    except REFUSED as exc:
        return _oversight(request, visitor, veil, explain(exc))
    return _oversight(request, visitor, veil, reloaded=reloaded)


@router.post("/oversight/test-policy")
def test_policy(request: Request, visitor: Poster, veil: Veil) -> Response:
    """Run the Rego unit tests under OPA against the modules on disk, and show the results."""
    try:
        permit = authorise(veil, caller=visitor.principal, scope="policy:reload", resource={})
        tested = run_policy_tests(veil, permit=permit)
    except REFUSED as exc:
        return _oversight(request, visitor, veil, explain(exc))
    return _oversight(request, visitor, veil, tested=tested)


def _oversight(
    request: Request,
    visitor: Visitor,
    veil: Veil,
    refusal: Refusal | None = None,
    reloaded: dict | None = None,
    tested: PolicyTests | None = None,
) -> Response:
    caller = visitor.principal
    try:
        authorise(veil, caller=caller, scope="policy:read", resource={})
        policies = policy_view(veil, veil.policy.loaded())
        authorise(veil, caller=caller, scope="budget:read", resource={})
        budgets = budget_report(veil, caller=caller, period=None)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    last = veil.ledger_watch.last
    verified = None if last is None else {"ok": last[0], "at": _stamp(last[1])}
    spikes = [{"principal": who, "at": _stamp(at)} for who, at in veil.refusal_watch.recent()]
    status = refusal.status if refusal else 200
    return page(request, "oversight.html", visitor, status, verified=verified,
                spikes=spikes[::-1], policies=policies, budgets=budgets, refusal=refusal,
                reloaded=reloaded, tested=tested, tree_size=veil.ledger.head()[0])  # fmt: skip


def _stamp(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
