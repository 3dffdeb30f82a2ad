"""Principals: the admin onboards people and systems and hands out their API keys once."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Veil
from gateway.authorisation import Allowed
from sandbox.cards import PRINCIPAL_ID

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
    roles = set(body.roles)
    api_key = veil.control.create_principal(body.id, roles, body.org)
    veil.ledger.append(
        {
            "type": "principal_created",
            "principal": body.id,
            "roles": sorted(roles),
            "by": permit.caller.id,
            "decision_id": permit.decision.decision_id,
        },
        idempotency_key=f"principal:{body.id}",
    )
    return {"id": body.id, "roles": sorted(roles), "org": body.org, "api_key": api_key}
