"""Data product descriptions (产品说明): developers file what they built from released outputs,
on their ledger receipts; its organisation, the providers of its sources and overseers read it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from gateway.auth import Caller, Veil
from gateway.authorisation import Allowed
from gateway.schemas import AUTHORISED, WITH_BODY, Receipt, errors, example
from governance.products import ReceiptRef, Source
from services import products
from services.products import (
    FILE_SCOPE,
    MAX_DESCRIPTION,
    MAX_INDEX,
    MAX_NAME,
    MAX_REASON,
    MAX_RECEIPTS,
    MAX_SCOPE,
    MAX_SOURCES,
    MAX_VERSION,
    READ_SCOPE,
    WITHDRAW_SCOPE,
    ProductRequest,
)

router = APIRouter(prefix="/v1/products", tags=["products"])

PRODUCT_ID = r"^p_[0-9a-f]{32}$"
ProductId = Annotated[str, Path(pattern=PRODUCT_ID)]


class SourceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset: Annotated[str, Field(max_length=200)]
    version: Annotated[StrictInt, Field(ge=1, le=MAX_VERSION)]


class ReceiptBody(BaseModel):
    """A receipt as a query or job answered it."""

    model_config = ConfigDict(extra="forbid")

    ledger_index: Annotated[StrictInt, Field(ge=0, le=MAX_INDEX)]
    leaf_hash: Annotated[str, Field(max_length=64)]


class ProductBody(BaseModel):
    """What the product is, the asset versions it was built from and the receipts of the
    released queries and jobs it rests on."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=MAX_NAME)]
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION)]
    scope: Annotated[str, Field(max_length=MAX_SCOPE, description="What the product covers")]
    date: Annotated[str, Field(max_length=10, description="The product's date, YYYY-MM-DD")]
    sources: Annotated[list[SourceBody], Field(max_length=MAX_SOURCES)]
    receipts: Annotated[list[ReceiptBody], Field(max_length=MAX_RECEIPTS)]


class WithdrawBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str | None, Field(max_length=MAX_REASON)] = None


class ProductSource(BaseModel):
    asset: str
    version: int


class Withdrawn(BaseModel):
    at: str
    by: str
    reason: str | None
    receipt: Receipt


class Product(BaseModel):
    """A product description. Its content (`id`, `developer`, `org`, `name`, `description`,
    `scope`, `date`, `sources`, `receipts`, `filed_at`) is fixed at filing; `content_sha256`
    is the SHA-256 of that object's canonical JSON (RFC 8785), which its ledger entries carry."""

    id: str
    developer: str
    org: str
    name: str
    description: str
    scope: str
    date: str
    sources: list[ProductSource]
    receipts: list[Receipt]
    filed_at: str
    status: Literal["filed", "withdrawn"]
    content_sha256: str
    filed: Receipt = Field(description="The product_filed entry")
    withdrawn: Withdrawn | None = Field(description="The product_withdrawn entry, once withdrawn")


class ProductList(BaseModel):
    items: list[Product]


UNKNOWN = example("NOT_FOUND", "no such product")
REFUSED = example(
    "RECEIPT_REFUSED",
    "a receipt is not one of a released query or job of your organisation",
    ("receipt_unknown", "receipts[2]"),
)


def product_resource(product_id: ProductId, caller: Caller, veil: Veil) -> dict:
    """The product as the policy sees it; 404 for one the caller may not read."""
    product = products.read_product(veil, caller=caller, product_id=product_id)
    return products.product_resource(product)


FILED = errors(*AUTHORISED, *WITH_BODY, examples={422: REFUSED})
WITHDRAWN = example("CONFLICT", "a withdrawn product cannot be withdrawn")


@router.post("", status_code=201, responses=FILED)
def file_product(body: ProductBody, permit: Allowed(FILE_SCOPE), veil: Veil) -> Product:
    """File a product description. Every receipt must be a released query or job of the
    caller's organisation, and the sources exactly the assets they read, at versions they used:
    422 INVALID_PRODUCT, RECEIPT_REFUSED or SOURCE_REFUSED otherwise, naming each field."""
    request = ProductRequest(
        name=body.name,
        description=body.description,
        scope=body.scope,
        date=body.date,
        sources=tuple(Source(s.asset, s.version) for s in body.sources),
        receipts=tuple(ReceiptRef(r.ledger_index, r.leaf_hash) for r in body.receipts),
    )
    return Product.model_validate(products.file_product(veil, permit=permit, request=request))


@router.get("", responses=errors(*AUTHORISED))
def list_products(permit: Allowed(READ_SCOPE), veil: Veil) -> ProductList:
    """A developer's organisation's products, a provider's on its assets, or all (overseers)."""
    items = products.visible_products(veil, caller=permit.caller)
    return ProductList.model_validate({"items": items})


@router.get("/{product_id}", responses=errors(*AUTHORISED, 404, 422, examples={404: UNKNOWN}))
def get_product(
    product_id: ProductId, permit: Allowed(READ_SCOPE, product_resource), veil: Veil
) -> Product:
    product = products.read_product(veil, caller=permit.caller, product_id=product_id)
    return Product.model_validate(products.product_view(product))


@router.post(
    "/{product_id}/withdraw",
    responses=errors(
        *AUTHORISED,
        *WITH_BODY,
        404,
        409,
        examples={404: UNKNOWN, 409: WITHDRAWN},
    ),
)
def withdraw_product(
    product_id: ProductId,
    permit: Allowed(WITHDRAW_SCOPE, product_resource),
    veil: Veil,
    body: WithdrawBody | None = None,
) -> Product:
    """Withdraw a product; only the developer who filed it may."""
    reason = body.reason if body is not None else None
    withdrawn = products.withdraw_product(veil, permit=permit, product_id=product_id, reason=reason)
    return Product.model_validate(withdrawn)
