"""Authorisation: each route names its scope, and the policy engine allows it before the handler."""

# No `from __future__ import annotations`: FastAPI reads the closure's Depends(resource) from
# its annotations, which must be objects, not strings naming a variable of the closure.
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

from fastapi import Depends

from gateway.auth import Caller, Veil
from gateway.control import Grant, Principal, utc_now
from gateway.errors import ApiError
from gateway.services import Services
from policies import Decision
from policies.engine import ENGINE_FAILURES
from sandbox.cards import AssetCard

# The dependency that decides each scope; tests walk the routes through it.
SCOPE_OF: dict[Callable[..., Any], str] = {}


@dataclass(frozen=True)
class Permit:
    """An allowed decision for one scope, handed to the route's handler."""

    caller: Principal
    scope: str
    decision: Decision


def scoped(scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Marks a dependency as the one that decides `scope` for its routes."""

    def mark(dependency: Callable[..., Any]) -> Callable[..., Any]:
        SCOPE_OF[dependency] = scope
        return dependency

    return mark


def no_resource() -> dict:
    return {}


def Allowed(scope: str, resource: Callable[..., dict] = no_resource) -> Any:  # noqa: N802 - a type
    """`permit: Allowed("grant:approve", grant_resource)` admits only what the policy allows.

    `resource` is a dependency giving the policy's `input.resource` for this request.
    """

    @scoped(scope)
    def permit(caller: Caller, veil: Veil, found: Annotated[dict, Depends(resource)]) -> Permit:
        decision = decide(veil, caller, scope, found)
        if not decision.allow:
            refuse(veil, caller, scope, decision, found)
        return Permit(caller, scope, decision)

    return Annotated[Permit, Depends(permit)]


def decide(
    veil: Services,
    caller: Principal,
    scope: str,
    resource: dict,
    request: dict | None = None,
    grants: list[dict] | None = None,
) -> Decision:
    """One decision from the configured engine, counted by scope and result."""
    with veil.metrics.stage("policy"):
        decision = veil.policy.decide(
            {
                "scope": scope,
                "principal": caller.as_input(),
                "resource": resource,
                "request": request or {},
                "grants": grants or [],
                "now": utc_now(),
            }
        )
    result = "allow" if decision.allow else "deny"
    if ENGINE_FAILURES.intersection(decision.reasons):
        result = "error"
    veil.metrics.decisions.labels(scope, result).inc()
    return decision


def refuse(
    veil: Services, caller: Principal, scope: str, decision: Decision, resource: dict
) -> NoReturn:
    """Record a denial in the ledger, then answer 403 with the policy's reason codes."""
    with veil.metrics.stage("ledger"):
        veil.ledger.append(
            {
                "type": "access_denied",
                "scope": scope,
                "principal": caller.id,
                "resource": resource,
                "reasons": list(decision.reasons),
                "decision_id": decision.decision_id,
                "at": utc_now(),
            },
            idempotency_key="denied:" + uuid.uuid4().hex,
        )
    veil.refused(caller.id, "denied", decision.reasons)
    raise ApiError(
        403,
        "POLICY_DENIED",
        f"the policy does not allow {scope}",
        [{"rule": reason} for reason in decision.reasons],
    )


def asset_input(card: AssetCard, status: str = "active") -> dict:
    """An asset as policies see it: identity and classification, never data."""
    return {
        "id": card.id,
        "classification": card.classification,
        "provider": card.provider,
        "domain": card.domain,
        "personal_data": card.rights.personal_data,
        "status": status,
    }


def asset_inputs(veil: Services, cards: list[AssetCard]) -> list[dict]:
    """Registered assets as policies see them, each `suspended` while an emergency stop holds."""
    suspended = veil.control.suspended_assets()
    return [asset_input(card, "suspended" if card.id in suspended else "active") for card in cards]


def grant_input(grant: Grant) -> dict:
    """A grant as the grant scopes see it: who asked and who approves."""
    return {
        "id": grant.id,
        "developer": grant.developer,
        "assets": grant.assets,
        "parties": grant.required_parties,
        "status": grant.status.value,
    }
