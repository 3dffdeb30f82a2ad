"""Assets: register a card with its data file, read the catalogue, destroy an asset."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from gateway.auth import Caller, Holding, Veil
from gateway.errors import ApiError
from sandbox.cards import parse_card
from sandbox.store import StoredAsset

router = APIRouter(prefix="/v1/assets", tags=["assets"])


def asset_view(stored: StoredAsset) -> dict:
    """A card as the catalogue shows it: description and counts, never data."""
    return dict(
        stored.card.model_dump(mode="json"),
        row_count=stored.row_count,
        registered_at=stored.registered_at,
    )


@router.get("")
def list_assets(_: Caller, veil: Veil) -> dict:
    return {"items": [asset_view(stored) for stored in veil.enclave.store.list()]}


@router.get("/{asset_id}")
def get_asset(asset_id: str, _: Caller, veil: Veil) -> dict:
    return asset_view(veil.enclave.store.get(asset_id))


@router.post("", status_code=201)
def register_asset(
    card: Annotated[str, Form()],
    file: Annotated[UploadFile, File()],
    caller: Holding("operator", "provider"),
    veil: Veil,
) -> dict:
    parsed = parse_card(card)
    if not caller.has("operator") and parsed.provider != caller.id:
        raise ApiError(403, "FORBIDDEN", "a provider registers only its own assets")
    with tempfile.TemporaryDirectory(prefix="veil-upload-") as folder:
        upload = Path(folder) / "upload"
        _save(file, upload, veil.settings.max_upload_bytes)
        stored = veil.enclave.store.register(parsed.model_dump(mode="json"), upload)
    veil.ledger.append(
        {
            "type": "asset_registered",
            "asset": stored.card.id,
            "provider": stored.card.provider,
            "classification": stored.card.classification,
            "row_count": stored.row_count,
            "by": caller.id,
        },
        idempotency_key=f"asset:{stored.card.id}:{stored.registered_at}",
    )
    return asset_view(stored)


@router.delete("/{asset_id}")
def destroy_asset(
    asset_id: str,
    caller: Holding("operator"),
    veil: Veil,
) -> dict:
    record = veil.enclave.store.destroy(asset_id)
    receipt = veil.ledger.append(
        dict(record, type="asset_destroyed", by=caller.id),
        idempotency_key=f"destroy:{asset_id}:{record['registered_at']}",
    )
    return dict(record, receipt={"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash})


def _save(upload: UploadFile, target: Path, limit: int) -> None:
    written = 0
    with target.open("wb") as out:
        while chunk := upload.file.read(1024 * 1024):
            written += len(chunk)
            if written > limit:
                raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the file is larger than {limit} bytes")
            out.write(chunk)
    if written == 0:
        raise ApiError(422, "FILE_INVALID", "the file is empty", [{"rule": "file_empty"}])
