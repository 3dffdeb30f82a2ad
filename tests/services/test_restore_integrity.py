"""What the start-up re-shred and recovery believe, through the services on real files and a
real ledger: only sealed records kept beside the data, only entries a signed checkpoint
covers, a destruction recorded before it is done, keys that fit the ledger whatever the id,
and a version swap cut short put right."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger import LedgerCorrupt, canonical_json, check_entry, leaf_hash
from ledger.log import MAX_KEY_LENGTH
from ledger.settlements import period_of
from sandbox.store import AssetStore
from services.keys import (
    asset_entry_key,
    load_master_keys,
    reshred_destroyed,
    rotate_master_key,
)
from services.settings import Settings
from tests.services import restored
from tests.support import ROOT

CLAIMS, VISITS = restored.CLAIMS, restored.VISITS


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return restored.demo_home(tmp_path_factory.mktemp("restore-integrity"))


@pytest.fixture
def settings(demo_home: Path, tmp_path: Path) -> Settings:
    return restored.copied(demo_home, tmp_path)


def _back_up(settings: Settings, backup: Path) -> None:
    for part in ("keys", "assets"):
        shutil.copytree(settings.home / part, backup / part)


def _put_back(settings: Settings, backup: Path) -> None:
    """The keys and assets restored from the backup, as the runbook's copy does."""
    for part in ("keys", "assets"):
        shutil.rmtree(settings.home / part)
        shutil.copytree(backup / part, settings.home / part)


def _killed_running(script: str, settings: Settings) -> None:
    """Run `script` on the home in a process of its own, which must end killed (SIGKILL)."""
    killed = subprocess.run(
        [sys.executable, "-c", script, str(settings.home)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr


def _key(settings: Settings, asset_id: str) -> Path:
    return settings.keyring_root / f"{asset_id}.wrapped"


def _insert_row(settings: Settings, entry: dict, key: str) -> None:
    """A row written straight into the ledger's database, as by someone without its signing
    key: right leaf hash, no checkpoint."""
    data = canonical_json({**entry, "idempotency_key": key})
    with sqlite3.connect(settings.home / "ledger.db") as db:
        (size,) = db.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries").fetchone()
        db.execute(
            "INSERT INTO ledger_entries (idx, idempotency_key, data, leaf_hash, created_at, period)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (size, key, data, leaf_hash(data.encode()).hex(), datetime.now(UTC).isoformat(),
             period_of(entry)),
        )  # fmt: skip


def _forged_destruction(settings: Settings, asset_id: str) -> None:
    meta = json.loads((settings.assets_root / asset_id / "meta.json").read_text())
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = {"type": "asset_destroyed", "asset": asset_id, "provider": meta["card"]["provider"],
             "registered_at": meta["registered_at"], "method": "crypto_shred", "at": at}  # fmt: skip
    _insert_row(settings, entry, f"destroy:{asset_id}:{meta['registered_at']}")


def test_a_forged_change_record_in_a_restored_folder_is_never_written(
    settings: Settings, tmp_path: Path
) -> None:
    _back_up(settings, tmp_path / "backup")
    with restored.serving(settings) as veil:
        restored.destroy(veil, CLAIMS)
    _put_back(settings, tmp_path / "backup")
    # Beside the restored data: a registration "still to be written", and a meta.json to match.
    folder = settings.assets_root / CLAIMS
    forged_key = f"asset:{CLAIMS}:forged"
    later = datetime.now(UTC).isoformat()
    kept = {"entry": {"type": "asset_registered", "asset": CLAIMS, "provider": "insurer",
                      "at": later}, "key": forged_key}  # fmt: skip
    (folder / "unrecorded.json").write_text(json.dumps(kept))
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps(dict(meta, registered_at=later)))

    with restored.serving(settings) as veil:
        assert veil.ledger.find(forged_key) is None
        assert CLAIMS in veil.enclave.store.destroyed()
        assert CLAIMS not in veil.enclave.store.cards()
    assert not _key(settings, CLAIMS).exists() and not folder.exists()


def test_a_registration_on_its_way_after_a_destruction_is_kept(
    settings: Settings, tmp_path: Path
) -> None:
    card, data = restored.demo_claims(tmp_path)
    key = f"asset:{CLAIMS}:again"
    with restored.serving(settings) as veil:
        restored.destroy(veil, CLAIMS)
        restored.registered_on_its_way(veil, card, data, key)
        assert reshred_destroyed(veil.enclave.store, veil.ledger, "startup") == []
        assert _key(settings, CLAIMS).exists()
    # The next start writes its entry, then serves it.
    with restored.serving(settings) as veil:
        assert veil.ledger.find(key) is not None
        assert veil.enclave.store.get(CLAIMS).version == 2


# A destruction through the services, in a process killed once its entry is written, as the
# store is about to shred.
DESTROY_THEN_DIE = """
import os, signal, sys
from pathlib import Path
from sandbox.store import AssetStore
from services import assets
from services.authorisation import assets_resource, authorise
from services.metrics import Metrics
from services.runtime import open_services
from services.settings import Settings

veil = open_services(Settings(home=Path(sys.argv[1])), Metrics())
operator = veil.control.principal("operator")
stored = veil.enclave.store.get("insurance.claims")
resource = assets_resource(veil, [stored.card])
permit = authorise(veil, caller=operator, scope="asset:destroy", resource=resource)
AssetStore.destroy = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
assets.destroy_asset(veil, permit=permit, asset=stored, reason="term ended")
"""


