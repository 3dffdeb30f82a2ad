"""The catalogue's response models: a card as listed, its history, and its DCAT (JSON-LD) form."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.schemas import Receipt
from sandbox.cards import AssetCard, Pricing


class ActiveAsset(AssetCard):
    """A registered asset: its card, with the counts and times the catalogue adds; never data."""

    row_count: int
    registered_at: str
    version: int = Field(description="Data versions: each new registration of the id")
    revision: int = Field(description="Card revisions within this data version")
    lifecycle: Literal["active"]


class DestroyedView(AssetCard):
    """A destroyed asset's tombstone: the card it had, and when its data was shredded."""

    row_count: int
    registered_at: str
    version: int
    lifecycle: Literal["destroyed"]
    destroyed_at: str


AssetView = Annotated[ActiveAsset | DestroyedView, Field(discriminator="lifecycle")]


class AssetList(BaseModel):
    items: list[AssetView]


class RecordedCard(BaseModel):
    """A card as it was registered then: the asset card of its time. Open on purpose: cards
    grow additively, so an old one lacks fields a new one has, and keeps what it had."""

    model_config = ConfigDict(extra="allow")

    id: str
    title: str
    provider: str
    columns: list[dict[str, Any]]


class CardVersion(BaseModel):
    version: int
    revision: int
    at: str
    card: RecordedCard


class CardHistory(BaseModel):
    items: list[CardVersion]


class DestructionRecord(BaseModel):
    """The destruction's ledger entry, with its receipt."""

    type: Literal["asset_destroyed"]
    asset: str
    provider: str
    row_count: int
    registered_at: str
    method: Literal["crypto_shred"]
    destroyed: list[str]
    grants_ended: list[str]
    cancelled: int
    reason: str
    by: str
    decision_id: str | None
    at: str
    receipt: Receipt


class JsonLd(BaseModel):
    """JSON-LD: keys are the terms' compact IRIs (`dct:`, `dcat:`, `veil:`)."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True, validate_by_name=True)


class Issued(JsonLd):
    value: str = Field(alias="@value")
    type: Literal["xsd:dateTime"] = Field(alias="@type")


class ColumnTerm(JsonLd):
    name: str = Field(alias="veil:name")
    type: str = Field(alias="veil:type")
    role: str = Field(alias="veil:role")


class AccessService(JsonLd):
    type: Literal["dcat:DataService"] = Field(alias="@type")
    endpoint_description: str = Field(alias="dcat:endpointDescription")


class Distribution(JsonLd):
    type: Literal["dcat:Distribution"] = Field(alias="@type")
    description: str = Field(alias="dct:description")
    access_service: AccessService = Field(alias="dcat:accessService")


class DatasetTerms(JsonLd):
    """One card as a `dcat:Dataset`."""

    id: str = Field(alias="@id")
    type: Literal["dcat:Dataset"] = Field(alias="@type")
    identifier: str = Field(alias="dct:identifier")
    title: str = Field(alias="dct:title")
    description: str = Field(alias="dct:description")
    theme: str = Field(alias="dcat:theme")
    issued: Issued = Field(alias="dct:issued")
    version: str = Field(alias="dcat:version")
    row_count: int = Field(alias="veil:rowCount")
    publisher: str = Field(alias="dct:publisher")
    rights_holder: str = Field(alias="dct:rightsHolder")
    processing_use_rights: str = Field(alias="veil:processingUseRights")
    product_operation_rights: str = Field(alias="veil:productOperationRights")
    source: str = Field(alias="dct:source")
    license: str = Field(alias="dct:license")
    personal_data: bool = Field(alias="veil:personalData")
    columns: list[ColumnTerm] = Field(alias="veil:columns")
    purposes: list[str] | None = Field(alias="veil:purposes")
    pricing: Pricing = Field(alias="veil:pricing")
    revenue_shares_bp: dict[str, int] = Field(alias="veil:revenueSharesBp")
    min_group_size: int | None = Field(alias="veil:minGroupSize")
    distribution: list[Distribution] = Field(alias="dcat:distribution")
    access_rights: str = Field(alias="dct:accessRights")
    contact_point: list[str] = Field(alias="dcat:contactPoint")
    lifecycle: Literal["active", "destroyed"] = Field(alias="veil:lifecycle")
    retention_until: str | None = Field(alias="veil:retentionUntil")


class Dataset(DatasetTerms):
    """One card as a standalone JSON-LD document."""

    context: dict[str, str] = Field(alias="@context")


class Catalog(JsonLd):
    """Every asset as a `dcat:Catalog`."""

    context: dict[str, str] = Field(alias="@context")
    id: Literal["urn:veil:catalog"] = Field(alias="@id")
    type: Literal["dcat:Catalog"] = Field(alias="@type")
    title: str = Field(alias="dct:title")
    dataset: list[DatasetTerms] = Field(alias="dcat:dataset")
