"""Decisions: the policy engine asked for one scope, and what it sees of principals, assets and
grants (identity and classification, never data)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import NoReturn

from governance import Grant, Principal, utc_now
from governance.price_caps import PriceCap
from policies import Decision
from policies.engine import ENGINE_FAILURES
from sandbox.cards import AssetCard
from services.errors import Denied
from services.runtime import Services


@dataclass(frozen=True)
class Permit:
    """An allowed decision for one scope, handed to the operation it allows."""

    caller: Principal
    scope: str
    decision: Decision


def authorise(veil: Services, *, caller: Principal, scope: str, resource: dict) -> Permit:
    """Decide `scope` for `caller` on `resource`; a denial is recorded, then raised."""
    decision = decide(veil, caller, scope, resource)
    if not decision.allow:
        refuse(veil, caller, scope, decision, resource)
    return Permit(caller, scope, decision)


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
    """Record a denial in the ledger (past the caller's rate, in its window's summary), then
    refuse with the policy's reason codes: the same answer either way."""
    entry = {
        "type": "access_denied",
        "scope": scope,
        "principal": caller.id,
        "resource": resource,
        "reasons": list(decision.reasons),
        "decision_id": decision.decision_id,
        "at": utc_now(),
    }
    veil.refused(
        caller.id, "denied", decision.reasons, entry=entry, key="denied:" + uuid.uuid4().hex
    )
    raise Denied(
        f"the policy does not allow {scope}",
        [{"rule": reason} for reason in decision.reasons],
    )


def asset_input(card: AssetCard, status: str = "active", cap: PriceCap | None = None) -> dict:
    """An asset as policies see it: identity and classification, never data. Under a price
    cap, also its card's pricing and the cap (both public), so the policy can refuse a charge
    above the cap."""
    described = {
        "id": card.id,
        "classification": card.classification,
        "provider": card.provider,
        "domain": card.domain,
        "personal_data": card.rights.personal_data,
        "status": status,
    }
    if cap is not None:
        described["pricing"] = card.pricing.model_dump(mode="json")
        described["price_cap"] = {"currency": cap.currency, "max": dict(cap.maximum)}
    return described


def asset_inputs(
    veil: Services, cards: list[AssetCard], suspended: frozenset[str] | None = None
) -> list[dict]:
    """Registered assets as policies see them, each `suspended` while an emergency stop holds
    (the stops are read here unless the caller has just read them), `unregistered` or
    `deregistered` by the registration procedure (`services/registrations.py`), with the
    price cap that applies to each, read afresh: a cap set a moment ago counts at the next
    decision."""
    if suspended is None:
        suspended = veil.control.suspended_assets()
    caps = veil.price_caps.in_force()
    # An asset in the registration procedure serves nothing until it is registered.
    registered = veil.registrations.statuses()
    return [
        asset_input(
            card,
            "suspended" if card.id in suspended else registered.get(card.id, "active"),
            caps.applying(card.id, card.classification),
        )
        for card in cards
    ]


def grant_input(grant: Grant) -> dict:
    """A grant as the grant scopes see it: who asked and who approves."""
    return {
        "id": grant.id,
        "developer": grant.developer,
        "assets": grant.assets,
        "parties": grant.required_parties,
        "status": grant.status.value,
    }


# What each scope's policy sees as `input.resource`: one builder per kind of thing decided on.


def assets_resource(
    veil: Services, cards: list[AssetCard], columns: dict[str, list[str]] | None = None
) -> dict:
    """Registered assets (and, for a grant request, the columns asked for)."""
    resource: dict = {"assets": asset_inputs(veil, cards)}
    if columns is not None:
        resource["columns"] = columns
    return resource


def draft_resource(
    *, asset_id: str, provider: str, classification: str, domain: str, personal_data: bool
) -> dict:
    """An asset being described, before its card is whole (the first step of a form)."""
    draft = {
        "id": asset_id, "classification": classification, "provider": provider,
        "domain": domain, "personal_data": personal_data, "status": "new",
    }  # fmt: skip
    return {"assets": [draft]}


def card_resource(card: AssetCard, status: str = "active") -> dict:
    """An asset described by a card not yet (or no longer) registered as it stands."""
    return {"assets": [asset_input(card, status)]}


def grant_resource(grant: Grant) -> dict:
    return {"grant": grant_input(grant)}


def principal_resource(principal: Principal) -> dict:
    return {"principal": principal.as_input()}


def target_resource(kind: str, target: str) -> dict:
    """What an emergency stop names."""
    return {"target": {"kind": kind, "id": target}}


def cap_resource(kind: str | None, target: str | None) -> dict:
    """What a price cap names: an asset or a classification (none when the request names
    neither, which the service then refuses)."""
    return {"price_cap": {"kind": kind, "target": target}}
