"""Policies: which Rego modules decide now, and reloading them without a restart."""

from __future__ import annotations

from governance import utc_now
from policies import PolicyInvalid, PolicySet
from services.authorisation import Permit
from services.errors import Invalid
from services.runtime import Services


def policy_view(veil: Services, policy_set: PolicySet) -> dict:
    engine = veil.settings.policy_engine
    return {"engine": engine, "modules": list(policy_set.modules), "digest": policy_set.digest}


def reload_policies(veil: Services, *, permit: Permit) -> dict:
    """Recompile the modules on disk and record it; if they are broken, the previous ones keep
    deciding."""
    try:
        policy_set = veil.policy.reload()
    except PolicyInvalid as exc:
        raise Invalid(
            "the policy modules do not compile or cannot decide; the previous ones still decide",
            code="POLICY_INVALID",
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
        policy_view(veil, policy_set),
        receipt={"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash},
    )
