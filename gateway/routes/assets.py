"""Assets: register a card with its data file, read the catalogue, destroy an asset."""

from __future__ import annotations

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
from gateway.routes.asset_models import (
    ActiveAsset,
    AssetList,
    AssetView,
    CardHistory,
    Catalog,
    Dataset,
    DestructionRecord,
)
from gateway.schemas import AUTHORISED, WITH_BODY, errors, example
from sandbox.cards import AssetCard, parse_card
from sandbox.dcat import CONTEXT, catalog
from sandbox.storage import refused_when_full
from sandbox.store import DestroyedAsset, StoredAsset
from services import assets
from services.assets import asset_view
from services.authorisation import assets_resource, card_resource

router = APIRouter(prefix="/v1/assets", tags=["assets"])
catalog_router = APIRouter(prefix="/v1", tags=["assets"])

UNKNOWN = {404: example("NOT_FOUND", "no such asset", ("unknown_asset", None))}
CARD_INVALID = example("CARD_INVALID", "the card is not valid", ("card_field", "columns"))


def stored_asset(asset_id: str, veil: Veil) -> StoredAsset:
    return veil.enclave.store.get(asset_id)


def uploaded_card(card: Annotated[str, Form()]) -> AssetCard:
    return parse_card(card, new=True)


Stored = Annotated[StoredAsset, Depends(stored_asset)]
Uploaded = Annotated[AssetCard, Depends(uploaded_card)]


def existing_asset(stored: Stored, veil: Veil) -> dict:
    return assets_resource(veil, [stored.card])


def new_asset(card: Uploaded) -> dict:
    return card_resource(card, status="new")


@router.get("", responses=errors(*AUTHORISED))
def list_assets(_: Allowed("catalog:read"), veil: Veil) -> AssetList:
    """Every registered asset, and every destroyed one as `lifecycle: destroyed`."""
    return AssetList.model_validate(
        {"items": [asset_view(entry) for entry in assets.catalogue(veil)]}
    )


def catalogued(asset_id: str, veil: Veil) -> assets.Catalogued:
    return assets.catalogued(veil, asset_id=asset_id)


Catalogued = Annotated[StoredAsset | DestroyedAsset, Depends(catalogued)]


def catalogued_asset(entry: Catalogued, veil: Veil) -> dict:
    if isinstance(entry, DestroyedAsset):
        return card_resource(entry.card, status="destroyed")
    return assets_resource(veil, [entry.card])


@router.get(
    "/{asset_id}", response_model=AssetView, responses=errors(*AUTHORISED, 404, examples=UNKNOWN)
)
def get_asset(entry: Catalogued, _: Allowed("catalog:read", catalogued_asset)) -> dict:
    return asset_view(entry)


@router.get("/{asset_id}/dcat", responses=errors(*AUTHORISED, 404, examples=UNKNOWN))
def get_asset_dcat(entry: Catalogued, _: Allowed("catalog:read", catalogued_asset)) -> Dataset:
    """The card as a DCAT dataset (JSON-LD)."""
    return Dataset.model_validate({"@context": CONTEXT, **assets.dcat_dataset(entry)})


@catalog_router.get("/catalog", responses=errors(*AUTHORISED))
def get_catalog(_: Allowed("catalog:read"), veil: Veil) -> Catalog:
    """Every asset, destroyed ones included, as a DCAT catalogue (JSON-LD)."""
    datasets = [assets.dcat_dataset(entry) for entry in assets.catalogue(veil)]
    return Catalog.model_validate(catalog(datasets))


@router.get("/{asset_id}/versions", responses=errors(*AUTHORISED, 404, examples=UNKNOWN))
def get_versions(
    stored: Stored, _: Allowed("catalog:read", existing_asset), veil: Veil
) -> CardHistory:
    """Every card the asset has had: each data version, and each revision of its card."""
    return CardHistory.model_validate({"items": veil.enclave.store.history(stored.card.id)})


@router.post(
    "",
    status_code=201,
    responses=errors(
        *AUTHORISED,
        *WITH_BODY,
        409,
        507,
        examples={
            409: example("CONFLICT", "an asset with this id is already registered"),
            422: CARD_INVALID,
        },
    ),
)
def register_asset(
    card: Uploaded,
    file: Annotated[UploadFile, File()],
    permit: Allowed("asset:register", new_asset),
    veil: Veil,
) -> ActiveAsset:
    # The store's own writes (folders, keys, cards) raise the system's OSError when it is full.
    with refused_when_full(), _received(file, veil.settings.max_upload_bytes) as upload:
        stored = assets.register_asset(veil, permit=permit, card=card, data=upload)
    return ActiveAsset.model_validate(asset_view(stored))


def named_card(asset_id: str, card: Annotated[dict, Body()]) -> AssetCard:
    return assets.card_of_asset(parse_card(card, new=True), asset_id=asset_id)


def uploaded_version(asset_id: str, card: Uploaded) -> AssetCard:
    return assets.card_of_asset(card, asset_id=asset_id)


Named = Annotated[AssetCard, Depends(named_card)]
NewVersion = Annotated[AssetCard, Depends(uploaded_version)]


def changed_asset(stored: Stored, card: Named) -> dict:
    return card_resource(card)


def versioned_asset(stored: Stored, card: NewVersion) -> dict:
    return card_resource(card)


@router.put(
    "/{asset_id}",
    responses=errors(*AUTHORISED, *WITH_BODY, 404, examples={**UNKNOWN, 422: CARD_INVALID}),
)
def update_card(
    card: Named, permit: Allowed("asset:register", changed_asset), veil: Veil
) -> ActiveAsset:
    """Change what the card says (not its columns, provider or data): the next revision."""
    return ActiveAsset.model_validate(
        asset_view(assets.update_card(veil, permit=permit, card=card))
    )


@router.post(
    "/{asset_id}/versions",
    status_code=201,
    responses=errors(*AUTHORISED, *WITH_BODY, 404, 507, examples={**UNKNOWN, 422: CARD_INVALID}),
)
def register_version(
    card: NewVersion,
    file: Annotated[UploadFile, File()],
    permit: Allowed("asset:register", versioned_asset),
    veil: Veil,
) -> ActiveAsset:
    """New data for the asset: the next version number, under a new data key."""
    with refused_when_full(), _received(file, veil.settings.max_upload_bytes) as upload:
        stored = assets.register_version(veil, permit=permit, card=card, data=upload)
    return ActiveAsset.model_validate(asset_view(stored))


class Destruction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)]


@router.delete("/{asset_id}", responses=errors(*AUTHORISED, *WITH_BODY, 404, examples=UNKNOWN))
def destroy_asset(
    stored: Stored,
    body: Destruction,
    permit: Allowed("asset:destroy", existing_asset),
    veil: Veil,
) -> DestructionRecord:
    """Crypto-shred the asset: its data can never be read again, and its grants end."""
    record = assets.destroy_asset(veil, permit=permit, asset=stored, reason=body.reason)
    return DestructionRecord.model_validate(record)


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
