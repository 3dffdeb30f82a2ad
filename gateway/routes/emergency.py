"""Emergency stops: supervisors and operators suspend a principal, grant or asset at once."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.schemas import AUTHORISED, WITH_BODY, Receipt, errors, example
from governance import SuspensionKind
from sandbox.cards import ASSET_ID, PRINCIPAL_ID
from services import emergency
from services.authorisation import target_resource

router = APIRouter(prefix="/v1/emergency", tags=["emergency"])


class Target(BaseModel):
    """Exactly one of `principal`, `grant` or `asset`, and why."""

    model_config = ConfigDict(extra="forbid")

    principal: Annotated[str | None, Field(pattern=PRINCIPAL_ID)] = None
    grant: Annotated[str | None, Field(pattern=r"^g_[0-9a-f]{16}$")] = None
    asset: Annotated[str | None, Field(pattern=ASSET_ID.pattern)] = None
    reason: Annotated[str, Field(min_length=1, max_length=500)]

    @model_validator(mode="after")
    def _one_target(self) -> Target:
        if sum(value is not None for value in (self.principal, self.grant, self.asset)) != 1:
            raise ValueError("name exactly one of principal, grant or asset")
        return self

    @property
    def kind(self) -> SuspensionKind:
        if self.principal is not None:
            return SuspensionKind.PRINCIPAL
        return SuspensionKind.GRANT if self.grant is not None else SuspensionKind.ASSET

    @property
    def id(self) -> str:
        return str(self.principal or self.grant or self.asset)


class Stop(BaseModel):
    """The ledger entry of an emergency stop or its lifting, with its receipt."""

    kind: SuspensionKind
    target: str
    reason: str
    by: str
    at: str
    decision_id: str | None
    receipt: Receipt


class Suspended(Stop):
    type: Literal["emergency_suspended"]
    cancelled: int = Field(description="Queries and jobs running under the target, now cancelled")


class Resumed(Stop):
    type: Literal["emergency_resumed"]
    suspended_at: str


RESPONSES = errors(
    *AUTHORISED,
    *WITH_BODY,
    404,
    409,
    examples={
        404: example("NOT_FOUND", "no such asset", ("unknown_asset", None)),
        409: example("CONFLICT", "this grant is already suspended"),
    },
)


def target(body: Target) -> Target:
    # The one declaration of the body, shared by the resource and the handler.
    return body


Named = Annotated[Target, Depends(target)]


def named_target(body: Named) -> dict:
    return target_resource(body.kind.value, body.id)


@router.post("/suspend", responses=RESPONSES)
def suspend(
    body: Named, permit: Allowed("emergency:suspend", named_target), veil: Veil
) -> Suspended:
    """Stop the target from the next request on, and cancel work running under it."""
    stopped = emergency.suspend(
        veil, permit=permit, kind=body.kind, target=body.id, reason=body.reason
    )
    return Suspended.model_validate(stopped)


@router.post("/resume", responses=RESPONSES)
def resume(body: Named, permit: Allowed("emergency:resume", named_target), veil: Veil) -> Resumed:
    """Lift a suspension; the target works again from the next request."""
    lifted = emergency.resume(
        veil, permit=permit, kind=body.kind, target=body.id, reason=body.reason
    )
    return Resumed.model_validate(lifted)
