"""Principals: the admin onboards people and systems and hands out their API keys once."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.schemas import AUTHORISED, WITH_BODY, errors, example
from governance import Principal
from sandbox.cards import PRINCIPAL_ID
from services import principals
from services.authorisation import principal_resource

router = APIRouter(prefix="/v1/principals", tags=["principals"])

RoleName = Literal["admin", "operator", "provider", "developer", "supervisor"]
UNKNOWN = {404: example("NOT_FOUND", "no such principal")}


class PrincipalView(BaseModel):
    """A principal as the admin sees it; never its key."""

    id: str
    roles: list[RoleName]
    org: str
    status: Literal["active", "suspended", "revoked"]


class PrincipalList(BaseModel):
    items: list[PrincipalView]


class IssuedKey(BaseModel):
    """A new API key, shown in this response only."""

    id: str
    api_key: str


class CreatedPrincipal(IssuedKey):
    roles: list[RoleName]
    org: str


class NewPrincipal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=PRINCIPAL_ID)]
    roles: Annotated[list[RoleName], Field(min_length=1, max_length=5)]
    org: Annotated[str, Field(min_length=1, max_length=200)]


@router.post(
    "",
    status_code=201,
    responses=errors(
        *AUTHORISED,
        *WITH_BODY,
        409,
        examples={409: example("CONFLICT", "a principal with this id already exists")},
    ),
)
def create_principal(
    body: NewPrincipal,
    permit: Allowed("principal:manage"),
    veil: Veil,
) -> CreatedPrincipal:
    """A new principal and its API key, shown this once and stored only as a hash."""
    roles = set(body.roles)
    api_key = principals.create_principal(
        veil, permit=permit, principal_id=body.id, roles=roles, org=body.org
    )
    return CreatedPrincipal(id=body.id, roles=sorted(roles), org=body.org, api_key=api_key)


@router.get("", responses=errors(*AUTHORISED))
def list_principals(_: Allowed("principal:manage"), veil: Veil) -> PrincipalList:
    """Every principal with its roles, organisation and status; never a key."""
    return PrincipalList.model_validate(
        {"items": [principal.as_input() for principal in veil.control.principals()]}
    )


def named_principal(principal_id: str, veil: Veil) -> Principal:
    return principals.named_principal(veil, principal_id=principal_id)


Named = Annotated[Principal, Depends(named_principal)]


def named_resource(principal_id: str, veil: Veil) -> dict:
    """The principal the path names; one that does not exist is decided on its id alone, so
    the policy refuses a caller before it could learn whether the id exists (404 or 403)."""
    found = veil.control.principal(principal_id)
    return principal_resource(found) if found else {"principal": {"id": principal_id}}


@router.get("/{principal_id}", responses=errors(*AUTHORISED, 404, examples=UNKNOWN))
def get_principal(
    _: Allowed("principal:manage", named_resource), principal: Named
) -> PrincipalView:
    return PrincipalView.model_validate(principal.as_input())


@router.post(
    "/{principal_id}/rotate-key",
    responses=errors(
        *AUTHORISED,
        404,
        409,
        examples={**UNKNOWN, 409: example("CONFLICT", "a revoked principal gets no new key")},
    ),
)
def rotate_key(
    permit: Allowed("principal:manage", named_resource), principal: Named, veil: Veil
) -> IssuedKey:
    """A new API key, shown once; the old one stops working on the next request."""
    api_key = principals.rotate_key(veil, permit=permit, principal=principal)
    return IssuedKey(id=principal.id, api_key=api_key)


@router.post(
    "/{principal_id}/revoke",
    responses=errors(
        *AUTHORISED,
        404,
        409,
        422,
        examples={
            **UNKNOWN,
            409: example("CONFLICT", "the principal is already revoked"),
            422: example("BAD_REQUEST", "a principal cannot revoke itself"),
        },
    ),
)
def revoke_principal(
    permit: Allowed("principal:manage", named_resource), principal: Named, veil: Veil
) -> PrincipalView:
    """End a principal for good: its key stops working and its running queries stop."""
    revoked = principals.revoke_principal(veil, permit=permit, principal=principal)
    return PrincipalView.model_validate(revoked.as_input())
