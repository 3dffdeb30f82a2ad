"""Principals: the admin onboards people and systems and hands out their API keys once."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.errors import ApiError
from governance import Principal, utc_now
from sandbox.cards import PRINCIPAL_ID
from services.authorisation import Permit
from services.runtime import Services

router = APIRouter(prefix="/v1/principals", tags=["principals"])

RoleName = Literal["admin", "operator", "provider", "developer", "supervisor"]


class NewPrincipal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=PRINCIPAL_ID)]
    roles: Annotated[list[RoleName], Field(min_length=1, max_length=5)]
    org: Annotated[str, Field(min_length=1, max_length=200)]


@router.post("", status_code=201)
def create_principal(
    body: NewPrincipal,
    permit: Allowed("principal:manage"),
    veil: Veil,
) -> dict:
    """A new principal and its API key, shown this once and stored only as a hash."""
    roles = set(body.roles)
    api_key = veil.control.create_principal(body.id, roles, body.org)
    _record(veil, permit, "principal_created", body.id, roles=sorted(roles), org=body.org)
    return {"id": body.id, "roles": sorted(roles), "org": body.org, "api_key": api_key}


@router.get("")
def list_principals(_: Allowed("principal:manage"), veil: Veil) -> dict:
    """Every principal with its roles, organisation and status; never a key."""
    return {"items": [principal.as_input() for principal in veil.control.principals()]}


def named_principal(principal_id: str, veil: Veil) -> Principal:
    found = veil.control.principal(principal_id)
    if found is None:
        raise ApiError(404, "NOT_FOUND", "no such principal")
    return found


Named = Annotated[Principal, Depends(named_principal)]


def principal_resource(principal: Named) -> dict:
    return {"principal": principal.as_input()}


@router.get("/{principal_id}")
def get_principal(principal: Named, _: Allowed("principal:manage", principal_resource)) -> dict:
    return principal.as_input()


@router.post("/{principal_id}/rotate-key")
def rotate_key(
    principal: Named, permit: Allowed("principal:manage", principal_resource), veil: Veil
) -> dict:
    """A new API key, shown once; the old one stops working on the next request."""
    api_key = veil.control.rotate_key(principal.id)
    _record(veil, permit, "principal_key_rotated", principal.id)
    return {"id": principal.id, "api_key": api_key}


@router.post("/{principal_id}/revoke")
def revoke_principal(
    principal: Named, permit: Allowed("principal:manage", principal_resource), veil: Veil
) -> dict:
    """End a principal for good: its key stops working and its running queries stop."""
    if principal.id == permit.caller.id:
        raise ApiError(422, "BAD_REQUEST", "a principal cannot revoke itself")
    revoked = veil.control.revoke_principal(principal.id)
    veil.running.stop(principal=principal.id)
    _record(veil, permit, "principal_revoked", principal.id)
    return revoked.as_input()


def _record(veil: Services, permit: Permit, kind: str, principal_id: str, **details) -> None:
    veil.ledger.append(
        {
            "type": kind,
            "principal": principal_id,
            **details,
            "by": permit.caller.id,
            "decision_id": permit.decision.decision_id,
            "at": utc_now(),
        },
        idempotency_key=f"{kind}:{principal_id}:{uuid.uuid4().hex}",
    )
