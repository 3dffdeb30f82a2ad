"""Emergency stops: supervisors and operators suspend a principal, grant or asset at once."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.errors import ApiError
from governance import SuspensionKind, utc_now
from sandbox.cards import ASSET_ID, PRINCIPAL_ID
from services.authorisation import Permit
from services.runtime import Services

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


def target(body: Target) -> Target:
    # The one declaration of the body, shared by the resource and the handler.
    return body


Named = Annotated[Target, Depends(target)]


def named_target(body: Named) -> dict:
    return {"target": {"kind": body.kind.value, "id": body.id}}


@router.post("/suspend")
def suspend(body: Named, permit: Allowed("emergency:suspend", named_target), veil: Veil) -> dict:
    """Stop the target from the next request on, and cancel work running under it."""
    if body.kind is SuspensionKind.PRINCIPAL and body.id == permit.caller.id:
        raise ApiError(422, "BAD_REQUEST", "a principal cannot suspend itself")
    if body.kind is SuspensionKind.ASSET:
        veil.enclave.store.get(body.id)  # 404 for an asset that is not registered
    stop = veil.control.suspend(body.kind, body.id, body.reason, permit.caller.id)
    cancelled = veil.running.stop(**{body.kind.value: body.id})
    # The count is the overseer's, not the entry's: the developer stopped reads the entry, and
    # whether a job held for review was still running is what it must not learn.
    entry = {"type": "emergency_suspended", **stop.as_dict()}
    return dict(_record(veil, permit, entry), cancelled=cancelled)


@router.post("/resume")
def resume(body: Named, permit: Allowed("emergency:resume", named_target), veil: Veil) -> dict:
    """Lift a suspension; the target works again from the next request."""
    lifted = veil.control.resume(body.kind, body.id, permit.caller.id, body.reason)
    entry = {
        "type": "emergency_resumed",
        "kind": lifted.kind.value,
        "target": lifted.target,
        "reason": body.reason,
        "by": permit.caller.id,
        "at": utc_now(),
        "suspended_at": lifted.at,
    }
    return _record(veil, permit, entry)


def _record(veil: Services, permit: Permit, entry: dict) -> dict:
    entry = dict(entry, decision_id=permit.decision.decision_id)
    receipt = veil.ledger.append(entry, idempotency_key="emergency:" + uuid.uuid4().hex)
    return dict(entry, receipt={"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash})
