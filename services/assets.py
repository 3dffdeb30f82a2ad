"""Assets: a provider registers a card with its data, revises the card or the data, and
destroys it; the catalogue describes each, never its data. A card priced above its price cap is
refused (services/price_caps.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from governance import LIVE, GrantStatus, utc_now
from ledger import canonical_json, check_entry
from sandbox.cards import AssetCard
from sandbox.dcat import dataset
from sandbox.store import ChangeRecord, DestroyedAsset, StoredAsset
from services.authorisation import Permit
from services.errors import Invalid
from services.keys import asset_entry_key
from services.price_caps import check_card
from services.runtime import Services

Catalogued = StoredAsset | DestroyedAsset


def asset_view(stored: Catalogued) -> dict:
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


def catalogue(veil: Services) -> list[Catalogued]:
    """Registered assets and the tombstones of destroyed ones, by id."""
    store = veil.enclave.store
    entries = {**store.destroyed(), **{stored.card.id: stored for stored in store.list()}}
    return [entries[asset_id] for asset_id in sorted(entries)]


def catalogued(veil: Services, *, asset_id: str) -> Catalogued:
    """A registered asset, or the tombstone of a destroyed one."""
    destroyed = veil.enclave.store.destroyed().get(asset_id)
    return destroyed if destroyed is not None else veil.enclave.store.get(asset_id)


def dcat_dataset(entry: Catalogued) -> dict:
    lifecycle = "destroyed" if isinstance(entry, DestroyedAsset) else "active"
    return dataset(entry, lifecycle)


def card_of_asset(card: AssetCard, *, asset_id: str) -> AssetCard:
    """The card, if it is the named asset's."""
    if card.id != asset_id:
        raise Invalid("the card's id is not the asset's", [{"rule": "card_field", "column": "id"}],
                      code="CARD_INVALID")  # fmt: skip
    return card


def register_asset(veil: Services, *, permit: Permit, card: AssetCard, data: Path) -> StoredAsset:
    """A new asset: its data encrypted under a key of its own, served once its registration
    is on record."""

    def registration(stored: StoredAsset) -> tuple[dict, str]:
        entry = {
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
        }
        return entry, asset_entry_key("asset", stored.card.id, stored.registered_at)

    check_card(veil, card)
    card_json = card.model_dump(mode="json")
    return _on_record(
        veil, lambda keep: veil.enclave.store.register(card_json, data, keep), registration
    )


def update_card(veil: Services, *, permit: Permit, card: AssetCard) -> StoredAsset:
    """Change what the card says (not its columns, provider or data): the next revision."""
    check_card(veil, card)
    card_json = card.model_dump(mode="json")
    return _on_record(
        veil,
        lambda keep: veil.enclave.store.update_card(card_json, keep),
        _card_record(permit, "asset_card_updated"),
    )


def register_version(veil: Services, *, permit: Permit, card: AssetCard, data: Path) -> StoredAsset:
    """New data for the asset: the next version number, under a new data key."""
    check_card(veil, card)
    card_json = card.model_dump(mode="json")
    return _on_record(
        veil,
        lambda keep: veil.enclave.store.register_version(card_json, data, keep),
        _card_record(permit, "asset_version_registered"),
    )


def _on_record(
    veil: Services,
    change: Callable[[ChangeRecord], StoredAsset],
    record: Callable[[StoredAsset], tuple[dict, str]],
) -> StoredAsset:
    """Make a change to the store whose result is served only once its entry is in the
    ledger; the entry is kept with it first, so a crash between leaves it to be written at
    the next start (services/recovery.py)."""
    kept: dict = {}

    def keep(stored: StoredAsset) -> dict:
        entry, key = record(stored)
        # An entry the ledger would refuse (an id too long for its key) is refused here, so
        # the change is undone: kept, it could never be written, and no start would pass.
        check_entry(entry, key)
        kept.update(entry=entry, key=key)
        return kept

    stored = change(keep)
    veil.ledger.append(kept["entry"], idempotency_key=kept["key"])
    veil.enclave.store.recorded(stored.card.id)
    return stored


def destroy_asset(veil: Services, *, permit: Permit, asset: StoredAsset, reason: str) -> dict:
    """Crypto-shred the asset: its data can never be read again, its work stops, its grants
    end; returns the destruction's ledger entry with its receipt.

    The destruction is recorded first and done after: no entry, no destruction (a ledger that
    cannot be written leaves the asset as it was, and the caller may ask again), and a process
    that dies once the entry is written leaves the shred to the next start's re-shred."""
    asset_id, caller = asset.card.id, permit.caller.id
    cancelled = veil.running.stop(asset=asset_id)
    ending = [
        grant.id
        for grant in veil.control.grants()
        if asset_id in grant.assets and grant.status in LIVE
    ]
    record = {
        "type": "asset_destroyed",
        "asset": asset_id,
        "provider": asset.card.provider,
        "row_count": asset.row_count,
        "registered_at": asset.registered_at,
        "method": "crypto_shred",
        "destroyed": ["wrapped data key", "encrypted data file"],
        "grants_ended": ending,
        "cancelled": cancelled,
        "reason": reason,
        "by": caller,
        "decision_id": permit.decision.decision_id,
        "at": utc_now(),
    }
    key = asset_entry_key("destroy", asset_id, asset.registered_at)
    receipt = veil.ledger.append(record, idempotency_key=key)
    if not receipt.fresh:  # asked again after an answer was lost: the destruction on record
        found = veil.ledger.find(key)
        if found is not None:
            record = {k: v for k, v in json.loads(found.data).items() if k != "idempotency_key"}
    veil.enclave.store.destroy(asset_id, destroyed_at=record["at"])
    for grant in veil.control.grants():
        if grant.id in record["grants_ended"] and grant.status in LIVE:
            veil.control.set_status(grant.id, GrantStatus.REVOKED, caller, "asset destroyed")
    return dict(record, receipt={"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash})


def _card_record(permit: Permit, kind: str) -> Callable[[StoredAsset], tuple[dict, str]]:
    def record(stored: StoredAsset) -> tuple[dict, str]:
        card = canonical_json(stored.card.model_dump(mode="json"))
        entry = {
            "type": kind,
            "asset": stored.card.id,
            "version": stored.version,
            "revision": stored.revision,
            "row_count": stored.row_count,
            "card_sha256": hashlib.sha256(card.encode()).hexdigest(),
            "by": permit.caller.id,
            "decision_id": permit.decision.decision_id,
            "at": utc_now(),
        }
        # The version and revision alone repeat once a restore has taken the store back: the
        # ledger would then take the change for the one it recorded before and keep none of
        # it. The entry's digest (its decision is this change's own) keeps each change apart.
        digest = hashlib.sha256(canonical_json(entry).encode()).hexdigest()[:16]
        return entry, asset_entry_key(kind, stored.card.id, stored.version, stored.revision, digest)

    return record
