"""Grants: a developer asks, every provider and a supervisor approve, and any of them can revoke."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.auth import Veil
from gateway.authorisation import Allowed, asset_inputs, grant_input
from gateway.control import SUPERVISOR_PARTY, Grant, GrantStatus, utc_now
from gateway.errors import ApiError
from sandbox.cards import AssetCard, Role

router = APIRouter(prefix="/v1/grants", tags=["grants"])

Purpose = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")]


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assets: Annotated[list[str], Field(min_length=1, max_length=20)]
    purpose: Purpose
    scenario: Annotated[str, Field(min_length=1, max_length=2000)]
    methods: Annotated[list[Literal["sql", "job"]], Field(min_length=1)]
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime
    columns: dict[str, list[str]] | None = None


EARLIEST, LATEST = 2000, 2200  # policy engines count nanoseconds since 1970 in 64 bits


def _stamp(moment: datetime) -> str | None:
    if not EARLIEST <= moment.year <= LATEST:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stored_grant(grant_id: str, veil: Veil) -> Grant:
    return veil.control.grant(grant_id)


Stored = Annotated[Grant, Depends(stored_grant)]


def existing_grant(grant: Stored) -> dict:
    return {"grant": grant_input(grant)}


def grant_request(body: GrantRequest) -> GrantRequest:
    # The one declaration of the body, shared by the resource and the handler.
    return body


Requested = Annotated[GrantRequest, Depends(grant_request)]


def requested_cards(body: Requested, veil: Veil) -> dict[str, AssetCard]:
    return {asset: veil.enclave.store.get(asset).card for asset in sorted(set(body.assets))}


Cards = Annotated[dict[str, AssetCard], Depends(requested_cards)]


def requested_assets(cards: Cards, body: Requested, veil: Veil) -> dict:
    return {
        "assets": asset_inputs(veil, list(cards.values())),
        "columns": body.columns or {},
    }


@router.post("", status_code=201)
def request_grant(
    body: Requested,
    cards: Cards,
    permit: Allowed("grant:request", requested_assets),
    veil: Veil,
) -> dict:
    caller = permit.caller
    assets = sorted(cards)
    violations = []
    for asset, names in (body.columns or {}).items():
        if asset not in cards:
            violations.append({"rule": "column_asset_not_requested", "column": asset})
            continue
        for name in names:
            column = cards[asset].column(name)
            if column is None or column.role is Role.IDENTIFIER:
                violations.append({"rule": "column_not_grantable", "column": f"{asset}.{name}"})
    valid_from = _stamp(body.valid_from) if body.valid_from else utc_now()
    valid_until = _stamp(body.valid_until)
    if valid_from is None or valid_until is None:
        violations.append({"rule": "validity_years", "column": f"{EARLIEST}-{LATEST}"})
    elif valid_until <= max(valid_from, utc_now()):
        violations.append({"rule": "validity_window", "column": "valid_until"})
    if violations:
        raise ApiError(422, "BAD_REQUEST", "the grant request is not valid", violations)
    parties = sorted({card.provider for card in cards.values()} | {SUPERVISOR_PARTY})
    grant = veil.control.create_grant(
        {
            "developer": caller.id,
            "assets": assets,
            "columns": body.columns,
            "purpose": body.purpose,
            "scenario": body.scenario,
            "methods": sorted(set(body.methods)),
            "valid_from": valid_from,
            "valid_until": valid_until,
        },
        parties,
    )
    veil.ledger.append(
        {
            "type": "grant_requested",
            "grant": grant.as_dict(),
            "by": caller.id,
            "decision_id": permit.decision.decision_id,
        },
        idempotency_key=f"grant:{grant.id}:requested",
    )
    return grant.as_dict()


@router.get("")
def list_grants(permit: Allowed("grant:read"), veil: Veil) -> dict:
    return {"items": [g.as_dict() for g in veil.control.grants_of(permit.caller.id)]}


@router.get("/{grant_id}")
def get_grant(grant: Stored, _: Allowed("grant:read", existing_grant)) -> dict:
    return grant.as_dict()


@router.post("/{grant_id}/approve")
def approve_grant(
    grant: Stored,
    permit: Allowed("grant:approve", existing_grant),
    veil: Veil,
) -> dict:
    caller = permit.caller
    # The policy admitted the caller as a party; a provider party approves for itself.
    is_provider_party = caller.has("provider") and caller.id in grant.required_parties
    party = caller.id if is_provider_party else SUPERVISOR_PARTY
    approved = veil.control.approve(grant.id, party, caller.id)
    veil.ledger.append(
        {
            "type": "grant_approved",
            "grant": grant.id,
            "party": party,
            "by": caller.id,
            "status": approved.status.value,
            "decision_id": permit.decision.decision_id,
        },
        idempotency_key=f"grant:{grant.id}:approved:{party}",
    )
    return approved.as_dict()


@router.post("/{grant_id}/revoke")
def revoke_grant(
    grant: Stored,
    permit: Allowed("grant:revoke", existing_grant),
    veil: Veil,
) -> dict:
    revoked = veil.control.set_status(grant.id, GrantStatus.REVOKED)
    cancelled = veil.running.stop(grant=grant.id)
    veil.ledger.append(
        {
            "type": "grant_revoked",
            "grant": grant.id,
            "by": permit.caller.id,
            "cancelled": cancelled,
            "at": utc_now(),
            "decision_id": permit.decision.decision_id,
        },
        idempotency_key=f"grant:{grant.id}:revoked",
    )
    return revoked.as_dict()
