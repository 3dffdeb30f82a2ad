"""Principals for the admin: create one, rotate or revoke its key; a new key is shown once."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from console.refusals import REFUSED, Refusal, explain, invalid_fields
from console.render import page, refused
from console.visitors import Poster, Veil, Viewer, Visitor
from sandbox.cards import PRINCIPAL_ID
from services import principals
from services.authorisation import authorise, principal_resource

router = APIRouter(prefix="/console/principals")

ROLES = ("developer", "provider", "supervisor", "operator", "admin")


@router.get("")
def listing(request: Request, visitor: Viewer, veil: Veil) -> Response:
    return _listing(request, visitor, veil)


@router.post("")
def create(
    request: Request,
    visitor: Poster,
    veil: Veil,
    principal_id: Annotated[str, Form(max_length=64)] = "",
    org: Annotated[str, Form(max_length=200)] = "",
    roles: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI reads the default only
) -> Response:
    typed = {"principal_id": principal_id, "org": org, "roles": roles}
    refusal = invalid_fields(
        "the principal is not valid",
        {
            "principal_id": re.fullmatch(PRINCIPAL_ID, principal_id) is not None,
            "org": bool(org.strip()),
            "roles": bool(roles) and set(roles) <= set(ROLES),
        },
    )
    if refusal:
        return _listing(request, visitor, veil, refusal=refusal, typed=typed)
    try:
        permit = authorise(veil, caller=visitor.principal, scope="principal:manage", resource={})
        key = principals.create_principal(
            veil, permit=permit, principal_id=principal_id, roles=set(roles), org=org.strip()
        )
    except REFUSED as exc:
        return _listing(request, visitor, veil, refusal=explain(exc), typed=typed)
    return _listing(request, visitor, veil, shown_key=(principal_id, key))


@router.post("/{principal_id}/{action}")
def change(
    principal_id: str, action: str, request: Request, visitor: Poster, veil: Veil
) -> Response:
    """Rotate (the new key shown once) or revoke (for good)."""
    if action not in ("rotate", "revoke"):
        return RedirectResponse("/console/principals", status_code=303)
    try:
        target = principals.named_principal(veil, principal_id=principal_id)
        permit = authorise(veil, caller=visitor.principal, scope="principal:manage",
                           resource=principal_resource(target))  # fmt: skip
        if action == "rotate":
            key = principals.rotate_key(veil, permit=permit, principal=target)
            return _listing(request, visitor, veil, shown_key=(principal_id, key))
        principals.revoke_principal(veil, permit=permit, principal=target)
    except REFUSED as exc:
        return _listing(request, visitor, veil, refusal=explain(exc))
    return RedirectResponse("/console/principals", status_code=303)


def _listing(
    request: Request,
    visitor: Visitor,
    veil: Veil,
    refusal: Refusal | None = None,
    typed: dict | None = None,
    shown_key: tuple[str, str] | None = None,
) -> Response:
    try:
        authorise(veil, caller=visitor.principal, scope="principal:manage", resource={})
    except REFUSED as exc:
        return refused(request, visitor, exc)
    status = refusal.status if refusal else 200
    typed = typed or {"principal_id": "", "org": "", "roles": ["developer"]}
    return page(request, "principals.html", visitor, status, principals=veil.control.principals(),
                roles=ROLES, typed=typed, refusal=refusal, shown_key=shown_key)  # fmt: skip
