"""Assets: register a card with its data file, read the catalogue, destroy an asset."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Body, Depends, File, Form, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Veil
from gateway.authorisation import Allowed
from gateway.errors import ApiError
from governance import LIVE, GrantStatus, utc_now
from ledger import canonical_json
from sandbox.cards import AssetCard, parse_card
from sandbox.dcat import CONTEXT, catalog, dataset
from sandbox.store import DestroyedAsset, StoredAsset
from services.authorisation import Permit, asset_input, asset_inputs
from services.runtime import Services

router = APIRouter(prefix="/v1/assets", tags=["assets"])
catalog_router = APIRouter(prefix="/v1", tags=["assets"])


def asset_view(stored: StoredAsset | DestroyedAsset) -> dict:
    """A card as the catalogue shows it: description, counts and lifecycle, never data."""
    view = dict(
        stored.card.model_dump(mode="json"),
        row_count=stored.row_count,
        registered_at=stored.registered_at,
        version=stored.version,
        lifecycle="active",
    )
    if isinstance(stored, DestroyedAsset):
        view.update(lifecycle="destroyed", destroyed_at=stored.destroyed_at)
    else:
        view.update(revision=stored.revision)
    return view


def stored_asset(asset_id: str, veil: Veil) -> StoredAsset:
    return veil.enclave.store.get(asset_id)


def uploaded_card(card: Annotated[str, Form()]) -> AssetCard:
    return parse_card(card, new=True)


Stored = Annotated[StoredAsset, Depends(stored_asset)]
Uploaded = Annotated[AssetCard, Depends(uploaded_card)]


def existing_asset(stored: Stored, veil: Veil) -> dict:
    return {"assets": asset_inputs(veil, [stored.card])}


def new_asset(card: Uploaded) -> dict:
    return {"assets": [asset_input(card, status="new")]}


@router.get("")
def list_assets(_: Allowed("catalog:read"), veil: Veil) -> dict:
    """Every registered asset, and every destroyed one as `lifecycle: destroyed`."""
    return {"items": [asset_view(entry) for entry in _catalogue(veil)]}


def catalogued(asset_id: str, veil: Veil) -> StoredAsset | DestroyedAsset:
    """A registered asset, or the tombstone of a destroyed one."""
    destroyed = veil.enclave.store.destroyed().get(asset_id)
    return destroyed if destroyed is not None else veil.enclave.store.get(asset_id)


Catalogued = Annotated[StoredAsset | DestroyedAsset, Depends(catalogued)]


def catalogued_asset(entry: Catalogued, veil: Veil) -> dict:
    status = "destroyed" if isinstance(entry, DestroyedAsset) else None
    if status is None:
        return {"assets": asset_inputs(veil, [entry.card])}
    return {"assets": [asset_input(entry.card, status=status)]}


@router.get("/{asset_id}")
def get_asset(entry: Catalogued, _: Allowed("catalog:read", catalogued_asset)) -> dict:
    return asset_view(entry)


@router.get("/{asset_id}/dcat")
def get_asset_dcat(entry: Catalogued, _: Allowed("catalog:read", catalogued_asset)) -> dict:
    """The card as a DCAT dataset (JSON-LD)."""
    return {"@context": CONTEXT, **_dataset(entry)}


@catalog_router.get("/catalog")
def get_catalog(_: Allowed("catalog:read"), veil: Veil) -> dict:
    """Every asset, destroyed ones included, as a DCAT catalogue (JSON-LD)."""
    return catalog([_dataset(entry) for entry in _catalogue(veil)])


@router.get("/{asset_id}/versions")
def get_versions(stored: Stored, _: Allowed("catalog:read", existing_asset), veil: Veil) -> dict:
    """Every card the asset has had: each data version, and each revision of its card."""
    return {"items": veil.enclave.store.history(stored.card.id)}


def _catalogue(veil: Services) -> list[StoredAsset | DestroyedAsset]:
    """Registered assets and the tombstones of destroyed ones, by id."""
    store = veil.enclave.store
    entries = {**store.destroyed(), **{stored.card.id: stored for stored in store.list()}}
    return [entries[asset_id] for asset_id in sorted(entries)]


def _dataset(entry: StoredAsset | DestroyedAsset) -> dict:
    lifecycle = "destroyed" if isinstance(entry, DestroyedAsset) else "active"
    return dataset(entry, lifecycle)


@router.post("", status_code=201)
def register_asset(
    card: Uploaded,
    file: Annotated[UploadFile, File()],
    permit: Allowed("asset:register", new_asset),
    veil: Veil,
) -> dict:
    with _received(file, veil.settings.max_upload_bytes) as upload:
        stored = veil.enclave.store.register(card.model_dump(mode="json"), upload)
    veil.ledger.append(
        {
            "type": "asset_registered",
            "asset": stored.card.id,
            "provider": stored.card.provider,
            "classification": stored.card.classification,
            "row_count": stored.row_count,
            "version": stored.version,
            "revision": stored.revision,
            "by": permit.caller.id,
            "at": stored.registered_at,
            "decision_id": permit.decision.decision_id,
        },
        idempotency_key=f"asset:{stored.card.id}:{stored.registered_at}",
    )
    return asset_view(stored)


def named_card(asset_id: str, card: Annotated[dict, Body()]) -> AssetCard:
    return _of_asset(asset_id, parse_card(card, new=True))


def uploaded_version(asset_id: str, card: Uploaded) -> AssetCard:
    return _of_asset(asset_id, card)


def _of_asset(asset_id: str, card: AssetCard) -> AssetCard:
    if card.id != asset_id:
        raise ApiError(422, "CARD_INVALID", "the card's id is not the asset's",
                       [{"rule": "card_field", "column": "id"}])  # fmt: skip
    return card


Named = Annotated[AssetCard, Depends(named_card)]
NewVersion = Annotated[AssetCard, Depends(uploaded_version)]


def changed_asset(stored: Stored, card: Named) -> dict:
    return {"assets": [asset_input(card)]}


def versioned_asset(stored: Stored, card: NewVersion) -> dict:
    return {"assets": [asset_input(card)]}


@router.put("/{asset_id}")
def update_card(card: Named, permit: Allowed("asset:register", changed_asset), veil: Veil) -> dict:
    """Change what the card says (not its columns, provider or data): the next revision."""
    stored = veil.enclave.store.update_card(card.model_dump(mode="json"))
    _record_card(veil, permit, "asset_card_updated", stored)
    return asset_view(stored)


@router.post("/{asset_id}/versions", status_code=201)
def register_version(
    card: NewVersion,
    file: Annotated[UploadFile, File()],
    permit: Allowed("asset:register", versioned_asset),
    veil: Veil,
) -> dict:
    """New data for the asset: the next version number, under a new data key."""
    with _received(file, veil.settings.max_upload_bytes) as upload:
        stored = veil.enclave.store.register_version(card.model_dump(mode="json"), upload)
    _record_card(veil, permit, "asset_version_registered", stored)
    return asset_view(stored)


def _record_card(veil: Services, permit: Permit, kind: str, stored: StoredAsset) -> None:
    card = canonical_json(stored.card.model_dump(mode="json"))
    veil.ledger.append(
        {
            "type": kind,
            "asset": stored.card.id,
            "version": stored.version,
            "revision": stored.revision,
            "row_count": stored.row_count,
            "card_sha256": hashlib.sha256(card.encode()).hexdigest(),
            "by": permit.caller.id,
            "decision_id": permit.decision.decision_id,
            "at": utc_now(),
        },
        idempotency_key=f"{kind}:{stored.card.id}:{stored.version}:{stored.revision}",
    )


class Destruction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)]


@router.delete("/{asset_id}")
def destroy_asset(
    stored: Stored,
    body: Destruction,
    permit: Allowed("asset:destroy", existing_asset),
    veil: Veil,
) -> dict:
    """Crypto-shred the asset: its data can never be read again, and its grants end."""
    asset_id, caller = stored.card.id, permit.caller.id
    gone = veil.enclave.store.destroy(asset_id)
    cancelled = veil.running.stop(asset=asset_id)
    ended = []
    for grant in veil.control.grants():
        if asset_id in grant.assets and grant.status in LIVE:
            veil.control.set_status(grant.id, GrantStatus.REVOKED, caller, "asset destroyed")
            ended.append(grant.id)
    record = {
        "type": "asset_destroyed",
        "asset": asset_id,
        "provider": stored.card.provider,
        "row_count": gone.row_count,
        "registered_at": gone.registered_at,
        "method": "crypto_shred",
        "destroyed": ["wrapped data key", "encrypted data file"],
        "grants_ended": ended,
        "cancelled": cancelled,
        "reason": body.reason,
        "by": caller,
        "decision_id": permit.decision.decision_id,
        "at": gone.destroyed_at,
    }
    receipt = veil.ledger.append(record, idempotency_key=f"destroy:{asset_id}:{gone.registered_at}")
    return dict(record, receipt={"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash})


@contextmanager
def _received(upload: UploadFile, limit: int) -> Iterator[Path]:
    """The uploaded file, saved to a private temporary file at most `limit` bytes long."""
    with tempfile.TemporaryDirectory(prefix="veil-upload-") as folder:
        target = Path(folder) / "upload"
        _save(upload, target, limit)
        yield target


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
