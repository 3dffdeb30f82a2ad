"""Principals: the admin onboards people and systems and hands out their API keys once."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Holding, Veil

router = APIRouter(prefix="/v1/principals", tags=["principals"])

RoleName = Literal["admin", "operator", "provider", "developer", "supervisor"]


class NewPrincipal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{1,63}$")]
    roles: Annotated[list[RoleName], Field(min_length=1, max_length=5)]
    org: Annotated[str, Field(min_length=1, max_length=200)]


@router.post("", status_code=201)
def create_principal(
    body: NewPrincipal,
    caller: Holding("admin"),
    veil: Veil,
) -> dict:
    roles = set(body.roles)
    api_key = veil.control.create_principal(body.id, roles, body.org)
    veil.ledger.append(
        {
            "type": "principal_created",
            "principal": body.id,
            "roles": sorted(roles),
            "by": caller.id,
        },
        idempotency_key=f"principal:{body.id}",
    )
    return {"id": body.id, "roles": sorted(roles), "org": body.org, "api_key": api_key}
