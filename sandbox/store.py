"""The encrypted asset store: one DuckDB file per asset under its own wrapped data key."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sandbox import keys
from sandbox.cards import ASSET_ID, AssetCard, parse_card
from sandbox.changes import ChangeMarker
from sandbox.errors import AssetExists, AssetNotFound, CardInvalid, Violation
from sandbox.ingest import ingest

# Under the store's root: what is left of destroyed assets (their cards, never data or keys).
TOMBSTONES = ".destroyed"
# Under the root: held by whichever process changes the store, and replaced after each change.
LOCK_FILE = ".lock"
MARKER_FILE = ".changed"
# Under the root: what the ledger said of destructions up to some entry (services/keys.py).
DESTRUCTIONS_FILE = ".destructions.json"
KEY_SUFFIX = ".wrapped"
# In an asset's folder: the record of its last change, until the caller has it in the ledger.
# An asset with one is not served: no asset is usable before its change is on record, and a
# crash between the two leaves the record here to be written at the next start.
UNRECORDED = "unrecorded.json"
# Beside a key during a version swap (`register_version`); restored with a backup, it is a key too.
PENDING_SUFFIX = ".wrapped.next"
# In an asset's folder: the SHA-256 of the wrapped key it was stored with, so a version swap cut
# short between the folder and its key is finished (or undone) by the next process.
FOLDER_KEY = "key.sha256"
# The field of a kept change record and of the destructions note holding its seal, and what
# each seal is for (sandbox/keys.py): files beside the data are believed only when sealed.
SEAL_FIELD = "seal"
CHANGE_SEAL = "unrecorded change"
NOTE_SEAL = "destructions note"


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
    # Text dimensions with a domain stored with their codes beside them (`sandbox.codes`).
    coded: bool = False


@dataclass(frozen=True)
class DestroyedAsset:
    """A destroyed asset as the catalogue remembers it: its card and when it was shredded."""

    card: AssetCard
    row_count: int
    registered_at: str
    destroyed_at: str
    version: int = 1


@dataclass(frozen=True)
class Remnant:
    """What of one asset id lies on disk: a wrapped key, a data folder, a tombstone."""

    asset_id: str
    key: bool
    folder: bool
    # The data folder's registration time, when its meta.json can be read.
    registered_at: str | None
    tombstone: bool
    # SHA-256 of the key's and the meta's bytes: names this remnant, so recording its removal
    # twice (a crash between record and removal) names the same thing.
    digest: str
    # The change record kept in the data folder (its ledger entry and key), if it is sealed
    # under a master key: a change whose entry is still to be written.
    kept: dict | None = None


@dataclass(frozen=True)
class Shred:
    """What to remove of a remnant; `destroyed_at` asks for a tombstone from the folder's card
    where none is left (the asset is destroyed, not replaced by a newer registration)."""

    key: bool
    folder: bool
    destroyed_at: str | None = None

    @property
    def removed(self) -> list[str]:
        """What goes, in the words of the destruction's ledger entry."""
        return ["wrapped data key"] * self.key + ["encrypted data file"] * self.folder