def test_a_destruction_on_record_whose_process_died_is_done_at_the_next_start(
    settings: Settings,
) -> None:
    _killed_running(DESTROY_THEN_DIE, settings)
    assert _key(settings, CLAIMS).exists()  # died before the shred

    with restored.serving(settings) as veil:
        entries = [(i, e) for i, e in veil.ledger.replay() if e["type"].startswith("asset_")]
        assert CLAIMS in veil.enclave.store.destroyed()
        assert CLAIMS not in veil.enclave.store.cards()
        tombstone = veil.enclave.store.destroyed()[CLAIMS]
    ((index, destroyed),) = [(i, e) for i, e in entries if e["type"] == "asset_destroyed"]
    reshredded = [e for _, e in entries if e["type"] == "asset_reshredded"]
    assert [(e["asset"], e["destruction_index"], e["trigger"]) for e in reshredded] == [
        (CLAIMS, index, "startup")
    ]
    assert tombstone.destroyed_at == destroyed["at"]
    assert not _key(settings, CLAIMS).exists()
    assert not (settings.assets_root / CLAIMS).exists()


def test_rows_no_checkpoint_covers_do_not_hide_a_destruction_one_covers(
    settings: Settings, tmp_path: Path
) -> None:
    _back_up(settings, tmp_path / "backup")
    with restored.serving(settings) as veil:
        restored.destroy(veil, CLAIMS)
    _put_back(settings, tmp_path / "backup")
    # After the destruction, a row without a checkpoint: the log no longer verifies as a whole.
    _insert_row(settings, {"type": "note", "at": "2030-01-01T00:00:00Z"}, "note:junk")

    # The ledger refuses to sign over the row, so the re-shred's entry cannot be written first
    # and nothing is served at all until an operator takes the row out.
    with pytest.raises(RuntimeError, match="not serving"), restored.serving(settings):
        pass
    with sqlite3.connect(settings.home / "ledger.db") as db:
        db.execute("DELETE FROM ledger_entries WHERE idempotency_key = 'note:junk'")
    with restored.serving(settings) as veil:
        assert CLAIMS in veil.enclave.store.destroyed()
        assert VISITS in veil.enclave.store.cards()
    assert not _key(settings, CLAIMS).exists() and _key(settings, VISITS).exists()


def test_a_forged_destruction_is_not_signed_over_by_the_next_append(settings: Settings) -> None:
    _forged_destruction(settings, VISITS)
    with restored.serving(settings) as veil:
        assert VISITS in veil.enclave.store.cards()
        with pytest.raises(LedgerCorrupt):
            veil.ledger.append({"type": "probe"}, idempotency_key="probe:1")
    with restored.serving(settings) as veil:
        assert VISITS in veil.enclave.store.cards()


def test_sealed_records_outlast_a_master_key_rotation(settings: Settings, tmp_path: Path) -> None:
    card, data = restored.demo_claims(tmp_path)
    key = f"asset:{CLAIMS}:again"
    with restored.serving(settings) as veil:
        restored.destroy(veil, CLAIMS)
        restored.registered_on_its_way(veil, card, data, key)
    rotate_master_key(settings)  # the replaced master key is gone once it returns

    store = AssetStore(settings.assets_root, settings.keyring_root, *load_master_keys(settings))
    assert store.destructions_note() is not None
    assert store.unsealed() == []
    with restored.serving(settings) as veil:
        assert veil.ledger.find(key) is not None
        assert veil.enclave.store.get(CLAIMS).version == 2


@pytest.mark.parametrize("length", [3, 181, 200, 236])
def test_every_key_built_from_an_asset_id_fits_the_ledger(length: int) -> None:
    asset_id = "a." + "b" * (length - 2)
    keys = [
        asset_entry_key("asset", asset_id, datetime.now(UTC).isoformat()),
        asset_entry_key("asset_version_registered", asset_id, 10**6, 10**6, "f" * 16),
        asset_entry_key("destroy", asset_id, datetime.now(UTC).isoformat()),
        asset_entry_key("reshred", asset_id, 10**12, "f" * 64),
    ]
    for key in keys:
        assert len(key) <= MAX_KEY_LENGTH
        check_entry({"type": "asset_probe"}, key)
    assert asset_entry_key("destroy", "a.b", "t") == "destroy:a.b:t"  # as before for short ids
    assert asset_entry_key("reshred", asset_id, 1, "f" * 64) != asset_entry_key(
        "reshred", asset_id + "c", 1, "f" * 64
    )


# A new data version of hospital.visits through the services, in a process killed as its old
# data folder has been put aside and the new one is about to take its place.
VERSION_THEN_DIE = restored.new_version_killed(
    "rename", 'Path(source).name.startswith(".staging-")'
)


def test_a_version_cut_short_with_its_old_folder_put_aside_keeps_the_old_version(
    settings: Settings,
) -> None:
    _killed_running(VERSION_THEN_DIE, settings)
    assert not (settings.assets_root / VISITS).exists()  # put aside, nothing in its place

    with restored.serving(settings) as veil:
        assert veil.enclave.store.get(VISITS).version == 1
        opened = {a.asset_id for a in veil.enclave.store.attachments()}
        assert [e for _, e in veil.ledger.replay() if e["type"] == "asset_version_registered"] == []
    assert opened == {VISITS, CLAIMS}
    assert not (settings.keyring_root / f".{VISITS}.wrapped.next").exists()
    assert not list(settings.assets_root.glob(".retired-*"))
