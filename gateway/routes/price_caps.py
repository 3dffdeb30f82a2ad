"""Price caps (政府指导价): anyone reads them; supervisors set and remove them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.schemas import AUTHORISED, WITH_BODY, Receipt, errors, example
from services import price_caps
from services.authorisation import cap_resource

router = APIRouter(prefix="/v1/price-caps", tags=["price caps"])

RATES = "per_query_minor, per_1k_rows_scanned_minor or per_cpu_second_minor"


class CapRequest(BaseModel):
    """Exactly one of `asset` or `classification`, the cap's currency, the most each rate it
    bounds may be (a rate left out is not capped), and why."""

    model_config = ConfigDict(extra="forbid")

    asset: str | None = None
    classification: str | None = None
    currency: str
    max: dict[str, StrictInt] = Field(description=f"Minor units per rate: {RATES}")
    reason: str


class Cap(BaseModel):
    """A cap in force: public, as every rule a price must keep."""

    asset: str | None = None
    classification: str | None = None
    currency: str
    max: dict[str, int]
    reason: str
    by: str
    at: str


class CapList(BaseModel):
    items: list[Cap]


class Replaced(BaseModel):
    currency: str
    max: dict[str, int]
    by: str
    at: str


class CapSet(Cap):
    """The ledger entry of a cap set, with its receipt."""

    type: Literal["price_cap_set"]
    replaced: Replaced | None = Field(None, description="The cap its target had before")
    decision_id: str | None
    receipt: Receipt


class CapRemoved(BaseModel):
    """The ledger entry of a cap removed: the cap as it was, who set it, who removed it."""

    type: Literal["price_cap_removed"]
    asset: str | None = None
    classification: str | None = None
    currency: str
    max: dict[str, int]
    set_by: str
    set_at: str
    by: str
    at: str
    decision_id: str | None
    receipt: Receipt


INVALID = example("INVALID_CAP", "the price cap is not valid", ("cap_field", "max.per_row_minor"))


def requested(body: CapRequest) -> CapRequest:
    # The one declaration of the body, shared by the resource and the handler.
    return body


Requested = Annotated[CapRequest, Depends(requested)]
Asset = Annotated[str | None, Query(max_length=200)]
Classification = Annotated[str | None, Query(max_length=2)]


def requested_cap(body: Requested) -> dict:
    kind = "asset" if body.asset is not None else "classification"
    return cap_resource(kind, body.asset or body.classification)


def named_cap(asset: Asset = None, classification: Classification = None) -> dict:
    kind = "asset" if asset is not None else "classification"
    return cap_resource(kind, asset or classification)


@router.get("", responses=errors(*AUTHORISED))
def list_caps(_: Allowed("price_cap:read"), veil: Veil) -> CapList:
    """Every price cap in force: each asset's own, and each classification's."""
    return CapList.model_validate({"items": price_caps.caps_in_force(veil)})


@router.put(
    "",
    responses=errors(
        *AUTHORISED,
        *WITH_BODY,
        404,
        409,
        examples={
            404: example("NOT_FOUND", "no such asset", ("unknown_asset", None)),
            409: example("CONFLICT", "this cap was being set at the same time; send it again"),
            422: INVALID,
        },
    ),  # fmt: skip
)
def set_cap(body: Requested, permit: Allowed("price_cap:set", requested_cap), veil: Veil) -> CapSet:
    """Set the cap of an asset or a classification, replacing the one it had: from the next
    request on, cards priced above it are refused and so are charges above it."""
    cap = price_caps.new_cap(
        asset=body.asset, classification=body.classification, currency=body.currency,
        maximum=body.max, reason=body.reason, by=permit.caller.id,
    )  # fmt: skip
    return CapSet.model_validate(price_caps.set_cap(veil, permit=permit, cap=cap))


@router.delete(
    "",
    responses=errors(
        *AUTHORISED,
        404,
        422,
        examples={404: example("NOT_FOUND", "no price cap is set for this asset"), 422: INVALID},
    ),  # fmt: skip
)
def remove_cap(
    permit: Allowed("price_cap:remove", named_cap),
    veil: Veil,
    asset: Asset = None,
    classification: Classification = None,
) -> CapRemoved:
    """Remove the cap of an asset (`?asset=`) or a classification (`?classification=`)."""
    removed = price_caps.remove_cap(veil, permit=permit, asset=asset, classification=classification)
    return CapRemoved.model_validate(removed)
