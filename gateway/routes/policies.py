"""Policies: which Rego modules decide now, and reloading them without a restart."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.errors import ApiError
from governance import utc_now
from policies import PolicyInvalid, PolicySet

router = APIRouter(prefix="/v1/policies", tags=["policies"])


def policy_view(engine: str, policy_set: PolicySet) -> dict:
    return {"engine": engine, "modules": list(policy_set.modules), "digest": policy_set.digest}


@router.get("")
def loaded(_: Allowed("policy:read"), veil: Veil) -> dict:
    return policy_view(veil.settings.policy_engine, veil.policy.loaded())


@router.post("/reload")
def reload(permit: Allowed("policy:reload"), veil: Veil) -> dict:
    """Recompile the modules on disk; if they are broken, the previous ones keep deciding."""
    try:
        policy_set = veil.policy.reload()
    except PolicyInvalid as exc:
        raise ApiError(
            422,
            "POLICY_INVALID",
            "the policy modules do not compile or cannot decide; the previous ones still decide",
        ) from exc
    at = utc_now()
    receipt = veil.ledger.append(
        {
            "type": "policy_loaded",
            "engine": veil.settings.policy_engine,
            "modules": list(policy_set.modules),
            "digest": policy_set.digest,
            "by": permit.caller.id,
            "decision_id": permit.decision.decision_id,
            "at": at,
        },
        idempotency_key=f"policy:{policy_set.digest}:{at}",
    )
    return dict(
        policy_view(veil.settings.policy_engine, policy_set),
        receipt={"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash},
    )
