"""Grants in the console: a developer's request form and grants, the approval inbox of the
providers and supervisors, and each grant's history with the actions its reader may take."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from console.refusals import REFUSED, Refusal, explain, invalid_fields
from console.render import page, refused
from console.visitors import Poster, Standing, Veil, Viewer, Visitor, in_standing
from governance import SUPERVISOR_PARTY, Grant, GrantStatus, utc_now
from sandbox.cards import PURPOSE
from services import grants
from services.authorisation import assets_resource, authorise, grant_resource
from services.errors import Invalid

router = APIRouter(prefix="/console/grants")

# Offered when some asset names no purposes of its own (it serves any).
COMMON_PURPOSES = ("public_welfare", "public_governance", "research", "commercial_pricing")


def purposes(cards: list) -> list[str]:
    """The purposes the registered assets' cards name, for the forms to offer."""
    named = {purpose for card in cards for purpose in (card.purposes or COMMON_PURPOSES)}
    return sorted(named)


@router.get("")
def listing(request: Request, visitor: Viewer, veil: Veil, inbox: str | None = None) -> Response:
    """The grants this principal may see; with `inbox`, those waiting for its approval."""
    try:
        authorise(veil, caller=visitor.principal, scope="grant:read", resource={})
        shown = grants.visible_grants(veil, caller=visitor.principal, status=None)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    if inbox:
        shown = [g for g in shown if g.status is GrantStatus.PENDING and _awaits(visitor, g)]
    today = utc_now()[:10]
    quotas = {g.id: veil.control.quota_use(g.id, today) for g in shown if g.quotas}
    return page(request, "grants.html", visitor, grants=shown, inbox=bool(inbox),
                quotas=quotas)  # fmt: skip


@router.get("/new")
def request_form(request: Request, visitor: Standing, veil: Veil) -> Response:
    return _form(request, visitor, veil)


@router.post("/new")
def request_grant(
    request: Request,
    visitor: Poster,
    veil: Veil,
    assets: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI reads the default only
    purpose: Annotated[str, Form(max_length=64)] = "",
    scenario: Annotated[str, Form(max_length=2000)] = "",
    methods: Annotated[list[str], Form()] = [],  # noqa: B006
    days: Annotated[int, Form(ge=1, le=3650)] = 90,
) -> Response:
    """The same checks as the API's: the form keeps what was typed and names what is wrong."""
    typed = {"assets": assets, "purpose": purpose, "scenario": scenario, "methods": methods,
             "days": days}  # fmt: skip
    refusal = invalid_fields(
        "the grant request is not valid",
        {
            "assets": bool(assets),
            "purpose": re.fullmatch(PURPOSE, purpose) is not None,
            "scenario": bool(scenario.strip()),
            "methods": bool(methods) and set(methods) <= {"sql", "job"},
        },
    )
    if refusal:
        return _form(request, visitor, veil, typed, refusal)
    try:
        cards = {asset: veil.enclave.store.get(asset).card for asset in sorted(set(assets))}
        resource = assets_resource(veil, list(cards.values()), columns={})
        permit = authorise(veil, caller=visitor.principal, scope="grant:request", resource=resource)
        grant = grants.request_grant(
            veil, permit=permit, cards=cards, purpose=purpose, scenario=scenario.strip(),
            methods=methods, valid_until=datetime.now(UTC) + timedelta(days=days),
        )  # fmt: skip
    except REFUSED as exc:
        return _form(request, visitor, veil, typed, explain(exc))
    return RedirectResponse(f"/console/grants/{grant.id}", status_code=303)


@router.get("/{grant_id}")
def detail(grant_id: str, request: Request, visitor: Viewer, veil: Veil) -> Response:
    try:
        grant = veil.control.grant(grant_id)
        authorise(
            veil, caller=visitor.principal, scope="grant:read", resource=grant_resource(grant)
        )
        shown = grants.grant_with_history(veil, grant_id=grant.id)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    return page(request, "grant.html", visitor, grant=shown, awaits=_awaits(visitor, grant))


@router.post("/{grant_id}/{action}")
def decide(
    grant_id: str,
    action: str,
    request: Request,
    visitor: Poster,
    veil: Veil,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Approve, reject (with a reason) or revoke, through the same scopes as the API."""
    scope = {"approve": "grant:approve", "reject": "grant:approve", "revoke": "grant:revoke"}
    if action not in scope:
        return refused(request, visitor, Refusal(404, "NOT_FOUND", "not found"))
    try:
        grant = veil.control.grant(grant_id)
        permit = authorise(veil, caller=visitor.principal, scope=scope[action],
                           resource=grant_resource(grant))  # fmt: skip
        if action == "approve":
            grants.approve_grant(veil, permit=permit, grant=grant)
        elif action == "reject":
            if not reason.strip():
                raise Invalid(
                    "a reason is required", [{"rule": "invalid_field", "column": "reason"}]
                )
            grants.reject_grant(veil, permit=permit, grant=grant, reason=reason.strip())
        else:
            grants.revoke_grant(veil, permit=permit, grant=grant, reason=reason.strip() or None)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    return RedirectResponse(f"/console/grants/{grant_id}", status_code=303)


def _awaits(visitor: Visitor, grant: Grant) -> bool:
    """Whether this principal's approval is one the grant still waits for."""
    principal = visitor.principal
    if principal.has("supervisor") and SUPERVISOR_PARTY not in grant.approvals:
        return SUPERVISOR_PARTY in grant.required_parties
    return principal.id in grant.required_parties and principal.id not in grant.approvals


def _form(
    request: Request,
    visitor: Visitor,
    veil: Veil,
    typed: dict | None = None,
    refusal: Refusal | None = None,
) -> Response:
    in_standing(veil, visitor)
    listed = [stored.card for stored in veil.enclave.store.list()]
    typed = typed or {"assets": [], "purpose": "public_welfare", "scenario": "",
                      "methods": ["sql"], "days": 90}  # fmt: skip
    status = refusal.status if refusal else 200
    return page(request, "grant_new.html", visitor, status, cards=listed, typed=typed,
                purposes=purposes(listed), refusal=refusal)  # fmt: skip
