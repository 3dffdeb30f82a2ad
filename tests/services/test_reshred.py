"""Shredding again what a restore brought back, through the services on real files and a real
ledger: the reading of the ledger's destructions goes on from its note, a registration after a
destruction is never taken for the destroyed data, and a key restore keeps the home's keys."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sandbox.cards import AssetCard
from sandbox.store import DESTRUCTIONS_FILE
from services import assets
from services.authorisation import authorise, card_resource
from services.keys import backup_keys, reshred_destroyed, restore_keys, rotate_master_key
from services.runtime import Services
from services.settings import Settings
from tests.services import restored

CLAIMS = restored.CLAIMS


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return restored.demo_home(tmp_path_factory.mktemp("reshred"))


@pytest.fixture
def settings(demo_home: Path, tmp_path: Path) -> Settings:
    return restored.copied(demo_home, tmp_path)


def _register_again(veil: Services, card: AssetCard, data: Path) -> None:
    """Register as a provider does over the API, its ledger entry with it."""
    provider = veil.control.principal(card.provider)
    resource = card_resource(card, status="new")
    permit = authorise(veil, caller=provider, scope="asset:register", resource=resource)
    assets.register_asset(veil, permit=permit, card=card, data=data)


def _reshreds(veil: Services) -> list[dict]:
    return [data for _, data in veil.ledger.replay() if data["type"] == "asset_reshredded"]


def _copy(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)


@pytest.mark.parametrize("note", ["kept", "unmatched"])
def test_the_reading_goes_on_from_its_note_or_starts_again(
    settings: Settings, tmp_path: Path, note: str
) -> None:
    home = settings.home
    _copy(home / "keys", tmp_path / "keys-backup")
    _copy(home / "assets", tmp_path / "assets-backup")
    with restored.serving(settings) as veil:
        index = restored.destroy(veil, CLAIMS)
        assert reshred_destroyed(veil.enclave.store, veil.ledger, "startup") == []
        kept = json.loads((home / "assets" / DESTRUCTIONS_FILE).read_text())
        assert kept["size"] == veil.ledger.head()[0] and CLAIMS in kept["assets"]

    _copy(tmp_path / "keys-backup", home / "keys")
    _copy(tmp_path / "assets-backup", home / "assets")
    if note == "unmatched":  # a note from another log: reading starts from the first entry
        kept = dict(kept, leaf_hash="00" * 32, assets={})
    (home / "assets" / DESTRUCTIONS_FILE).write_text(json.dumps(kept))

    with restored.serving(settings) as veil:
        assert CLAIMS not in veil.enclave.store.cards()
        assert CLAIMS in veil.enclave.store.destroyed()
        shredded = [(e["asset"], e["destruction_index"]) for e in _reshreds(veil)]
        assert shredded == [(CLAIMS, index)]
        # Read up to the log's end; the re-shred's own entry came after.
        noted = json.loads((home / "assets" / DESTRUCTIONS_FILE).read_text())
        assert noted["size"] == veil.ledger.head()[0] - 1


def test_a_registration_after_the_destruction_is_kept(settings: Settings, tmp_path: Path) -> None:
    backup = tmp_path / "keys-backup"
    backup_keys(settings, backup)
    card, data = restored.demo_claims(tmp_path)
    with restored.serving(settings) as veil:
        restored.destroy(veil, CLAIMS)
        # Registered again in the store with its sealed record, its ledger entry not yet
        # written: a registration on its way, not destroyed data.
        entry, key = {"type": "asset_registered", "asset": CLAIMS}, f"asset:{CLAIMS}:again"
        veil.enclave.store.register(
            card.model_dump(mode="json"), data, lambda _: {"entry": entry, "key": key}
        )
        assert reshred_destroyed(veil.enclave.store, veil.ledger, "startup") == []
        veil.ledger.append(entry, idempotency_key=key)
        veil.enclave.store.recorded(CLAIMS)
        assert veil.enclave.store.get(CLAIMS).version == 2
        veil.enclave.store.destroy(CLAIMS)
        _register_again(veil, card, data)
        assert reshred_destroyed(veil.enclave.store, veil.ledger, "startup") == []
    current = (settings.keyring_root / f"{CLAIMS}.wrapped").read_bytes()

    # The backup's key for the asset is an older version's: kept out, present or lost.
    report = restore_keys(settings, backup)
    assert report["kept"] == sorted(["hospital.visits", CLAIMS]) and report["reshredded"] == []
    assert (settings.keyring_root / f"{CLAIMS}.wrapped").read_bytes() == current
    (settings.keyring_root / f"{CLAIMS}.wrapped").unlink()
    report = restore_keys(settings, backup)
    assert report["stale"] == [CLAIMS] and report["wrapped_keys"] == []
    assert not (settings.keyring_root / f"{CLAIMS}.wrapped").exists()


def test_a_restore_under_a_rotated_master_key_wraps_the_keys_anew(
    settings: Settings, tmp_path: Path
) -> None:
    backup = tmp_path / "keys-backup"
    backup_keys(settings, backup)
    rotate_master_key(settings)
    (settings.keyring_root / "hospital.visits.wrapped").unlink()

    report = restore_keys(settings, backup)
    assert report["wrapped_keys"] == ["hospital.visits"] and report["kept"] == [CLAIMS]
    assert report["rewrapped"] == 2 and report["unopenable"] == []
    assert not settings.previous_master_key_path.exists()
    with restored.serving(settings) as veil:
        # Opened under the home's master key alone: the restored key was wrapped anew.
        opened = {a.asset_id for a in veil.enclave.store.attachments()}
        assert opened == {"hospital.visits", CLAIMS}
