"""Registering an asset in two steps: upload the file and describe the asset, then give each
column its role and type; errors are shown beside the field they concern."""

from __future__ import annotations

import csv
import hashlib
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from console.pages.grants import COMMON_PURPOSES
from console.refusals import REFUSED, Refusal, explain
from console.render import page, refused
from console.visitors import Poster, Veil, Viewer, Visitor
from sandbox.cards import PLAIN_TYPES, Role, parse_card
from sandbox.errors import FileInvalid, SandboxError, Violation
from sandbox.ingest import sniff_columns
from services import assets
from services.authorisation import authorise, card_resource, draft_resource

router = APIRouter(prefix="/console/assets")

UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{20,64}")
# As many columns as a card may have; a wider file is refused before its types are read.
MAX_COLUMNS = 500
FIELDS_PER_COLUMN = 6
# How long an upload waits for its second step.
STAGED_FOR_S = 3600
CLASSIFICATIONS = ("L1", "L2", "L3", "L4")
ROLES = [role.value for role in Role]
TYPES = sorted(PLAIN_TYPES)


@router.get("/new")
def describe_form(request: Request, visitor: Viewer, veil: Veil) -> Response:
    return page(request, "register.html", visitor, typed=_blank(), classifications=CLASSIFICATIONS)


@router.post("/new")
def uploaded(
    request: Request,
    visitor: Poster,
    veil: Veil,
    file: Annotated[UploadFile, File()],
    asset_id: Annotated[str, Form(max_length=120)] = "",
    title: Annotated[str, Form(max_length=200)] = "",
    description: Annotated[str, Form(max_length=2000)] = "",
    classification: Annotated[str, Form(max_length=2)] = "",
    domain: Annotated[str, Form(max_length=64)] = "",
    personal_data: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    """Step one: keep the file for this session and read its columns."""
    typed = {
        "asset_id": asset_id, "title": title, "description": description,
        "classification": classification, "domain": domain, "personal_data": personal_data,
    }  # fmt: skip
    try:
        draft = draft_resource(
            asset_id=asset_id, provider=visitor.principal.id, classification=classification,
            domain=domain, personal_data=personal_data != "no",
        )  # fmt: skip
        authorise(veil, caller=visitor.principal, scope="asset:register", resource=draft)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    upload_id = secrets.token_urlsafe(24)
    target = _staged(veil, visitor, upload_id)
    _sweep(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        shutil.copyfileobj(file.file, out, 1024 * 1024)
    try:
        _check_width(target)
        columns = sniff_columns(target)
    except SandboxError as exc:
        target.unlink(missing_ok=True)
        refusal = explain(exc)
        return page(request, "register.html", visitor, refusal.status, typed=typed,
                    classifications=CLASSIFICATIONS, refusal=refusal)  # fmt: skip
    described = [{"name": n, "type": t, "role": "dimension", "description": "",
                  "low": "", "high": ""} for n, t in columns]  # fmt: skip
    return _columns_form(request, visitor, typed, described, upload_id)


async def posted_form(request: Request) -> FormData:
    """The whole form, up to a card's most columns (parsed once, before the handler)."""
    return await request.form(max_fields=FIELDS_PER_COLUMN * MAX_COLUMNS + 50)


@router.post("/register")
def register(
    request: Request,
    visitor: Poster,
    veil: Veil,
    form: Annotated[FormData, Depends(posted_form)],
) -> Response:
    """Step two: the card from the form, checked as the API checks it, then registered."""
    typed = {key: str(form.get(key, ""))[:2000] for key in _blank()}
    upload_id = str(form.get("upload_id", ""))
    counted = str(form.get("column_count", ""))
    count = min(int(counted), MAX_COLUMNS) if counted.isdigit() else 0
    described = [
        {field: str(form.get(f"c{i}_{field}", ""))[:500]
         for field in ("name", "type", "role", "description", "low", "high")}
        for i in range(count)
    ]  # fmt: skip
    staged = _staged(veil, visitor, upload_id) if UPLOAD_ID.fullmatch(upload_id) else None
    if staged is None or not staged.is_file():
        refusal = Refusal(422, "BAD_REQUEST", "upload the file again",
                          [{"rule": "invalid_field", "column": "file"}])  # fmt: skip
        return page(request, "register.html", visitor, 422, typed=typed,
                    classifications=CLASSIFICATIONS, refusal=refusal)  # fmt: skip
    card = _card(typed, described, visitor.principal.id)
    try:
        parsed = parse_card(card, new=True)
        permit = authorise(veil, caller=visitor.principal, scope="asset:register",
                           resource=card_resource(parsed, status="new"))  # fmt: skip
        stored = assets.register_asset(veil, permit=permit, card=parsed, data=staged)
    except REFUSED as exc:  # a refused card (CardInvalid) marks its fields
        return _columns_form(request, visitor, typed, described, upload_id, explain(exc))
    staged.unlink(missing_ok=True)
    return RedirectResponse(f"/console/assets/{stored.card.id}", status_code=303)


def _card(typed: dict, described: list[dict], provider: str) -> dict:
    columns = []
    for column in described:
        entry: dict = {key: column[key] for key in ("name", "type", "role", "description")}
        if column["role"] == Role.MEASURE:
            entry["bounds"] = [_number(column["low"]), _number(column["high"])]
        columns.append(entry)
    personal = {"yes": True, "no": False}.get(typed["personal_data"])
    rights: dict = {"holder": provider}
    if personal is not None:
        rights["personal_data"] = personal
    return {
        "id": typed["asset_id"], "title": typed["title"], "description": typed["description"],
        "provider": provider, "classification": typed["classification"],
        "domain": typed["domain"], "rights": rights, "columns": columns,
        "purposes": None, "revenue_shares_bp": {provider: 10_000},
    }  # fmt: skip


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text  # the card's check names the field


def _staged(veil: Veil, visitor: Visitor, upload_id: str) -> Path:
    """Where this session's upload waits between the two steps: no other session finds it."""
    session = hashlib.sha256(visitor.token.encode()).hexdigest()[:32]
    return veil.settings.home / "console-uploads" / session / upload_id


def _check_width(upload: Path) -> None:
    """A CSV header wider than a card may be is refused before DuckDB reads the file."""
    with upload.open("rb") as handle:
        head = handle.read(1024 * 1024)
    if head[:4] == b"PAR1":
        return  # Parquet keeps its schema in its footer; DESCRIBE reads only that
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace")
    if len(next(csv.reader([first]), [])) > MAX_COLUMNS:
        raise FileInvalid(f"a card has at most {MAX_COLUMNS} columns",
                          [Violation("too_many_columns")])  # fmt: skip


def forget_uploads(veil: Veil, visitor: Visitor) -> None:
    """At sign-out: the session's waiting upload goes with it."""
    shutil.rmtree(_staged(veil, visitor, "x").parent, ignore_errors=True)


def _sweep(session_folder: Path) -> None:
    """One waiting upload per session (a new one replaces it), none older than STAGED_FOR_S:
    abandoned second steps cannot fill the disk."""
    shutil.rmtree(session_folder, ignore_errors=True)
    root = session_folder.parent
    if not root.is_dir():
        return
    cutoff = time.time() - STAGED_FOR_S
    for staged in root.glob("*/*"):
        try:
            if staged.stat().st_mtime < cutoff:
                staged.unlink()
        except OSError:
            continue  # another process swept it first


def _columns_form(
    request: Request,
    visitor: Visitor,
    typed: dict,
    described: list[dict],
    upload_id: str,
    refusal: Refusal | None = None,
) -> Response:
    wrong = _wrong_fields(refusal)
    status = refusal.status if refusal else 200
    return page(request, "register_columns.html", visitor, status, typed=typed,
                columns=described, upload_id=upload_id, roles=ROLES, types=TYPES,
                refusal=refusal, wrong=wrong, purposes=COMMON_PURPOSES)  # fmt: skip


def _wrong_fields(refusal: Refusal | None) -> set[str]:
    """Form fields a refusal names: `columns.2.bounds` is column 2's bounds, `id` the id."""
    fields = set()
    for rule in refusal.rules if refusal else []:
        location = str(rule.get("column") or "")
        parts = location.split(".")
        if parts[0] == "columns" and len(parts) > 1:
            fields.add(f"c{parts[1]}_{parts[2] if len(parts) > 2 else 'role'}")
        elif parts[0] == "rights":
            fields.add("personal_data")
        elif location:
            fields.add({"id": "asset_id"}.get(parts[0], parts[0]))
    return fields


def _blank() -> dict:
    return {"asset_id": "", "title": "", "description": "", "classification": "L3",
            "domain": "", "personal_data": ""}  # fmt: skip
