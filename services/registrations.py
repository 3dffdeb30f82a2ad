"""Registering an asset as the policy documents define it: opened in the memo book, applied for
with its documents, reviewed twice, publicised for objections, then registered with a code and
a signed certificate. Each step is a policy decision and a ledger entry; an asset that entered
the procedure serves no grant or query until it is registered."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from governance import LIVE, GrantStatus, Principal
from governance.errors import NotFound
from governance.registrations import (
    Attachment,
    Kind,
    Objection,
    Registration,
    State,
    Step,
    StepRefused,
    advance,
)
from ledger import Receipt, canonical_json
from sandbox.store import StoredAsset
from services.authorisation import Permit
from services.errors import Conflict, Invalid, Missing
from services.runtime import Services

T = TypeVar("T")
CERTIFICATE = "certificate"
ATTACHMENT_KINDS = ("legal_opinion", "valuation_report", "other")
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
MAX_ATTACHMENTS = 16
# Who may read a registration's documents and its whole record besides its holder.
OVERSEERS = ("operator", "supervisor")
# States anyone may see: a notice is public, and so is the register.
PUBLIC = frozenset({State.NOTICE, State.REGISTERED})


def _instant() -> str:
    """Now, to the microsecond: steps of one registration in the same second stay ordered,
    and each step's compare-and-set sees the one before it."""
    return datetime.now(UTC).isoformat()


def registration_resource(registration: Registration | None, *, holder: str) -> dict:
    """What the policy sees of a registration: its holder, kind and state."""
    described = {"holder": holder}
    if registration is not None:
        described |= {"kind": registration.kind.value, "state": registration.state.value}
    return {"registration": described}


def card_sha256(stored: StoredAsset) -> str:
    card = canonical_json(stored.card.model_dump(mode="json"))
    return hashlib.sha256(card.encode()).hexdigest()


def open_registration(
    veil: Services, *, permit: Permit, asset: StoredAsset, kind: Kind
) -> Registration:
    """A registration of `kind` for the asset as it stands, in the memo book (draft)."""
    registered = is_registered(veil, asset.card.id)
    if kind is Kind.FIRST and registered:
        raise Conflict("the asset is registered; a change registration records a change")
    if kind is not Kind.FIRST and not registered:
        raise Conflict("only a registered asset has change, cancellation or revocation")
    now = _instant()
    registration = Registration(
        id=f"reg_{uuid.uuid4().hex[:20]}",
        asset=asset.card.id,
        kind=kind,
        state=State.DRAFT,
        holder=asset.card.provider,
        applicant=permit.caller.id,
        version=asset.version,
        card_sha256=card_sha256(asset),
        created_at=now,
        history=({"step": "open", "by": permit.caller.id, "at": now, "state": "draft"},),
    )

    def record(opened: Registration) -> None:
        _append(veil, permit, opened, "open", {})

    _refused_as_conflict(lambda: veil.registrations.create(registration, record))
    return veil.registrations.get(registration.id)


def file_attachment(
    veil: Services, *, permit: Permit, registration: Registration, kind: str, name: str,
    content: bytes,
) -> Registration:  # fmt: skip
    """Keep a document with a registration still in the memo book, encrypted; its hash goes
    into the ledger entry."""
    if kind not in ATTACHMENT_KINDS:
        raise Invalid("unknown document kind", [{"rule": "attachment_kind", "column": "kind"}])
    if not 0 < len(content) <= MAX_ATTACHMENT_BYTES:
        raise Invalid(
            "a document holds 1 byte to 20 MiB", [{"rule": "attachment_size", "column": "file"}]
        )
    if registration.state is not State.DRAFT:
        raise Conflict("documents are filed before the application")
    if len(registration.attachments) >= MAX_ATTACHMENTS:
        raise Invalid("too many documents", [{"rule": "attachment_count", "column": "file"}])
    digest = veil.attachments.put(registration.id, content)
    filed = Attachment(kind=kind, name=name[:200], sha256=digest, size=len(content))
    kept = [a for a in registration.attachments if a.sha256 != digest]
    after = replace(registration, attachments=(*kept, filed))

    def record(changed: Registration) -> tuple[Registration, dict]:
        receipt = _append(veil, permit, changed, "attach", {"attachment": filed.__dict__})
        return changed, {"step": "attach", "by": permit.caller.id, "at": _instant(),
                         "state": "draft", "ledger_index": receipt.index,
                         "attachment": filed.sha256}  # fmt: skip

    return _refused_as_conflict(lambda: veil.registrations.update(registration, after, record))


