"""Grants: a developer asks, every provider and a supervisor approve, and any of them can revoke."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.auth import Caller, Holding, Veil
from gateway.control import SUPERVISOR_PARTY, GrantStatus, Principal, utc_now
from gateway.errors import ApiError
from sandbox.cards import Role

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


@router.post("", status_code=201)
def request_grant(
    body: GrantRequest,
    caller: Holding("developer"),
    veil: Veil,
) -> dict:
    store = veil.enclave.store
    assets = sorted(set(body.assets))
    cards = {asset: store.get(asset).card for asset in assets}
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
        {"type": "grant_requested", "grant": grant.as_dict(), "by": caller.id},
        idempotency_key=f"grant:{grant.id}:requested",
    )
    return grant.as_dict()


@router.get("")
def list_grants(caller: Caller, veil: Veil) -> dict:
    return {"items": [g.as_dict() for g in veil.control.grants_of(caller.id)]}


@router.get("/{grant_id}")
def get_grant(grant_id: str, caller: Caller, veil: Veil) -> dict:
    grant = veil.control.grant(grant_id)
    if not _may_see(caller, grant.developer, grant.required_parties):
        raise ApiError(404, "NOT_FOUND", "no such grant")
    return grant.as_dict()


@router.post("/{grant_id}/approve")
def approve_grant(
    grant_id: str,
    caller: Holding("provider", "supervisor"),
    veil: Veil,
) -> dict:
    grant = veil.control.grant(grant_id)
    if caller.has("provider") and caller.id in grant.required_parties:
        party = caller.id
    elif caller.has("supervisor"):
        party = SUPERVISOR_PARTY
    else:
        raise ApiError(403, "FORBIDDEN", "only the providers of its assets or a supervisor approve")
    approved = veil.control.approve(grant_id, party, caller.id)
    veil.ledger.append(
        {
            "type": "grant_approved",
            "grant": grant_id,
            "party": party,
            "by": caller.id,
            "status": approved.status.value,
        },
        idempotency_key=f"grant:{grant_id}:approved:{party}",
    )
    return approved.as_dict()


@router.post("/{grant_id}/revoke")
def revoke_grant(
    grant_id: str,
    caller: Holding("provider", "supervisor", "operator"),
    veil: Veil,
) -> dict:
    grant = veil.control.grant(grant_id)
    if not (caller.has("supervisor", "operator") or caller.id in grant.required_parties):
        raise ApiError(403, "FORBIDDEN", "only a provider of its assets, supervisor or operator")
    revoked = veil.control.set_status(grant_id, GrantStatus.REVOKED)
    veil.ledger.append(
        {"type": "grant_revoked", "grant": grant_id, "by": caller.id},
        idempotency_key=f"grant:{grant_id}:revoked",
    )
    return revoked.as_dict()


def _may_see(caller: Principal, developer: str, parties: list[str]) -> bool:
    return caller.id == developer or caller.id in parties or caller.has("supervisor", "operator")
