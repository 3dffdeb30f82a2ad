"""Grants: a developer asks, every provider and a supervisor approve, and any of them can revoke."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.errors import ApiError
from governance import SUPERVISOR_PARTY, Grant, GrantStatus, utc_now
from sandbox.cards import PURPOSE, AssetCard, Role
from services.authorisation import Permit, asset_inputs, grant_input
from services.runtime import Services

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
    violations += _card_violations(cards, body.purpose, valid_until)
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
            "quotas": (body.quotas.model_dump(exclude_none=True) or None) if body.quotas else None,
        },
        parties,
    )
    veil.ledger.append(
        {
            "type": "grant_requested",
            "grant": grant.as_dict(),
            "by": caller.id,
            "decision_id": permit.decision.decision_id,
            "at": grant.created_at,
        },
        idempotency_key=f"grant:{grant.id}:requested",
    )
    return grant.as_dict()


# Roles that read every grant; providers read those they approve, developers their own.
OVERSEERS = ("supervisor", "operator", "admin")


@router.get("")
def list_grants(
    permit: Allowed("grant:read"), veil: Veil, status: GrantStatus | None = None
) -> dict:
    """The grants the caller may see, oldest first, optionally of one status."""
    veil.expire_grants()
    caller = permit.caller
    if caller.has(*OVERSEERS):
        visible = veil.control.grants()
    else:
        visible = [
            grant
            for grant in veil.control.grants()
            if grant.developer == caller.id or caller.id in grant.required_parties
        ]
    return {"items": [g.as_dict() for g in visible if status is None or g.status is status]}


@router.get("/{grant_id}")
def get_grant(grant: Stored, _: Allowed("grant:read", existing_grant), veil: Veil) -> dict:
    """One grant with its history: every request, approval, rejection and stop."""
    veil.expire_grants()
    current = veil.control.grant(grant.id).as_dict()
    if grant.quotas:
        current["quota_use"] = veil.control.quota_use(grant.id, utc_now()[:10])
    return dict(current, history=veil.control.history(grant.id))


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)]


class Revocation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str | None, Field(min_length=1, max_length=500)] = None


@router.post("/{grant_id}/approve")
def approve_grant(
    grant: Stored,
    permit: Allowed("grant:approve", existing_grant),
    veil: Veil,
) -> dict:
    party = _party(permit, grant)
    approved = veil.control.approve(grant.id, party, permit.caller.id)
    _record(veil, permit, "grant_approved", grant, party=party, status=approved.status.value)
    return approved.as_dict()


@router.post("/{grant_id}/reject")
def reject_grant(
    grant: Stored,
    body: Reason,
    permit: Allowed("grant:approve", existing_grant),
    veil: Veil,
) -> dict:
    """A party whose approval is required refuses the grant, saying why; it never activates."""
    party = _party(permit, grant)
    rejected = veil.control.reject(grant.id, party, permit.caller.id, body.reason)
    _record(veil, permit, "grant_rejected", grant, party=party, reason=body.reason)
    return rejected.as_dict()


@router.post("/{grant_id}/revoke")
def revoke_grant(
    grant: Stored,
    permit: Allowed("grant:revoke", existing_grant),
    veil: Veil,
    body: Revocation | None = None,
) -> dict:
    """End the grant now, optionally saying why; queries running under it are cancelled."""
    reason = body.reason if body else None
    revoked = veil.control.set_status(grant.id, GrantStatus.REVOKED, permit.caller.id, reason)
    # Not counted in the entry: whether a held job was still running is not its developer's.
    veil.running.stop(grant=grant.id)
    _record(veil, permit, "grant_revoked", grant, reason=reason)
    return revoked.as_dict()


def _party(permit: Permit, grant: Grant) -> str:
    # The policy admitted the caller as a party; a provider party acts for itself.
    caller = permit.caller
    is_provider_party = caller.has("provider") and caller.id in grant.required_parties
    return caller.id if is_provider_party else SUPERVISOR_PARTY


def _record(veil: Services, permit: Permit, kind: str, grant: Grant, **details: object) -> None:
    """One ledger entry per change of a grant; a repeated change has one key, so one entry."""
    party = details.get("party")
    veil.ledger.append(
        {
            "type": kind,
            "grant": grant.id,
            **details,
            "by": permit.caller.id,
            "decision_id": permit.decision.decision_id,
            "at": utc_now(),
        },
        idempotency_key=f"grant:{grant.id}:{kind.removeprefix('grant_')}"
        + (f":{party}" if party else ""),
    )


def _card_violations(cards: dict[str, AssetCard], purpose: str, valid_until: str | None) -> list:
    """What the assets' cards forbid: a purpose they do not serve, a term past retention."""
    violations = []
    for asset, card in cards.items():
        if card.purposes is not None and purpose not in card.purposes:
            violations.append({"rule": "purpose_not_allowed", "column": asset})
        retained = card.retention_until
        if retained is not None and valid_until is not None and valid_until[:10] > str(retained):
            violations.append({"rule": "term_beyond_retention", "column": asset})
    return violations
