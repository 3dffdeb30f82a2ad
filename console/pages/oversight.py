"""Oversight: emergency suspend and resume with a reason (supervisors, operators), and an
asset's destruction after a confirmation step (operators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.refusals import REFUSED, Refusal, explain, invalid_fields
from console.render import page, refused
from console.visitors import Poster, Veil, Viewer, Visitor
from governance import SuspensionKind
from services import assets, emergency
from services.authorisation import assets_resource, authorise, target_resource

router = APIRouter(prefix="/console")


@router.get("/emergency")
def emergency_form(request: Request, visitor: Viewer) -> Response:
    return _emergency(request, visitor)


@router.post("/emergency")
def emergency_stop(
    request: Request,
    visitor: Poster,
    veil: Veil,
    action: Annotated[str, Form(max_length=10)] = "",
    kind: Annotated[str, Form(max_length=10)] = "",
    target: Annotated[str, Form(max_length=120)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Suspend or resume a principal, grant or asset, through the same scopes as the API."""
    typed = {"action": action, "kind": kind, "target": target, "reason": reason}
    refusal = invalid_fields(
        "the emergency stop is not valid",
        {
            "action": action in ("suspend", "resume"),
            "kind": kind in {k.value for k in SuspensionKind},
            "target": bool(target.strip()),
            "reason": bool(reason.strip()),
        },
    )
    if refusal:
        return _emergency(request, visitor, typed, refusal)
    scope = f"emergency:{action}"
    stop = emergency.suspend if action == "suspend" else emergency.resume
    try:
        resource = target_resource(kind, target.strip())
        permit = authorise(veil, caller=visitor.principal, scope=scope, resource=resource)
        done = stop(veil, permit=permit, kind=SuspensionKind(kind), target=target.strip(),
                    reason=reason.strip())  # fmt: skip
    except REFUSED as exc:
        return _emergency(request, visitor, typed, explain(exc))
    return _emergency(request, visitor, None, None, done)


@router.get("/assets/{asset_id}/destroy")
def confirm_destruction(asset_id: str, request: Request, visitor: Viewer, veil: Veil) -> Response:
    """The confirmation step: what destruction ends, and the asset's id typed again."""
    try:
        stored = veil.enclave.store.get(asset_id)
        resource = assets_resource(veil, [stored.card])
        authorise(veil, caller=visitor.principal, scope="asset:destroy", resource=resource)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    return page(request, "destroy.html", visitor, asset=assets.asset_view(stored))


@router.post("/assets/{asset_id}/destroy")
def destroy(
    asset_id: str,
    request: Request,
    visitor: Poster,
    veil: Veil,
    confirm: Annotated[str, Form(max_length=120)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        stored = veil.enclave.store.get(asset_id)
        resource = assets_resource(veil, [stored.card])
        permit = authorise(veil, caller=visitor.principal, scope="asset:destroy", resource=resource)
        if confirm != asset_id or not reason.strip():
            column = "confirm" if confirm != asset_id else "reason"
            refusal = Refusal(422, "BAD_REQUEST", "type the asset's id and a reason to destroy it",
                              [{"rule": "invalid_field", "column": column}])  # fmt: skip
            return page(request, "destroy.html", visitor, 422, asset=assets.asset_view(stored),
                        refusal=refusal)  # fmt: skip
        record = assets.destroy_asset(veil, permit=permit, asset=stored, reason=reason.strip())
    except REFUSED as exc:
        return refused(request, visitor, exc)
    return page(request, "destroyed.html", visitor, record=record)


def _emergency(
    request: Request,
    visitor: Visitor,
    typed: dict | None = None,
    refusal: Refusal | None = None,
    done: dict | None = None,
) -> Response:
    typed = typed or {"action": "suspend", "kind": "principal", "target": "", "reason": ""}
    status = refusal.status if refusal else 200
    return page(request, "emergency.html", visitor, status, typed=typed, refusal=refusal,
                done=done, kinds=[k.value for k in SuspensionKind])  # fmt: skip
