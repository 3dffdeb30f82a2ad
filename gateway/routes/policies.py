"""Policies: which Rego modules decide now, and reloading them without a restart."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.auth import Veil
from gateway.authorisation import Allowed
from services.policies import policy_view, reload_policies

router = APIRouter(prefix="/v1/policies", tags=["policies"])


@router.get("")
def loaded(_: Allowed("policy:read"), veil: Veil) -> dict:
    return policy_view(veil, veil.policy.loaded())


@router.post("/reload")
def reload(permit: Allowed("policy:reload"), veil: Veil) -> dict:
    """Recompile the modules on disk; if they are broken, the previous ones keep deciding."""
    return reload_policies(veil, permit=permit)
