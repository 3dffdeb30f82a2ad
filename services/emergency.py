"""Emergency stops: a supervisor or operator suspends a principal, grant or asset at once, and
resumes it; work running under it is cancelled."""

from __future__ import annotations

import uuid

from governance import SuspensionKind, utc_now
from services.authorisation import Permit
from services.errors import Invalid
from services.runtime import Services


def suspend(
    veil: Services, *, permit: Permit, kind: SuspensionKind, target: str, reason: str
) -> dict:
    """Stop the target from the next request on; returns the entry and how much was cancelled."""
    if kind is SuspensionKind.PRINCIPAL and target == permit.caller.id:
        raise Invalid("a principal cannot suspend itself")
    if kind is SuspensionKind.ASSET:
        veil.enclave.store.get(target)  # refused for an asset that is not registered
    stop = veil.control.suspend(kind, target, reason, permit.caller.id)
    cancelled = veil.running.stop(**{kind.value: target})
    # The count is the overseer's, not the entry's: the developer stopped reads the entry, and
    # whether a job held for review was still running is what it must not learn.
    entry = {"type": "emergency_suspended", **stop.as_dict()}
    return dict(_record(veil, permit, entry), cancelled=cancelled)


def resume(
    veil: Services, *, permit: Permit, kind: SuspensionKind, target: str, reason: str
) -> dict:
    """Lift a suspension; the target works again from the next request."""
    lifted = veil.control.resume(kind, target, permit.caller.id, reason)
    entry = {
        "type": "emergency_resumed",
        "kind": lifted.kind.value,
        "target": lifted.target,
        "reason": reason,
        "by": permit.caller.id,
        "at": utc_now(),
        "suspended_at": lifted.at,
    }
    return _record(veil, permit, entry)


def _record(veil: Services, permit: Permit, entry: dict) -> dict:
    entry = dict(entry, decision_id=permit.decision.decision_id)
    receipt = veil.ledger.append(entry, idempotency_key="emergency:" + uuid.uuid4().hex)
    return dict(entry, receipt={"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash})
