"""Principals: the admin onboards people and systems and hands out their API keys once."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Veil
from gateway.authorisation import Allowed
from governance import Principal
from sandbox.cards import PRINCIPAL_ID
from services import principals
from services.authorisation import principal_resource

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
    api_key = principals.create_principal(
        veil, permit=permit, principal_id=body.id, roles=roles, org=body.org
    )
    return {"id": body.id, "roles": sorted(roles), "org": body.org, "api_key": api_key}


@router.get("")
def list_principals(_: Allowed("principal:manage"), veil: Veil) -> dict:
    """Every principal with its roles, organisation and status; never a key."""
    return {"items": [principal.as_input() for principal in veil.control.principals()]}


def named_principal(principal_id: str, veil: Veil) -> Principal:
    return principals.named_principal(veil, principal_id=principal_id)


Named = Annotated[Principal, Depends(named_principal)]


def named_resource(principal: Named) -> dict:
    return principal_resource(principal)


@router.get("/{principal_id}")
def get_principal(principal: Named, _: Allowed("principal:manage", named_resource)) -> dict:
    return principal.as_input()


@router.post("/{principal_id}/rotate-key")
def rotate_key(
    principal: Named, permit: Allowed("principal:manage", named_resource), veil: Veil
) -> dict:
    """A new API key, shown once; the old one stops working on the next request."""
    api_key = principals.rotate_key(veil, permit=permit, principal=principal)
    return {"id": principal.id, "api_key": api_key}


@router.post("/{principal_id}/revoke")
def revoke_principal(
    principal: Named, permit: Allowed("principal:manage", named_resource), veil: Veil
) -> dict:
    """End a principal for good: its key stops working and its running queries stop."""
    return principals.revoke_principal(veil, permit=permit, principal=principal).as_input()
