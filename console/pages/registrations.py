"""The register (数据资产登记): registrations a visitor may see, each with the steps its role may
take now, its documents, objections and printable certificate; through the same scopes,
services and ledger entries as the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from console.refusals import REFUSED, Refusal, explain
from console.render import page, refused
from console.visitors import Poster, Veil, Viewer, Visitor
from governance.registrations import Kind, Registration, State, Step
from services import registrations
from services.authorisation import authorise
from services.errors import Invalid, Missing
from services.registrations import (
    ATTACHMENT_KINDS,
    MAX_ATTACHMENT_BYTES,
    registration_resource,
    registration_view,
)

router = APIRouter(prefix="/console/registrations")
KINDS = frozenset(kind.value for kind in Kind)
STEPS = frozenset(step.value for step in Step)

# The steps a state offers, each to the roles the shipped policy gives it (the policy still
# decides each one when it is taken).
HOLDERS, OVERSEERS = ("provider", "operator"), ("operator", "supervisor")
ANYONE = ("developer", "provider", "operator", "supervisor", "admin")
OFFERED: dict[State, list[tuple[Step, tuple[str, ...]]]] = {
    State.DRAFT: [(Step.APPLY, HOLDERS), (Step.WITHDRAW, HOLDERS)],
    State.APPLIED: [(Step.REVIEW, ("operator",)), (Step.REJECT, OVERSEERS)],
    State.REVIEWED: [(Step.RE_REVIEW, ("supervisor",)), (Step.REJECT, OVERSEERS)],
    State.RE_REVIEWED: [(Step.PUBLISH, ("operator",)), (Step.REJECT, OVERSEERS)],
    State.NOTICE: [
        (Step.OBJECT, ANYONE),
        (Step.RESOLVE, ("supervisor",)),
        (Step.REGISTER, ("supervisor",)),
        (Step.REJECT, OVERSEERS),
    ],
}


@router.get("")
def register(request: Request, visitor: Viewer, veil: Veil) -> Response:
    return _register(request, visitor, veil)


@router.post("")
def open_registration(
    request: Request,
    visitor: Poster,
    veil: Veil,
    asset: Annotated[str, Form(max_length=200)] = "",
    kind: Annotated[str, Form(max_length=16)] = "first",
) -> Response:
    """Enter an asset in the memo book: a registration of `kind` in draft."""
    try:
        stored = veil.enclave.store.get(asset)
        resource = registration_resource(None, holder=stored.card.provider)
        permit = authorise(
            veil, caller=visitor.principal, scope="registration:open", resource=resource
        )
        opened = registrations.open_registration(
            veil, permit=permit, asset=stored, kind=Kind(kind) if kind in KINDS else Kind.FIRST
        )
    except REFUSED as exc:
        return _register(request, visitor, veil, explain(exc))
    return _detail(request, visitor, veil, opened.id)


@router.get("/{registration_id}")
def registration(request: Request, visitor: Viewer, veil: Veil, registration_id: str) -> Response:
    return _detail(request, visitor, veil, registration_id)


@router.get("/{registration_id}/certificate")
def certificate(request: Request, visitor: Viewer, veil: Veil, registration_id: str) -> Response:
    """The certificate as a printable page: what it certifies, and its signed note."""
    try:
        found = _found(veil, visitor, registration_id)
        if found.certificate is None:
            raise Missing("no certificate yet")
        standing = registrations.certificate(veil, found.code or "")
    except REFUSED as exc:
        return refused(request, visitor, exc)
    body = registrations.certificate_body(found.certificate)
    return page(request, "certificate.html", visitor, registration=found, body=body,
                status_of=standing["status"])  # fmt: skip


@router.post("/{registration_id}/step")
def take_step(
    request: Request,
    visitor: Poster,
    veil: Veil,
    registration_id: str,
    step: Annotated[str, Form(max_length=16)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    upheld: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    try:
        found = _found(veil, visitor, registration_id)
        chosen = Step(step) if step in STEPS else None
        if chosen is None:
            raise Invalid("unknown step", [{"rule": "step", "column": "step"}])
        permit = authorise(veil, caller=visitor.principal, scope=f"registration:{chosen.value}",
                           resource=registration_resource(found, holder=found.holder))  # fmt: skip
        registrations.take_step(veil, permit=permit, registration=found, step=chosen, note=note,
                                upheld=upheld == "yes")  # fmt: skip
    except REFUSED as exc:
        return _detail(request, visitor, veil, registration_id, explain(exc))
    return _detail(request, visitor, veil, registration_id)


@router.post("/{registration_id}/attach")
def attach(
    request: Request,
    visitor: Poster,
    veil: Veil,
    registration_id: str,
    file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    try:
        found = _found(veil, visitor, registration_id)
        content = file.file.read(MAX_ATTACHMENT_BYTES + 1)
        permit = authorise(veil, caller=visitor.principal, scope="registration:attach",
                           resource=registration_resource(found, holder=found.holder))  # fmt: skip
        registrations.file_attachment(veil, permit=permit, registration=found, kind=kind,
                                      name=file.filename or kind, content=content)  # fmt: skip
    except REFUSED as exc:
        return _detail(request, visitor, veil, registration_id, explain(exc))
    return _detail(request, visitor, veil, registration_id)


def _found(veil: Veil, visitor: Visitor, registration_id: str) -> Registration:
    authorise(veil, caller=visitor.principal, scope="registration:read", resource={})
    return registrations.find(veil, visitor.principal, registration_id)


def _register(
    request: Request, visitor: Visitor, veil: Veil, refusal: Refusal | None = None
) -> Response:
    try:
        authorise(veil, caller=visitor.principal, scope="registration:read", resource={})
    except REFUSED as exc:
        return refused(request, visitor, exc)
    principal = visitor.principal
    shown = [
        registration_view(r, principal)
        for r in veil.registrations.all()
        if registrations.visible(principal, r)
    ]
    own = [
        s.card.id
        for s in veil.enclave.store.list()
        if principal.has("operator") or s.card.provider == principal.id
    ]
    status = refusal.status if refusal else 200
    return page(request, "registrations.html", visitor, status, registrations=shown, own=own,
                kinds=[k.value for k in Kind], refusal=refusal)  # fmt: skip


def _detail(
    request: Request,
    visitor: Visitor,
    veil: Veil,
    registration_id: str,
    refusal: Refusal | None = None,
) -> Response:
    try:
        found = _found(veil, visitor, registration_id)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    principal = visitor.principal
    offered = [
        step.value
        for step, roles in OFFERED.get(found.state, [])
        if principal.has(*roles)
        and (
            step not in (Step.APPLY, Step.WITHDRAW)
            or principal.has("operator")
            or principal.id == found.holder
        )  # fmt: skip
    ]
    status = refusal.status if refusal else 200
    return page(request, "registration_detail.html", visitor, status,
                registration=registration_view(found, principal), steps=offered,
                documents=ATTACHMENT_KINDS, drafting=found.state is State.DRAFT
                and (principal.has("operator") or principal.id == found.holder),
                refusal=refusal)  # fmt: skip
