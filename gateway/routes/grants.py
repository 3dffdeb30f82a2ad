"""Grants: a developer asks, every provider and a supervisor approve, and any of them can revoke."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.schemas import AUTHORISED, WITH_BODY, errors, example
from governance import Grant, GrantStatus
from sandbox.cards import PURPOSE, AssetCard
from services import grants
from services.authorisation import assets_resource, grant_resource

router = APIRouter(prefix="/v1/grants", tags=["grants"])

Purpose = Annotated[str, Field(pattern=PURPOSE)]


class Quotas(BaseModel):
    """Limits on a grant's use: queries per UTC day, and rows scanned over its whole term."""

    model_config = ConfigDict(extra="forbid")

    queries_per_day: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    rows_scanned: Annotated[int | None, Field(ge=1, le=10**15)] = None


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assets: Annotated[list[str], Field(min_length=1, max_length=20)]
    purpose: Purpose
    scenario: Annotated[str, Field(min_length=1, max_length=2000)]
    methods: Annotated[list[Literal["sql", "job"]], Field(min_length=1)]
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime
    columns: dict[str, list[str]] | None = None
    quotas: Quotas | None = None


class GrantView(BaseModel):
    """A grant as it stands: what it allows, for how long, and who has approved it."""

    id: str
    developer: str
    assets: list[str]
    columns: dict[str, list[str]] | None
    purpose: str
    scenario: str
    methods: list[Literal["sql", "job"]]
    valid_from: str
    valid_until: str
    status: GrantStatus
    quotas: Quotas | None = Field(description="Only the quotas the request set")
    created_at: str
    required_approvals: list[str]
    approvals: list[str]


class GrantList(BaseModel):
    items: list[GrantView]


class QuotaUse(BaseModel):
    queries_today: int
    rows_scanned: int


class GrantEvent(BaseModel):
    event: str
    party: str | None
    by: str
    reason: str | None
    at: str


class GrantDetail(GrantView):
    quota_use: QuotaUse | None = Field(None, description="Present when the grant has quotas")
    history: list[GrantEvent]


# Every grant route leaves unset fields out (response_model_exclude_unset): quotas list only
# those the request set, and quota_use comes with quotas.
UNKNOWN = {404: example("NOT_FOUND", "no such grant")}
NOT_PENDING = example("CONFLICT", "the grant is active, not pending")


def stored_grant(grant_id: str, veil: Veil) -> Grant:
    return veil.control.grant(grant_id)


Stored = Annotated[Grant, Depends(stored_grant)]


def existing_grant(grant: Stored) -> dict:
    return grant_resource(grant)


def grant_request(body: GrantRequest) -> GrantRequest:
    # The one declaration of the body, shared by the resource and the handler.
    return body


Requested = Annotated[GrantRequest, Depends(grant_request)]


def requested_cards(body: Requested, veil: Veil) -> dict[str, AssetCard]:
    return {asset: veil.enclave.store.get(asset).card for asset in sorted(set(body.assets))}


Cards = Annotated[dict[str, AssetCard], Depends(requested_cards)]


def requested_assets(cards: Cards, body: Requested, veil: Veil) -> dict:
    return assets_resource(veil, list(cards.values()), body.columns or {})


@router.post(
    "",
    status_code=201,
    responses=errors(
        *AUTHORISED,
        *WITH_BODY,
        404,
        examples={
            404: example("NOT_FOUND", "no such asset", ("unknown_asset", None)),
            422: example(
                "BAD_REQUEST",
                "the grant request is not valid",
                ("purpose_not_allowed", "hospital.visits"),
            ),
        },
    ),
    response_model_exclude_unset=True,
)
def request_grant(
    body: Requested,
    cards: Cards,
    permit: Allowed("grant:request", requested_assets),
    veil: Veil,
) -> GrantView:
    grant = grants.request_grant(
        veil,
        permit=permit,
        cards=cards,
        purpose=body.purpose,
        scenario=body.scenario,
        methods=list(body.methods),
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        columns=body.columns,
        quotas=body.quotas.model_dump(exclude_none=True) if body.quotas else None,
    )
    return GrantView.model_validate(grant.as_dict())


@router.get("", responses=errors(*AUTHORISED, 422), response_model_exclude_unset=True)
def list_grants(
    permit: Allowed("grant:read"), veil: Veil, status: GrantStatus | None = None
) -> GrantList:
    """The grants the caller may see, oldest first, optionally of one status."""
    visible = grants.visible_grants(veil, caller=permit.caller, status=status)
    return GrantList.model_validate({"items": [grant.as_dict() for grant in visible]})


@router.get(
    "/{grant_id}",
    responses=errors(*AUTHORISED, 404, examples=UNKNOWN),
    response_model_exclude_unset=True,
)
def get_grant(grant: Stored, _: Allowed("grant:read", existing_grant), veil: Veil) -> GrantDetail:
    """One grant with its history: every request, approval, rejection and stop."""
    return GrantDetail.model_validate(grants.grant_with_history(veil, grant_id=grant.id))


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)]


class Revocation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str | None, Field(min_length=1, max_length=500)] = None


@router.post(
    "/{grant_id}/approve",
    responses=errors(*AUTHORISED, 404, 409, examples={**UNKNOWN, 409: NOT_PENDING}),
    response_model_exclude_unset=True,
)
def approve_grant(
    grant: Stored,
    permit: Allowed("grant:approve", existing_grant),
    veil: Veil,
) -> GrantView:
    return GrantView.model_validate(
        grants.approve_grant(veil, permit=permit, grant=grant).as_dict()
    )


@router.post(
    "/{grant_id}/reject",
    responses=errors(*AUTHORISED, *WITH_BODY, 404, 409, examples={**UNKNOWN, 409: NOT_PENDING}),
    response_model_exclude_unset=True,
)
def reject_grant(
    grant: Stored,
    body: Reason,
    permit: Allowed("grant:approve", existing_grant),
    veil: Veil,
) -> GrantView:
    """A party whose approval is required refuses the grant, saying why; it never activates."""
    rejected = grants.reject_grant(veil, permit=permit, grant=grant, reason=body.reason)
    return GrantView.model_validate(rejected.as_dict())


@router.post(
    "/{grant_id}/revoke",
    responses=errors(
        *AUTHORISED,
        *WITH_BODY,
        404,
        409,
        examples={**UNKNOWN, 409: example("CONFLICT", "a revoked grant cannot become revoked")},
    ),
    response_model_exclude_unset=True,
)
def revoke_grant(
    grant: Stored,
    permit: Allowed("grant:revoke", existing_grant),
    veil: Veil,
    body: Revocation | None = None,
) -> GrantView:
    """End the grant now, optionally saying why; queries running under it are cancelled."""
    reason = body.reason if body else None
    revoked = grants.revoke_grant(veil, permit=permit, grant=grant, reason=reason)
    return GrantView.model_validate(revoked.as_dict())