# Decides what of a remnant to shred (None: nothing).
Judge = Callable[[Remnant], Shred | None]
# Records a shred durably before it is done; a failure leaves the remnant where it was.
Record = Callable[[Remnant, Shred], None]
# What a change's caller will record of it (its ledger entry), given the asset as it stands.
ChangeRecord = Callable[[StoredAsset], dict]
# The master key and the one it replaces mid-rotation, as they are on disk now.
MasterKeys = Callable[[], tuple[bytes, bytes | None]]


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
        self,
        root: Path,
        keyring: Path,
        master_key: bytes,
        previous_master_key: bytes | None = None,
        master_keys: MasterKeys | None = None,
    ) -> None:
        self.root = root
        self.keyring = keyring
        self.root.mkdir(parents=True, exist_ok=True)
        self.keyring.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Read again before each change and after another process's: a master key rotated
        # while this process serves is in use here before any key is wrapped under it alone.
        self._reload_keys = master_keys
        self._use_keys(master_key, previous_master_key)
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

    def _use_keys(self, master_key: bytes, previous_master_key: bytes | None) -> None:
        self._master_key = master_key
        # Until a rotation has wrapped every data key anew, the replaced key still opens some.
        self._master_keys = [master_key] + ([previous_master_key] if previous_master_key else [])

    def _reload(self) -> None:
        if self._reload_keys is not None:
            self._use_keys(*self._reload_keys())

    def _key_path(self, asset_id: str) -> Path:
        return self.keyring / f"{asset_id}.wrapped"

    def _refresh(self) -> None:
        if self._marker.changed():
            with self._lock:
                self._reload()
                self._assets, self._destroyed = self._read()
                self._generation += 1

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """The one writer across processes: fresh state in, the change announced on the way out."""
        with self._lock, open(self.root / LOCK_FILE, "a+b") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            self._reload()
            # A process that died mid-change left its work here; no change is under way now.
            self._recover()
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
            self._recover()
            for meta_path in self.root.glob("*/meta.json"):
                folder = meta_path.parent
                # Stores made before the keyring kept each wrapped key beside its data.
                if (folder / "key.wrapped").exists() and not self._key_path(folder.name).exists():
                    os.replace(folder / "key.wrapped", self._key_path(folder.name))

    def _recover(self) -> None:
        """Finish or undo what a change cut short by a crash left; only while holding the
        store's file lock, when no other change can be under way.

        A version swap (`register_version`) puts the old folder aside, the new one in place,
        then the new key (kept beside the old one until then): a folder put aside with none in
        its place goes back; a waiting key whose folder says it is that folder's key takes the
        old key's place; one whose folder names another key is the undone swap's, and goes."""
        for retired in self.root.glob(".retired-*"):
            asset_id = _folder_asset(retired)
            if asset_id is not None and not (self.root / asset_id).exists():
                os.rename(retired, self.root / asset_id)
        for pending in self.keyring.glob(f".*{PENDING_SUFFIX}"):
            asset_id = pending.name[1 : -len(PENDING_SUFFIX)]
            needs = _read_if_there(self.root / asset_id / FOLDER_KEY)
            if needs is None:
                continue  # no folder, or one stored before folders named their key: left as is
            if needs.decode(errors="replace").strip() == _sha256(pending.read_bytes()):
                os.replace(pending, self._key_path(asset_id))
            elif self._key_path(asset_id).exists():
                pending.unlink()
        for leftover in [*self.root.glob(".staging-*"), *self.root.glob(".retired-*")]:
            shutil.rmtree(leftover, ignore_errors=True)
        # A key restore cut short: copies no re-shred would see; the restore is run again.
        for leftover in self.keyring.glob(f".*{KEY_SUFFIX}.restored"):
            leftover.unlink(missing_ok=True)

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
            if (folder / UNRECORDED).exists():
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
                meta.get("coded", False),
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
        try:
            data_key = keys.unwrap_any(self._master_keys, wrapped, asset_id)
        except ValueError:  # wrapped under a master key rotated in since this process looked
            self._reload()
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
            # Sealed anew too, so they still hold once the replaced master key is gone.
            for asset_id, kept in self.unrecorded().items():
                _write_json(self.root / asset_id / UNRECORDED, self._sealed(asset_id, kept))
            note = self.destructions_note()
            if note is not None:
                self.note_destructions(note)
            return len(paths)

    def history(self, asset_id: str) -> list[dict]:
        """Every card this asset has had, oldest first: version, revision, time and card."""
        self.get(asset_id)
        meta = json.loads((self.root / asset_id / "meta.json").read_text())
        return meta.get("history", [])

    def register(
        self, card_raw: str | bytes | dict, upload: Path, record: ChangeRecord | None = None
    ) -> StoredAsset:
        """Validate card and file, ingest encrypted; on any failure nothing remains. An id
        destroyed before comes back as the next version. With `record`, what it returns for the
        asset is kept with it, and the asset unserved, until `recorded` is called."""
        card = parse_card(card_raw)
        with self._changing():
            if card.id in self._assets or (self.root / card.id).exists():
                raise AssetExists("an asset with this id is already registered")
            earlier = self._destroyed.get(card.id)
            version = earlier.version + 1 if earlier else 1
            staging, wrapped, stored = self._stage(card, upload, version, [])
            try:
                self._keep(staging, record, stored)
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

    def register_version(
        self, card_raw: str | bytes | dict, upload: Path, record: ChangeRecord | None = None
    ) -> StoredAsset:
        """A new data version of a registered asset: new data under a new key, the next version
        number. The old version's key is shredded as the new one takes its place. `record` as
        for `register`."""
        card = parse_card(card_raw)
        with self._changing():
            current = self.get(card.id)
            _check_same_owner(current.card, card)
            history = self.history(card.id)
            staging, wrapped, stored = self._stage(card, upload, current.version + 1, history)
            retired = self.root / f".retired-{uuid.uuid4().hex}"
            pending_key = self.keyring / f".{card.id}.wrapped.next"
            try:
                self._keep(staging, record, stored)
                pending_key.unlink(missing_ok=True)  # left by a crash mid-swap
                _write_private(pending_key, wrapped)
                # From here a crash is finished or undone by the next process (`_recover`).
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

    def update_card(
        self, card_raw: str | bytes | dict, record: ChangeRecord | None = None
    ) -> StoredAsset:
        """Change what a card says about its asset, never its data: the columns, owner and id
        stay; the revision goes up and the old card stays in the history. `record` as for
        `register`."""
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
                current.revision + 1, current.bounded, current.rows_per_unit, current.coded,
            )  # fmt: skip
            history = self.history(card.id)
            self._keep(self.root / card.id, record, stored)
            _write_meta(self.root / card.id, stored, history)
            return stored

    def recorded(self, asset_id: str) -> None:
        """The asset's last change is on record: serve it."""
        with self._changing():
            (self.root / asset_id / UNRECORDED).unlink(missing_ok=True)

    def unrecorded(self) -> dict[str, dict]:
        """The records kept with changes whose caller never confirmed them, by asset id: those
        sealed under a master key (`unsealed` names the others)."""
        found = {}
        for asset_id in self._kept_ids():
            kept = self._kept(asset_id)
            if kept is not None:
                found[asset_id] = kept
        return found

    def unsealed(self) -> list[str]:
        """The asset ids whose kept change record is not sealed under any master key: written
        by someone without it (or before records were sealed). Never to be written to the
        ledger; the asset stays unserved while the record is there."""
        return [asset_id for asset_id in self._kept_ids() if self._kept(asset_id) is None]

    def _kept_ids(self) -> list[str]:
        return [
            path.parent.name
            for path in sorted(self.root.glob(f"*/{UNRECORDED}"))
            if not path.parent.name.startswith(".")
        ]

    def _keep(self, folder: Path, record: ChangeRecord | None, stored: StoredAsset) -> None:
        """Keep what `record` says of the change in `folder`, sealed to the asset's id."""
        if record is not None:
            _write_json(folder / UNRECORDED, self._sealed(stored.card.id, record(stored)))

    def _sealed(self, asset_id: str, kept: dict) -> dict:
        body = {k: v for k, v in kept.items() if k != SEAL_FIELD}
        tag = keys.seal(self._master_key, CHANGE_SEAL, _seal_content(asset_id, body))
        return {**body, SEAL_FIELD: tag}

    def _kept(self, asset_id: str) -> dict | None:
        """The asset's kept change record (entry and key) if it is sealed to it; else None."""
        try:
            raw = json.loads((self.root / asset_id / UNRECORDED).read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(raw, dict):
            return None
        body = {k: v for k, v in raw.items() if k != SEAL_FIELD}
        content = _seal_content(asset_id, body)
        if not keys.sealed(self._master_keys, CHANGE_SEAL, content, raw.get(SEAL_FIELD)):
            return None
        if not isinstance(body.get("entry"), dict) or not isinstance(body.get("key"), str):
            return None
        return body

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
                rows_per_unit=card.privacy.max_rows_per_unit, coded=True,
            )  # fmt: skip
            _write_meta(staging, stored, history)
            wrapped = keys.wrap(self._master_key, data_key, card.id)
            (staging / FOLDER_KEY).write_text(_sha256(wrapped))
            return staging, wrapped, stored
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def destroy(self, asset_id: str, destroyed_at: str | None = None) -> DestroyedAsset:
        """Crypto-shred: the wrapped data key goes first, so no copy of the data opens again;
        then the ciphertext. The card stays as a tombstone for the catalogue, destroyed at
        `destroyed_at` (the time the destruction was recorded; now by default)."""
        with self._changing():
            stored = self.get(asset_id)
            self._key_path(asset_id).unlink()
            gone = DestroyedAsset(
                stored.card,
                stored.row_count,
                stored.registered_at,
                destroyed_at or datetime.now(UTC).isoformat(),
                stored.version,
            )
            self._write_tombstone(
                asset_id,
                {
                    "card": stored.card.model_dump(mode="json"),
                    "row_count": gone.row_count,
                    "registered_at": gone.registered_at,
                    "destroyed_at": gone.destroyed_at,
                    "version": gone.version,
                },
            )
            shutil.rmtree(self.root / asset_id, ignore_errors=True)
            return gone

    def _write_tombstone(self, asset_id: str, tombstone: dict) -> None:
        tombstones = self.root / TOMBSTONES
        tombstones.mkdir(exist_ok=True)
        temporary = tombstones / f".{asset_id}.json.next"
        temporary.write_text(json.dumps(tombstone, ensure_ascii=False))
        os.replace(temporary, tombstones / f"{asset_id}.json")

    def destructions_note(self) -> dict | None:
        """What `note_destructions` last kept, if it can be read and its seal holds (a note
        written by anyone without the master key is no note)."""
        try:
            note = json.loads((self.root / DESTRUCTIONS_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(note, dict):
            return None
        body = {k: v for k, v in note.items() if k != SEAL_FIELD}
        content = _seal_content(DESTRUCTIONS_FILE, body)
        if not keys.sealed(self._master_keys, NOTE_SEAL, content, note.get(SEAL_FIELD)):
            return None
        return body

    def note_destructions(self, note: dict) -> None:
        """Keep what the caller read of the ledger's destructions, sealed under the master key,
        so the next reading starts where this one stopped; replaced whole. It sits with the
        data, so a restored copy of the data brings an older note back and the next reading
        starts earlier."""
        body = {k: v for k, v in note.items() if k != SEAL_FIELD}
        tag = keys.seal(self._master_key, NOTE_SEAL, _seal_content(DESTRUCTIONS_FILE, body))
        temporary = self.root / f".{DESTRUCTIONS_FILE}.{uuid.uuid4().hex}"
        temporary.write_text(json.dumps({**body, SEAL_FIELD: tag}, ensure_ascii=False))
        os.replace(temporary, self.root / DESTRUCTIONS_FILE)

    def wrapped_keys(self) -> dict[str, bytes]:
        """Every wrapped data key in the keyring, by asset id: what a key backup holds."""
        found = {}
        for path in sorted(self.keyring.glob(f"*{KEY_SUFFIX}")):
            if not path.name.startswith("."):
                found[path.name.removesuffix(KEY_SUFFIX)] = path.read_bytes()
        return found

    def unopenable(self) -> list[str]:
        """The asset ids whose wrapped key unwraps under none of this store's master keys."""
        failed = []
        for asset_id, wrapped in self.wrapped_keys().items():
            try:
                keys.unwrap_any(self._master_keys, wrapped, asset_id)
            except ValueError:
                failed.append(asset_id)
        return failed

    def reshred(self, judge: Judge, record: Record) -> list[tuple[Remnant, Shred]]:
        """Shred again what `judge` picks among the remnants on disk (keys, data folders, also
        those the store's view hides), each recorded first; returns what was shredded."""
        if not any(_wanted(judge(remnant)) for remnant in self._remnants()):
            return []  # nothing came back: no change for every process to reload
        with self._changing():
            return self._reshred(judge, record)

    def restore_keys(
        self, wrapped: Mapping[str, bytes], judge: Judge, record: Record
    ) -> list[tuple[Remnant, Shred]]:
        """Put wrapped data keys back, then shred again what `judge` picks, in one change: no
        process sees a restored key of a destroyed asset in between."""
        with self._changing():
            for asset_id, content in wrapped.items():
                restored = self.keyring / f".{asset_id}{KEY_SUFFIX}.restored"
                restored.unlink(missing_ok=True)  # left by a crash mid-restore
                _write_private(restored, content)
                os.replace(restored, self._key_path(asset_id))
            return self._reshred(judge, record)

    def _reshred(self, judge: Judge, record: Record) -> list[tuple[Remnant, Shred]]:
        done = []
        for remnant in self._remnants():
            shred = judge(remnant)
            if shred is None or not _wanted(shred):
                continue
            record(remnant, shred)
            self._shred(remnant, shred)
            done.append((remnant, shred))
        return done

    def _remnants(self) -> list[Remnant]:
        """Every asset id with a key or a data folder on disk, read from disk, not the view;
        a file gone as it is read (a change in another process) counts as absent."""
        pending = {
            path.name[1 : -len(PENDING_SUFFIX)] for path in self.keyring.glob(f".*{PENDING_SUFFIX}")
        }
        ids = {
            path.name.removesuffix(KEY_SUFFIX)
            for path in self.keyring.glob(f"*{KEY_SUFFIX}")
            if not path.name.startswith(".")
        }
        ids |= pending
        ids |= {p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")}
        found = []
        for asset_id in sorted(ids):
            key_paths = [self._key_path(asset_id), self.keyring / f".{asset_id}{PENDING_SUFFIX}"]
            present = [content for content in map(_read_if_there, key_paths) if content is not None]
            meta = _read_if_there(self.root / asset_id / "meta.json") or b""
            digest = hashlib.sha256()
            for part in [*present, meta]:
                digest.update(hashlib.sha256(part).digest())
            found.append(
                Remnant(
                    asset_id=asset_id,
                    key=bool(present),
                    folder=(self.root / asset_id).is_dir(),
                    registered_at=_registered_at(meta),
                    tombstone=(self.root / TOMBSTONES / f"{asset_id}.json").exists(),
                    digest=digest.hexdigest(),
                    kept=self._kept(asset_id),
                )
            )
        return found

    def _shred(self, remnant: Remnant, shred: Shred) -> None:
        """The keys first, as `destroy` does; every failure raises, none is ignored."""
        asset_id = remnant.asset_id
        if shred.key:
            self._key_path(asset_id).unlink(missing_ok=True)
            (self.keyring / f".{asset_id}{PENDING_SUFFIX}").unlink(missing_ok=True)
        if not shred.folder:
            return
        folder = self.root / asset_id
        if shred.destroyed_at is not None and not remnant.tombstone:
            tombstone = _tombstone_from(folder / "meta.json", shred.destroyed_at)
            if tombstone is not None:
                self._write_tombstone(asset_id, tombstone)
        shutil.rmtree(folder)


def _wanted(shred: Shred | None) -> bool:
    return shred is not None and (shred.key or shred.folder)


def _read_if_there(path: Path) -> bytes | None:
    """A file's bytes, or None if there is none; anything else there (a folder) raises."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _seal_content(subject: str, body: dict) -> bytes:
    """The bytes a seal covers: what it is about (an asset id, a file) and the body, canonical."""
    text = json.dumps([subject, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def _write_json(path: Path, content: dict) -> None:
    """Replace `path` in one step with `content` as JSON."""
    temporary = path.with_name(f"{path.name}.next")
    temporary.write_text(json.dumps(content, ensure_ascii=False))
    os.replace(temporary, path)


def _folder_asset(folder: Path) -> str | None:
    """The asset id a data folder's meta.json names, if it can be read."""
    try:
        asset_id = json.loads((folder / "meta.json").read_text())["card"]["id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return asset_id if isinstance(asset_id, str) and ASSET_ID.match(asset_id) else None


def _tombstone_from(meta_path: Path, destroyed_at: str) -> dict | None:
    """A tombstone from a restored folder's meta.json; None if it is too damaged to make one
    the catalogue can read (the shred goes on without it)."""
    try:
        meta = json.loads(meta_path.read_text())
        card = parse_card(meta["card"])
        if card.id != meta_path.parent.name:
            return None
        return {
            "card": card.model_dump(mode="json"),
            "row_count": int(meta["row_count"]),
            "registered_at": str(meta["registered_at"]),
            "destroyed_at": destroyed_at,
            "version": int(meta.get("version", 1)),
        }
    except (OSError, ValueError, KeyError, TypeError, CardInvalid):
        return None


def _registered_at(meta: bytes) -> str | None:
    """A data folder's registration time from its meta.json's bytes; None if unreadable."""
    try:
        value = json.loads(meta)["registered_at"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


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
        "coded": stored.coded,
        "history": [*history, entry],
    }
    temporary = folder / "meta.json.next"
    temporary.write_text(json.dumps(meta, ensure_ascii=False))
    os.replace(temporary, folder / "meta.json")


def _write_private(path: Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
