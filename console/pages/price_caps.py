"""Price caps (政府指导价): everyone reads the caps in force; supervisors set and remove them,
through the same scopes, services and ledger entries as the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from console.refusals import REFUSED, Refusal, explain, invalid_fields
from console.render import page, refused
from console.visitors import Poster, Veil, Viewer, Visitor
from governance.price_caps import CAPPED_RATES, CapKind
from services import price_caps
from services.authorisation import authorise, cap_resource

router = APIRouter(prefix="/console/price-caps")

KINDS = [kind.value for kind in CapKind]
Rate = Annotated[str, Form(max_length=16)]


@router.get("")
def caps(request: Request, visitor: Viewer, veil: Veil) -> Response:
    return _caps(request, visitor, veil)


@router.post("")
def set_cap(
    request: Request,
    visitor: Poster,
    veil: Veil,
    kind: Annotated[str, Form(max_length=16)] = "",
    target: Annotated[str, Form(max_length=200)] = "",
    currency: Annotated[str, Form(max_length=8)] = "",
    per_query_minor: Rate = "",
    per_1k_rows_scanned_minor: Rate = "",
    per_cpu_second_minor: Rate = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Set the cap of an asset or a classification; a rate left empty is not capped."""
    rates = dict(zip(CAPPED_RATES, (per_query_minor, per_1k_rows_scanned_minor,
                                    per_cpu_second_minor), strict=True))  # fmt: skip
    typed = {"kind": kind, "target": target, "currency": currency, "reason": reason, **rates}
    checks = {"kind": kind in KINDS, "target": bool(target.strip())}
    checks |= {rate: not text.strip() or text.strip().isdigit() for rate, text in rates.items()}
    refusal = invalid_fields("the price cap is not valid", checks)
    if refusal:
        return _caps(request, visitor, veil, typed, refusal)
    maximum = {rate: int(text) for rate, text in rates.items() if text.strip()}
    named = {"asset": None, "classification": None, kind: target.strip()}
    try:
        permit = authorise(veil, caller=visitor.principal, scope="price_cap:set",
                           resource=cap_resource(kind, target.strip()))  # fmt: skip
        cap = price_caps.new_cap(
            asset=named["asset"], classification=named["classification"],
            currency=currency.strip(), maximum=maximum, reason=reason, by=visitor.principal.id,
        )  # fmt: skip
        done = price_caps.set_cap(veil, permit=permit, cap=cap)
    except REFUSED as exc:
        return _caps(request, visitor, veil, typed, explain(exc))
    return _caps(request, visitor, veil, done=done)


@router.post("/remove")
def remove_cap(
    request: Request,
    visitor: Poster,
    veil: Veil,
    kind: Annotated[str, Form(max_length=16)] = "",
    target: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Lift the cap of one asset or classification."""
    named = {"asset": None, "classification": None}
    if kind in named:
        named[kind] = target
    try:
        permit = authorise(veil, caller=visitor.principal, scope="price_cap:remove",
                           resource=cap_resource(kind, target))  # fmt: skip
        done = price_caps.remove_cap(veil, permit=permit, **named)
    except REFUSED as exc:
        return _caps(request, visitor, veil, refusal=explain(exc))
    return _caps(request, visitor, veil, done=done)


def _caps(
    request: Request,
    visitor: Visitor,
    veil: Veil,
    typed: dict | None = None,
    refusal: Refusal | None = None,
    done: dict | None = None,
) -> Response:
    try:
        authorise(veil, caller=visitor.principal, scope="price_cap:read", resource={})
        shown = price_caps.caps_in_force(veil)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    typed = typed or {"kind": "classification", "target": "", "currency": "CNY", "reason": "",
                      **dict.fromkeys(CAPPED_RATES, "")}  # fmt: skip
    status = refusal.status if refusal else 200
    return page(request, "price_caps.html", visitor, status, caps=shown, typed=typed,
                refusal=refusal, done=done, kinds=KINDS, rates=CAPPED_RATES)  # fmt: skip