def take_step(
    veil: Services,
    *,
    permit: Permit,
    registration: Registration,
    step: Step,
    note: str = "",
    upheld: bool | None = None,
    notice_period_s: float | None = None,
) -> Registration:
    """Take `step`, if the transition function allows it from the registration's state now.
    A notice runs for the settings' period unless `notice_period_s` says otherwise (the
    demo's own assets are published without one)."""
    now = datetime.now(UTC)
    state = _refused_as_conflict(lambda: advance(registration, step, now, upheld=upheld))
    after = replace(registration, state=state)
    details: dict = {"note": note[:2000]} if note else {}
    if step is Step.PUBLISH:
        period = veil.settings.notice_period_s if notice_period_s is None else notice_period_s
        until = now + timedelta(seconds=period)
        after = replace(after, notice_until=until.isoformat())
        details["notice_until"] = after.notice_until
    if step is Step.OBJECT:
        objection = Objection(f"obj_{uuid.uuid4().hex[:12]}", permit.caller.id, note[:2000],
                              now.isoformat())  # fmt: skip
        after = replace(after, objections=(*registration.objections, objection))
        details["objection"] = objection.id
    if step is Step.RESOLVE:
        first, *rest = registration.open_objections
        outcome = "upheld" if upheld else "dismissed"
        resolved = [replace(o, outcome=outcome) if o.id == first.id else o
                    for o in registration.objections]  # fmt: skip
        after = replace(after, objections=tuple(resolved))
        details |= {"objection": first.id, "outcome": outcome}
    if step is Step.APPLY:
        details["attachments"] = [a.__dict__ for a in registration.attachments]

    def record(changed: Registration) -> tuple[Registration, dict]:
        if step is Step.REGISTER:
            changed, receipt = _with_certificate(veil, permit, changed, details)
        else:
            receipt = _append(veil, permit, changed, step.value, details)
        return changed, {"step": step.value, "by": permit.caller.id, "at": now.isoformat(),
                         "state": changed.state.value, "ledger_index": receipt.index}  # fmt: skip

    updated = _refused_as_conflict(lambda: veil.registrations.update(registration, after, record))
    if step is Step.REGISTER and registration.kind in (Kind.CANCELLATION, Kind.REVOCATION):
        _end_grants(veil, permit, registration.asset)
    return updated


def _with_certificate(
    veil: Services, permit: Permit, registration: Registration, details: dict
) -> tuple[Registration, Receipt]:
    """The registration with its code, its entry in the ledger and its certificate, which
    names that entry: signed by the ledger's key, verifiable offline."""
    year = datetime.now(UTC).year
    code = f"VEIL-{year}-{hashlib.sha256(registration.id.encode()).hexdigest()[:12].upper()}"
    registered = replace(registration, code=code)
    receipt = _append(veil, permit, registered, "register", dict(details, code=code))
    stored = veil.enclave.store.get(registration.asset)
    body = {
        "registration_code": code,
        "registration": registration.id,
        "kind": registration.kind.value,
        "asset": registration.asset,
        "title": stored.card.title,
        "holder": registration.holder,
        "rights": stored.card.rights.model_dump(mode="json"),
        "classification": stored.card.classification,
        "version": registration.version,
        "card_sha256": registration.card_sha256,
        "registered_at": _instant(),
        "ledger": {"index": receipt.index, "leaf_hash": receipt.leaf_hash},
        "issuer": veil.ledger.public_key()[0],
    }
    certificate = veil.ledger.sign_document(CERTIFICATE, body)
    return replace(registered, certificate=certificate), receipt


