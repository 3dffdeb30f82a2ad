"""The encrypted asset store: one DuckDB file per asset under its own wrapped data key."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sandbox import keys
from sandbox.cards import AssetCard, parse_card
from sandbox.changes import ChangeMarker
from sandbox.errors import AssetExists, AssetNotFound, CardInvalid, Violation
from sandbox.ingest import ingest

# Under the store's root: what is left of destroyed assets (their cards, never data or keys).
TOMBSTONES = ".destroyed"
# Under the root: held by whichever process changes the store, and replaced after each change.
LOCK_FILE = ".lock"
MARKER_FILE = ".changed"


@dataclass(frozen=True)
class Attachment:
    """What a worker needs to open one asset read-only."""

    asset_id: str
    catalog: str
    path: Path
    key: str


@dataclass(frozen=True)
class StoredAsset:
    """A registered asset: its card, its data's size and when this data version came.

    `version` counts data versions (each a new registration of the id); `revision` counts
    card changes within one data version, which never touch the data.
    """

    card: AssetCard
    row_count: int
    registered_at: str
    version: int = 1
    revision: int = 1
    # Measures stored clamped to their bounds and DOUBLEs canonical (`guard.bounds`); data
    # stored before that was done is bounded on every scan instead.
    bounded: bool = False
    # The card's privacy.max_rows_per_unit as this data version was checked against it.
    rows_per_unit: int | None = None


@dataclass(frozen=True)
class DestroyedAsset:
    """A destroyed asset as the catalogue remembers it: its card and when it was shredded."""

    card: AssetCard
    row_count: int
    registered_at: str
    destroyed_at: str
    version: int = 1


def catalog_name(asset_id: str) -> str:
    """The catalog an asset is attached as: distinct for distinct ids, whatever they contain."""
    return "asset_" + hashlib.sha256(asset_id.encode()).hexdigest()[:24]


class AssetStore:
    """Registers, lists, opens and destroys assets: encrypted data under `root`, each data key
    wrapped by the master key in `keyring`, kept apart so a backup of the data holds no key.

    Several processes may share one store: a change is made under an exclusive file lock and
    announced through a change marker, and every read first reloads if another process has
    announced one. A reload that races a change can only miss an asset for a moment (keys go
    first on destruction and last on registration), never show a destroyed one."""

    def __init__(
        self, root: Path, keyring: Path, master_key: bytes, previous_master_key: bytes | None = None
    ) -> None:
        self.root = root
        self.keyring = keyring
        self.root.mkdir(parents=True, exist_ok=True)
        self.keyring.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._master_key = master_key
        # Until a rotation has wrapped every data key anew, the replaced key still opens some.
        self._master_keys = [master_key] + ([previous_master_key] if previous_master_key else [])
        self._lock = threading.RLock()
        self._marker = ChangeMarker(self.root / MARKER_FILE)
        self._generation = 0
        self._tidy()
        self._assets, self._destroyed = self._read()

    @property
    def generation(self) -> int:
        """Goes up whenever this process sees the assets change, here or in another process."""
        self._refresh()
        return self._generation

    def _key_path(self, asset_id: str) -> Path:
        return self.keyring / f"{asset_id}.wrapped"

    def _refresh(self) -> None:
        if self._marker.changed():
            with self._lock:
                self._assets, self._destroyed = self._read()
                self._generation += 1

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """The one writer across processes: fresh state in, the change announced on the way out."""
        with self._lock, open(self.root / LOCK_FILE, "a+b") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            self._refresh()
            try:
                yield
            finally:
                # Swapped whole, never edited in place: readers hold no lock.
                self._assets, self._destroyed = self._read()
                self._generation += 1
                self._marker.announce()

    def _tidy(self) -> None:
        """Clear what a crash mid-change left, unless another process is changing the store now
        (its staging folder looks the same); the next start clears it then."""
        with open(self.root / LOCK_FILE, "a+b") as lock_file:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            for leftover in [*self.root.glob(".staging-*"), *self.root.glob(".retired-*")]:
                shutil.rmtree(leftover, ignore_errors=True)
            for meta_path in self.root.glob("*/meta.json"):
                folder = meta_path.parent
                # Stores made before the keyring kept each wrapped key beside its data.
                if (folder / "key.wrapped").exists() and not self._key_path(folder.name).exists():
                    os.replace(folder / "key.wrapped", self._key_path(folder.name))

    def _read(self) -> tuple[dict[str, StoredAsset], dict[str, DestroyedAsset]]:
        """The assets and tombstones on disk now."""
        assets: dict[str, StoredAsset] = {}
        destroyed: dict[str, DestroyedAsset] = {}
        for tombstone in sorted((self.root / TOMBSTONES).glob("*.json")):
            meta = json.loads(tombstone.read_text())
            card = parse_card(meta["card"])
            destroyed[card.id] = DestroyedAsset(
                card,
                meta["row_count"],
                meta["registered_at"],
                meta["destroyed_at"],
                meta.get("version", 1),
            )
        for meta_path in sorted(self.root.glob("*/meta.json")):
            folder = meta_path.parent
            # No key, no asset: data restored from a backup after destruction stays dark.
            if folder.name.startswith(".") or not self._key_path(folder.name).exists():
                continue
            try:
                meta = json.loads(meta_path.read_text())
            except FileNotFoundError:  # replaced by a new version as we read
                continue
            card = parse_card(meta["card"])
            assets[card.id] = StoredAsset(
                card,
                meta["row_count"],
                meta["registered_at"],
                meta.get("version", 1),
                meta.get("revision", 1),
                meta.get("bounded", False),
                meta.get("rows_per_unit"),
            )
            destroyed.pop(card.id, None)
        return assets, destroyed

    def list(self) -> list[StoredAsset]:
        self._refresh()
        assets = self._assets
        return [assets[k] for k in sorted(assets)]

    def get(self, asset_id: str) -> StoredAsset:
        self._refresh()
        stored = self._assets.get(asset_id)
        if stored is None:
            raise AssetNotFound("no such asset", [Violation("unknown_asset")])
        return stored

    def destroyed(self) -> dict[str, DestroyedAsset]:
        self._refresh()
        return dict(self._destroyed)

    def cards(self) -> dict[str, AssetCard]:
        self._refresh()
        return {asset_id: stored.card for asset_id, stored in self._assets.items()}

    def attachments(self) -> list[Attachment]:
        self._refresh()
        found = (self._attachment(asset_id) for asset_id in sorted(self._assets))
        return [attachment for attachment in found if attachment is not None]

    def _attachment(self, asset_id: str) -> Attachment | None:
        """None for an asset whose key another process has just shredded."""
        folder = self.root / asset_id
        try:
            wrapped = self._key_path(asset_id).read_bytes()
        except FileNotFoundError:
            return None
        data_key = keys.unwrap_any(self._master_keys, wrapped, asset_id)
        return Attachment(
            asset_id, catalog_name(asset_id), folder / "data.duckdb", keys.duckdb_key(data_key)
        )

    def rewrap(self) -> int:
        """Wrap every data key under the current master key, one file replaced at a time, so
        the replaced master key can go; returns how many keys were wrapped."""
        with self._changing():
            paths = sorted(self.keyring.glob("*.wrapped"))
            for path in paths:
                asset_id = path.name.removesuffix(".wrapped")
                data_key = keys.unwrap_any(self._master_keys, path.read_bytes(), asset_id)
                fresh = path.with_name(f".{path.name}.rewrapped")
                fresh.unlink(missing_ok=True)
                _write_private(fresh, keys.wrap(self._master_key, data_key, asset_id))
                os.replace(fresh, path)
            return len(paths)

    def history(self, asset_id: str) -> list[dict]:
        """Every card this asset has had, oldest first: version, revision, time and card."""
        self.get(asset_id)
        meta = json.loads((self.root / asset_id / "meta.json").read_text())
        return meta.get("history", [])

    def register(self, card_raw: str | bytes | dict, upload: Path) -> StoredAsset:
        """Validate card and file, ingest encrypted; on any failure nothing remains. An id
        destroyed before comes back as the next version."""
        card = parse_card(card_raw)
        with self._changing():
            if card.id in self._assets or (self.root / card.id).exists():
                raise AssetExists("an asset with this id is already registered")
            earlier = self._destroyed.get(card.id)
            version = earlier.version + 1 if earlier else 1
            staging, wrapped, stored = self._stage(card, upload, version, [])
            try:
                self._key_path(card.id).unlink(missing_ok=True)  # a destroyed predecessor's
                _write_private(self._key_path(card.id), wrapped)
                os.rename(staging, self.root / card.id)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                if not (self.root / card.id).exists():
                    self._key_path(card.id).unlink(missing_ok=True)
                raise
            (self.root / TOMBSTONES / f"{card.id}.json").unlink(missing_ok=True)
            return stored

    def register_version(self, card_raw: str | bytes | dict, upload: Path) -> StoredAsset:
        """A new data version of a registered asset: new data under a new key, the next version
        number. The old version's key is shredded as the new one takes its place."""
        card = parse_card(card_raw)
        with self._changing():
            current = self.get(card.id)
            _check_same_owner(current.card, card)
            history = self.history(card.id)
            staging, wrapped, stored = self._stage(card, upload, current.version + 1, history)
            retired = self.root / f".retired-{uuid.uuid4().hex}"
            pending_key = self.keyring / f".{card.id}.wrapped.next"
            try:
                pending_key.unlink(missing_ok=True)  # left by a crash mid-swap
                _write_private(pending_key, wrapped)
                os.rename(self.root / card.id, retired)
                os.rename(staging, self.root / card.id)
                os.replace(pending_key, self._key_path(card.id))
            except BaseException:
                if not (self.root / card.id).exists() and retired.exists():
                    os.rename(retired, self.root / card.id)
                shutil.rmtree(staging, ignore_errors=True)
                pending_key.unlink(missing_ok=True)
                raise
            shutil.rmtree(retired, ignore_errors=True)
            return stored

    def update_card(self, card_raw: str | bytes | dict) -> StoredAsset:
        """Change what a card says about its asset, never its data: the columns, owner and id
        stay; the revision goes up and the old card stays in the history."""
        card = parse_card(card_raw)
        with self._changing():
            current = self.get(card.id)
            _check_same_owner(current.card, card)
            if card.columns != current.card.columns:
                raise CardInvalid(
                    "columns change only with a new data version",
                    [Violation("columns_changed")],
                )
            if card.privacy.max_rows_per_unit != current.card.privacy.max_rows_per_unit:
                raise CardInvalid(
                    "privacy.max_rows_per_unit changes only with a new data version, which is "
                    "checked against it",
                    [Violation("rows_per_unit_changed", "privacy.max_rows_per_unit")],
                )
            stored = StoredAsset(
                card, current.row_count, current.registered_at, current.version,
                current.revision + 1, current.bounded, current.rows_per_unit,
            )  # fmt: skip
            history = self.history(card.id)
            _write_meta(self.root / card.id, stored, history)
            return stored

    def _stage(
        self, card: AssetCard, upload: Path, version: int, history: list[dict]
    ) -> tuple[Path, bytes, StoredAsset]:
        """Ingest `upload` under a new data key into a staging folder; returns it, the wrapped
        key and the asset as it will stand."""
        staging = self.root / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            data_key = keys.new_data_key()
            row_count = ingest(card, upload, staging / "data.duckdb", data_key)
            stored = StoredAsset(
                card, row_count, datetime.now(UTC).isoformat(), version, 1, bounded=True,
                rows_per_unit=card.privacy.max_rows_per_unit,
            )  # fmt: skip
            _write_meta(staging, stored, history)
            return staging, keys.wrap(self._master_key, data_key, card.id), stored
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def destroy(self, asset_id: str) -> DestroyedAsset:
        """Crypto-shred: the wrapped data key goes first, so no copy of the data opens again;
        then the ciphertext. The card stays as a tombstone for the catalogue."""
        with self._changing():
            stored = self.get(asset_id)
            self._key_path(asset_id).unlink()
            gone = DestroyedAsset(
                stored.card,
                stored.row_count,
                stored.registered_at,
                datetime.now(UTC).isoformat(),
                stored.version,
            )
            tombstones = self.root / TOMBSTONES
            tombstones.mkdir(exist_ok=True)
            tombstone = {
                "card": stored.card.model_dump(mode="json"),
                "row_count": gone.row_count,
                "registered_at": gone.registered_at,
                "destroyed_at": gone.destroyed_at,
                "version": gone.version,
            }
            (tombstones / f"{asset_id}.json").write_text(json.dumps(tombstone, ensure_ascii=False))
            shutil.rmtree(self.root / asset_id, ignore_errors=True)
            return gone


def _check_same_owner(current: AssetCard, new: AssetCard) -> None:
    if new.provider != current.provider:
        raise CardInvalid("an asset's provider cannot change", [Violation("provider_changed")])


def _write_meta(folder: Path, stored: StoredAsset, history: list[dict]) -> None:
    """The asset's card and counts, with every card it has had; replaced in one step."""
    card = stored.card.model_dump(mode="json")
    entry = {"version": stored.version, "revision": stored.revision, "at": datetime.now(UTC)
             .isoformat(), "card": card}  # fmt: skip
    meta = {
        "card": card,
        "row_count": stored.row_count,
        "registered_at": stored.registered_at,
        "version": stored.version,
        "revision": stored.revision,
        "bounded": stored.bounded,
        "rows_per_unit": stored.rows_per_unit,
        "history": [*history, entry],
    }
    temporary = folder / "meta.json.next"
    temporary.write_text(json.dumps(meta, ensure_ascii=False))
    os.replace(temporary, folder / "meta.json")


def _write_private(path: Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
