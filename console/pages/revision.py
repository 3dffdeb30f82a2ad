"""A card's revision by its provider: what the card says (title, description, classification,
purposes, personal data, retention), never its columns or data; errors beside their fields."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from console.pages.registration import CLASSIFICATIONS
from console.refusals import REFUSED, Refusal, explain
from console.render import page, refused
from console.visitors import Poster, Veil, Viewer, Visitor
from sandbox.cards import AssetCard, parse_card
from services import assets
from services.authorisation import authorise, card_resource

router = APIRouter(prefix="/console/assets")


@router.get("/{asset_id}/revise")
def revision_form(asset_id: str, request: Request, visitor: Viewer, veil: Veil) -> Response:
    try:
        card = veil.enclave.store.get(asset_id).card
        authorise(veil, caller=visitor.principal, scope="asset:register",
                  resource=card_resource(card))  # fmt: skip
    except REFUSED as exc:
        return refused(request, visitor, exc)
    return _form(request, visitor, card, _typed(card))


@router.post("/{asset_id}/revise")
def revise(
    asset_id: str,
    request: Request,
    visitor: Poster,
    veil: Veil,
    title: Annotated[str, Form(max_length=200)] = "",
    description: Annotated[str, Form(max_length=2000)] = "",
    classification: Annotated[str, Form(max_length=2)] = "",
    purposes: Annotated[str, Form(max_length=1000)] = "",
    personal_data: Annotated[str, Form(max_length=3)] = "",
    retention_until: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    typed = {"title": title, "description": description, "classification": classification,
             "purposes": purposes, "personal_data": personal_data,
             "retention_until": retention_until}  # fmt: skip
    try:
        current = veil.enclave.store.get(asset_id).card
        authorise(veil, caller=visitor.principal, scope="asset:register",
                  resource=card_resource(current))  # fmt: skip
    except REFUSED as exc:
        return refused(request, visitor, exc)
    revised = current.model_dump(mode="json")
    listed = [purpose.strip() for purpose in purposes.split(",") if purpose.strip()]
    revised.update(title=title, description=description, classification=classification,
                   purposes=listed or None, retention_until=retention_until or None)  # fmt: skip
    revised["rights"] = dict(revised["rights"])
    revised["rights"].pop("personal_data", None)
    if personal_data in ("yes", "no"):
        revised["rights"]["personal_data"] = personal_data == "yes"
    try:
        card = parse_card(revised, new=True)
        permit = authorise(veil, caller=visitor.principal, scope="asset:register",
                           resource=card_resource(card))  # fmt: skip
        assets.update_card(veil, permit=permit, card=card)
    except REFUSED as exc:
        return _form(request, visitor, current, typed, explain(exc))
    return RedirectResponse(f"/console/assets/{asset_id}", status_code=303)


def _typed(card: AssetCard) -> dict:
    personal = card.rights.personal_data
    return {
        "title": card.title, "description": card.description,
        "classification": card.classification, "purposes": ", ".join(card.purposes or []),
        "personal_data": "yes" if personal else "no" if personal is False else "",
        "retention_until": str(card.retention_until or ""),
    }  # fmt: skip


def _form(
    request: Request,
    visitor: Visitor,
    card: AssetCard,
    typed: dict,
    refusal: Refusal | None = None,
) -> Response:
    wrong = {_field(str(rule.get("column") or "")) for rule in (refusal.rules if refusal else [])}
    status = refusal.status if refusal else 200
    return page(request, "revise.html", visitor, status, card=card, typed=typed, wrong=wrong,
                classifications=CLASSIFICATIONS, refusal=refusal)  # fmt: skip


def _field(location: str) -> str:
    """The form field a card violation names: `purposes.0` is purposes."""
    first = location.split(".")[0]
    return "personal_data" if first == "rights" else first