def _end_grants(veil: Services, permit: Permit, asset: str) -> None:
    """A cancelled or revoked registration ends every live grant on the asset."""
    for grant in veil.control.grants():
        if asset in grant.assets and grant.status in LIVE:
            veil.control.set_status(
                grant.id, GrantStatus.REVOKED, permit.caller.id, "registration ended"
            )


def _append(
    veil: Services, permit: Permit, registration: Registration, step: str, details: dict
) -> Receipt:
    entry = {
        "type": f"registration_{step}",
        "registration": registration.id,
        "asset": registration.asset,
        "kind": registration.kind.value,
        "state": registration.state.value,
        "holder": registration.holder,
        "version": registration.version,
        "card_sha256": registration.card_sha256,
        "by": permit.caller.id,
        "decision_id": permit.decision.decision_id,
        "at": _instant(),
        **details,
    }
    return veil.ledger.append(entry, idempotency_key=_entry_key(registration, step, entry))


def _entry_key(registration: Registration, step: str, entry: dict) -> str:
    digest = hashlib.sha256(canonical_json(entry).encode()).hexdigest()[:16]
    return f"registration:{registration.id}:{step}:{digest}"


def _refused_as_conflict(action: Callable[[], T]) -> T:
    try:
        return action()
    except StepRefused as refused:
        raise Conflict(str(refused), [{"rule": refused.rule}]) from refused


def is_registered(veil: Services, asset: str) -> bool:
    return veil.registrations.statuses().get(asset) == "active"


def visible(caller: Principal, registration: Registration) -> bool:
    """Its holder and overseers see a registration whole; anyone else only a notice or an
    entry of the register."""
    return (
        caller.has(*OVERSEERS) or caller.id == registration.holder or registration.state in PUBLIC
    )


def registration_view(registration: Registration, caller: Principal) -> dict:
    whole = caller.has(*OVERSEERS) or caller.id == registration.holder
    view = {
        "id": registration.id,
        "asset": registration.asset,
        "kind": registration.kind.value,
        "state": registration.state.value,
        "holder": registration.holder,
        "version": registration.version,
        "card_sha256": registration.card_sha256,
        "notice_until": registration.notice_until,
        "registration_code": registration.code,
        "certificate": registration.certificate,
        "objections": len(registration.objections),
        "open_objections": len(registration.open_objections),
        "created_at": registration.created_at,
    }
    if whole:
        view |= {
            "applicant": registration.applicant,
            "attachments": [a.__dict__ for a in registration.attachments],
            "objection_details": [o.__dict__ for o in registration.objections],
            "history": list(registration.history),
        }
    return view


def find(veil: Services, caller: Principal, registration_id: str) -> Registration:
    """A registration the caller may see; otherwise NotFound, whether or not it exists."""
    try:
        registration = veil.registrations.get(registration_id)
    except NotFound as missing:
        raise Missing("no such registration") from missing
    if not visible(caller, registration):
        raise Missing("no such registration")
    return registration


def certificate(veil: Services, code: str) -> dict:
    """A registration's certificate by its code, and whether it still stands: `superseded` by
    a later change registration, `cancelled` or `revoked` once such a registration of the
    asset is registered after it."""
    everything = veil.registrations.all()
    issued = next((r for r in everything if r.code == code and r.certificate), None)
    if issued is None:
        raise Missing("no such certificate")
    later = [
        r for r in everything
        if r.asset == issued.asset and r.state is State.REGISTERED
        and _registered_at(r) > _registered_at(issued)
    ]  # fmt: skip
    status = "valid"
    for registration in later:
        if registration.kind is Kind.CANCELLATION:
            status = "cancelled"
        elif registration.kind is Kind.REVOCATION:
            status = "revoked"
        elif status == "valid":
            status = "superseded"
    return {
        "registration_code": code,
        "asset": issued.asset,
        "status": status,
        "certificate": issued.certificate,
    }


def _registered_at(registration: Registration) -> str:
    return registration.history[-1]["at"]


def certificate_body(note: str) -> dict:
    """What a certificate says, read for display (its signature is checked offline)."""
    lines = note.split("\n")
    return json.loads(lines[1]) if len(lines) > 1 else {}
