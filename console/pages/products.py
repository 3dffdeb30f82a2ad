"""Data product descriptions (产品说明) in the console: a developer files one on receipts picked
from its usage, and its organisation, the providers of its sources and overseers read it;
through the same scopes, services and ledger entries as the API."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from console.refusals import REFUSED, Refusal, explain
from console.render import page, refused
from console.visitors import Poster, Standing, Veil, Viewer, Visitor, in_standing
from governance.products import ReceiptRef, Source
from services import products
from services.authorisation import authorise
from services.products import (
    FILE_SCOPE,
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_REASON,
    MAX_SCOPE,
    READ_SCOPE,
    WITHDRAW_SCOPE,
    ProductRequest,
)

router = APIRouter(prefix="/console/products")

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
# A picked receipt as the form sends it: "<ledger index>:<leaf hash>".
PICKED = re.compile(r"^(\d{1,16}):([0-9a-f]{64})$")
# A picked source: "<asset id>@<version>".
SOURCE = re.compile(r"^([a-z0-9_.]{1,200})@(\d{1,10})$")
WHERE = re.compile(r"^(receipts|sources)\[(\d+)\]$")


@router.get("")
def listing(request: Request, visitor: Viewer, veil: Veil) -> Response:
    try:
        authorise(veil, caller=visitor.principal, scope=READ_SCOPE, resource={})
        shown = products.visible_products(veil, caller=visitor.principal)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    return page(request, "products.html", visitor, products=shown)


@router.get("/new")
def file_form(
    request: Request, visitor: Standing, veil: Veil, period: str | None = None
) -> Response:
    chosen = period if period and MONTH.fullmatch(period) else None
    typed = {"name": "", "description": "", "scope": "", "date": "", "receipts": [],
             "sources": [], "period": chosen or ""}  # fmt: skip
    return _form(request, visitor, veil, typed)


@router.post("/new")
def filed(
    request: Request,
    visitor: Poster,
    veil: Veil,
    name: Annotated[str, Form(max_length=MAX_NAME)] = "",
    description: Annotated[str, Form(max_length=MAX_DESCRIPTION)] = "",
    scope: Annotated[str, Form(max_length=MAX_SCOPE)] = "",
    date: Annotated[str, Form(max_length=10)] = "",
    period: Annotated[str, Form(max_length=7)] = "",
    receipt: Annotated[list[str] | None, Form()] = None,
    source: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """File the product: the receipts ticked, and each asset given a version as a source."""
    picked = [value for value in receipt or [] if value]
    sources = [value for value in source or [] if value]
    typed = {"name": name, "description": description, "scope": scope, "date": date,
             "receipts": picked, "sources": sources,
             "period": period if MONTH.fullmatch(period) else ""}  # fmt: skip
    asked = ProductRequest(
        name=name, description=description, scope=scope, date=date,
        sources=tuple(_source(value) for value in sources),
        receipts=tuple(_receipt(value) for value in picked),
    )  # fmt: skip
    try:
        permit = authorise(veil, caller=visitor.principal, scope=FILE_SCOPE, resource={})
        done = products.file_product(veil, permit=permit, request=asked)
    except REFUSED as exc:
        return _form(request, visitor, veil, typed, explain(exc))
    return RedirectResponse(f"/console/products/{done['id']}", status_code=303)


@router.get("/{product_id}")
def detail(product_id: str, request: Request, visitor: Viewer, veil: Veil) -> Response:
    try:
        product = products.read_product(veil, caller=visitor.principal, product_id=product_id)
        authorise(veil, caller=visitor.principal, scope=READ_SCOPE,
                  resource=products.product_resource(product))  # fmt: skip
    except REFUSED as exc:
        return refused(request, visitor, exc)
    return page(request, "product.html", visitor, product=products.product_view(product))


@router.post("/{product_id}/withdraw")
def withdraw(
    product_id: str,
    request: Request,
    visitor: Poster,
    veil: Veil,
    reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
) -> Response:
    try:
        product = products.read_product(veil, caller=visitor.principal, product_id=product_id)
        permit = authorise(veil, caller=visitor.principal, scope=WITHDRAW_SCOPE,
                           resource=products.product_resource(product))  # fmt: skip
        products.withdraw_product(veil, permit=permit, product_id=product.id,
                                  reason=reason or None)  # fmt: skip
    except REFUSED as exc:
        return refused(request, visitor, exc)
    return RedirectResponse(f"/console/products/{product_id}", status_code=303)


def _receipt(value: str) -> ReceiptRef:
    """A picked receipt; one the form could not have sent is kept unreadable, so the service
    names it."""
    found = PICKED.fullmatch(value)
    return ReceiptRef(int(found[1]), found[2]) if found else ReceiptRef(-1, "")


def _source(value: str) -> Source:
    found = SOURCE.fullmatch(value)
    return Source(found[1], int(found[2])) if found else Source("", 0)


def _form(
    request: Request, visitor: Visitor, veil: Veil, typed: dict, refusal: Refusal | None = None
) -> Response:
    """The filing form: the developer's own released queries and jobs of the month, to pick
    from, and each asset they read with the versions it has had."""
    in_standing(veil, visitor)
    try:
        offered = products.receipts_to_offer(
            veil, caller=visitor.principal, period=typed["period"] or None
        )
    except REFUSED as exc:
        return refused(request, visitor, exc)
    assets = sorted({asset for line in offered for asset in line["assets"]})
    versions = {asset: products.versions_had(veil, asset) for asset in assets}
    chosen = dict(value.rsplit("@", 1) for value in typed["sources"] if "@" in value)
    status = refusal.status if refusal else 200
    return page(request, "product_new.html", visitor, status, typed=typed, offered=offered,
                versions=versions, chosen=chosen, refusal=refusal,
                **_marked(typed, refusal))  # fmt: skip


def _marked(typed: dict, refusal: Refusal | None) -> dict:
    """The fields, receipts and sources a refusal names, to mark them on the form."""
    fields: set[str] = set()
    receipts: set[str] = set()
    sources: set[str] = set()
    for rule in refusal.rules if refusal else []:
        column = str(rule.get("column") or "")
        found = WHERE.fullmatch(column)
        if found is None:
            fields.add(column)
            if rule.get("table"):
                sources.add(str(rule["table"]))
            continue
        place, n = found[1], int(found[2])
        listed = typed[place]
        if n < len(listed):
            (receipts if place == "receipts" else sources).add(
                listed[n] if place == "receipts" else listed[n].rsplit("@", 1)[0]
            )
    return {"wrong": fields, "wrong_receipts": receipts, "wrong_sources": sources}
