"""The registration procedure over HTTP: open, file documents, take each step, read the
register; certificates anyone can check."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Caller, Veil
from gateway.authorisation import Allowed
from gateway.errors import ApiError
from gateway.schemas import AUTHORISED, WITH_BODY, errors
from governance.registrations import Kind, Registration, Step
from services import registrations
from services.registrations import MAX_ATTACHMENT_BYTES, registration_resource, registration_view

router = APIRouter(prefix="/v1/registrations", tags=["registrations"])
certificates = APIRouter(prefix="/v1/certificates", tags=["registrations"])


class Opening(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset: str = Field(max_length=200)
    kind: Kind = Kind.FIRST


class StepBody(BaseModel):
    """A reviewer's note, an objection's text, or whether a resolved objection is upheld."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=2000)
    upheld: bool | None = None


class RegistrationView(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    asset: str
    kind: str
    state: str
    holder: str
    registration_code: str | None = None
    certificate: str | None = None


class RegistrationList(BaseModel):
    items: list[RegistrationView]


class CertificateStatus(BaseModel):
    registration_code: str
    asset: str
    status: str = Field(description="valid, superseded, cancelled or revoked")
    certificate: str


def _opened_for(body: Opening, veil: Veil) -> dict:
    stored = veil.enclave.store.get(body.asset)
    return registration_resource(None, holder=stored.card.provider)


def _found(registration_id: str, caller: Caller, veil: Veil) -> Registration:
    return registrations.find(veil, caller, registration_id)


def _resource(registration_id: str, caller: Caller, veil: Veil) -> dict:
    found = registrations.find(veil, caller, registration_id)
    return registration_resource(found, holder=found.holder)


@router.post("", status_code=201, responses=errors(*AUTHORISED, *WITH_BODY, 404, 409))
def open_registration(
    body: Opening, permit: Allowed("registration:open", _opened_for), veil: Veil
) -> RegistrationView:
    """Enter an asset in the memo book: a first (or change, cancellation, revocation)
    registration, in `draft` until its holder applies."""
    stored = veil.enclave.store.get(body.asset)
    opened = registrations.open_registration(veil, permit=permit, asset=stored, kind=body.kind)
    return RegistrationView.model_validate(registration_view(opened, permit.caller))


@router.get("", responses=errors(*AUTHORISED))
def list_registrations(
    _: Allowed("registration:read"),
    caller: Caller,
    veil: Veil,
    asset: Annotated[str | None, Query(max_length=200)] = None,
) -> RegistrationList:
    """Registrations the caller may see: its own and, for anyone, notices and the register."""
    found = [
        registration_view(r, caller)
        for r in veil.registrations.all(asset)
        if registrations.visible(caller, r)
    ]
    return RegistrationList.model_validate({"items": found})


@router.get("/{registration_id}", responses=errors(*AUTHORISED, 404))
def get_registration(
    registration_id: str, _: Allowed("registration:read", _resource), caller: Caller, veil: Veil
) -> RegistrationView:
    found = registrations.find(veil, caller, registration_id)
    return RegistrationView.model_validate(registration_view(found, caller))


@router.post(
    "/{registration_id}/attachments",
    status_code=201,
    responses=errors(*AUTHORISED, *WITH_BODY, 404, 409, 413),
)
def file_attachment(
    registration_id: str,
    kind: Annotated[str, Form(max_length=32)],
    file: Annotated[UploadFile, File()],
    permit: Allowed("registration:attach", _resource),
    veil: Veil,
) -> RegistrationView:
    """File a document with a draft: `legal_opinion`, `valuation_report` or `other`."""
    content = file.file.read(MAX_ATTACHMENT_BYTES + 1)
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", "a document holds at most 20 MiB")
    found = registrations.find(veil, permit.caller, registration_id)
    changed = registrations.file_attachment(
        veil, permit=permit, registration=found, kind=kind, name=file.filename or kind,
        content=content,
    )  # fmt: skip
    return RegistrationView.model_validate(registration_view(changed, permit.caller))


@router.get(
    "/{registration_id}/attachments/{sha256}",
    responses={
        200: {
            "description": "The document as filed",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        **errors(*AUTHORISED, 404),
    },  # fmt: skip
    response_class=Response,
)
def read_attachment(
    registration_id: str,
    sha256: str,
    permit: Allowed("registration:documents", _resource),
    veil: Veil,
) -> Response:
    """A document, to the registration's parties only."""
    found = registrations.find(veil, permit.caller, registration_id)
    if sha256 not in {a.sha256 for a in found.attachments}:
        raise ApiError(404, "NOT_FOUND", "no such document")
    content = veil.attachments.get(found.id, sha256)
    return Response(content, media_type="application/octet-stream")


def _step_route(step: Step) -> None:
    def take(
        registration_id: str,
        permit: Any,
        veil: Veil,
        body: Annotated[StepBody | None, Body()] = None,
    ) -> RegistrationView:
        found = registrations.find(veil, permit.caller, registration_id)
        given = body or StepBody()
        changed = registrations.take_step(
            veil, permit=permit, registration=found, step=step, note=given.note,
            upheld=given.upheld,
        )  # fmt: skip
        return RegistrationView.model_validate(registration_view(changed, permit.caller))

    take.__annotations__["permit"] = Allowed(f"registration:{step.value}", _resource)
    take.__name__ = f"registration_{step.value}"
    take.__doc__ = f"Take the step `{step.value}` (registration:{step.value})."
    router.add_api_route(
        f"/{{registration_id}}/{step.value}",
        take,
        methods=["POST"],
        responses=errors(*AUTHORISED, *WITH_BODY, 404, 409),
        response_model=RegistrationView,
    )


for _step in Step:
    _step_route(_step)


@certificates.get("/{code}", responses=errors(404))
def certificate_status(code: str, veil: Veil) -> CertificateStatus:
    """A certificate and whether it still stands: public, as the register is. Its signature
    is checked offline with the ledger's public key (`veil certificates verify`)."""
    found = registrations.certificate(veil, code)
    return CertificateStatus.model_validate(found)
