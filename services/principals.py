"""Principals: the admin onboards people and systems, rotates and revokes their API keys."""

from __future__ import annotations

import uuid

from governance import Principal, utc_now
from services.authorisation import Permit
from services.errors import Invalid, Missing
from services.runtime import Services


def named_principal(veil: Services, *, principal_id: str) -> Principal:
    found = veil.control.principal(principal_id)
    if found is None:
        raise Missing("no such principal")
    return found


def create_principal(
    veil: Services, *, permit: Permit, principal_id: str, roles: set[str], org: str
) -> str:
    """A new principal; returns its API key, shown this once and stored only as a hash."""
    api_key = veil.control.create_principal(principal_id, roles, org)
    _record(veil, permit, "principal_created", principal_id, roles=sorted(roles), org=org)
    return api_key


def rotate_key(veil: Services, *, permit: Permit, principal: Principal) -> str:
    """A new API key, returned once; the old one stops working on the next request."""
    api_key = veil.control.rotate_key(principal.id)
    _record(veil, permit, "principal_key_rotated", principal.id)
    return api_key


def revoke_principal(veil: Services, *, permit: Permit, principal: Principal) -> Principal:
    """End a principal for good: its key stops working and its running work stops."""
    if principal.id == permit.caller.id:
        raise Invalid("a principal cannot revoke itself")
    revoked = veil.control.revoke_principal(principal.id)
    veil.running.stop(principal=principal.id)
    _record(veil, permit, "principal_revoked", principal.id)
    return revoked


def _record(veil: Services, permit: Permit, kind: str, principal_id: str, **details) -> None:
    veil.ledger.append(
        {
            "type": kind,
            "principal": principal_id,
            **details,
            "by": permit.caller.id,
            "decision_id": permit.decision.decision_id,
            "at": utc_now(),
        },
        idempotency_key=f"{kind}:{principal_id}:{uuid.uuid4().hex}",
    )
