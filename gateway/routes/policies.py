"""Policies: which Rego modules decide now, and reloading them without a restart."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.schemas import AUTHORISED, Receipt, errors, example
from services.policies import policy_view, reload_policies

router = APIRouter(prefix="/v1/policies", tags=["policies"])


class PolicySet(BaseModel):
    """The Rego modules deciding now, by path, and the digest of their sources."""

    engine: str
    modules: list[str]
    digest: str


class Reloaded(PolicySet):
    receipt: Receipt


@router.get("", responses=errors(*AUTHORISED))
def loaded(_: Allowed("policy:read"), veil: Veil) -> PolicySet:
    return PolicySet.model_validate(policy_view(veil, veil.policy.loaded()))


@router.post(
    "/reload",
    responses=errors(
        *AUTHORISED,
        422,
        examples={
            422: example(
                "POLICY_INVALID", "the policy modules do not compile; the previous ones decide"
            )
        },
    ),
)
def reload(permit: Allowed("policy:reload"), veil: Veil) -> Reloaded:
    """Recompile the modules on disk; if they are broken, the previous ones keep deciding."""
    return Reloaded.model_validate(reload_policies(veil, permit=permit))
