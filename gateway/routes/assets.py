"""Assets: register a card with its data file, read the catalogue, destroy an asset."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile

from gateway.auth import Veil
from gateway.authorisation import Allowed, asset_input, asset_inputs
from gateway.errors import ApiError
from sandbox.cards import AssetCard, parse_card
from sandbox.store import StoredAsset

router = APIRouter(prefix="/v1/assets", tags=["assets"])


def asset_view(stored: StoredAsset) -> dict:
    """A card as the catalogue shows it: description and counts, never data."""
    return dict(
        stored.card.model_dump(mode="json"),
        row_count=stored.row_count,
        registered_at=stored.registered_at,
    )


def stored_asset(asset_id: str, veil: Veil) -> StoredAsset:
    return veil.enclave.store.get(asset_id)


def uploaded_card(card: Annotated[str, Form()]) -> AssetCard:
    return parse_card(card)


Stored = Annotated[StoredAsset, Depends(stored_asset)]
Uploaded = Annotated[AssetCard, Depends(uploaded_card)]


def existing_asset(stored: Stored, veil: Veil) -> dict:
    return {"assets": asset_inputs(veil, [stored.card])}


def new_asset(card: Uploaded) -> dict:
    return {"assets": [asset_input(card, status="new")]}


@router.get("")
def list_assets(_: Allowed("catalog:read"), veil: Veil) -> dict:
    return {"items": [asset_view(stored) for stored in veil.enclave.store.list()]}


@router.get("/{asset_id}")
def get_asset(stored: Stored, _: Allowed("catalog:read", existing_asset)) -> dict:
    return asset_view(stored)


@router.post("", status_code=201)
def register_asset(
    card: Uploaded,
    file: Annotated[UploadFile, File()],
    permit: Allowed("asset:register", new_asset),
    veil: Veil,
) -> dict:
    with tempfile.TemporaryDirectory(prefix="veil-upload-") as folder:
        upload = Path(folder) / "upload"
        _save(file, upload, veil.settings.max_upload_bytes)
        stored = veil.enclave.store.register(card.model_dump(mode="json"), upload)
    veil.ledger.append(
        {
            "type": "asset_registered",
            "asset": stored.card.id,
            "provider": stored.card.provider,
            "classification": stored.card.classification,
            "row_count": stored.row_count,
            "by": permit.caller.id,
            "decision_id": permit.decision.decision_id,
        },
        idempotency_key=f"asset:{stored.card.id}:{stored.registered_at}",
    )
    return asset_view(stored)


@router.delete("/{asset_id}")
def destroy_asset(
    stored: Stored,
    permit: Allowed("asset:destroy", existing_asset),
    veil: Veil,
) -> dict:
    record = veil.enclave.store.destroy(stored.card.id)
    veil.running.stop(asset=stored.card.id)
    receipt = veil.ledger.append(
        dict(
            record,
            type="asset_destroyed",
            by=permit.caller.id,
            decision_id=permit.decision.decision_id,
        ),
        idempotency_key=f"destroy:{stored.card.id}:{record['registered_at']}",
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
