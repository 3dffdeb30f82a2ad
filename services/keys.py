"""The keys that protect Veil: loading the master key, rotating it and the ledger's, backing
up and restoring the keyring, and shredding again what a restore brought back."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from governance import utc_now
from ledger import (
    CheckpointInvalid,
    Frontier,
    Ledger,
    Receipt,
    generate_signing_key,
    leaf_hash,
    load_signing_key,
    verify_checkpoint,
)
from ledger.log import MAX_KEY_LENGTH
from sandbox.keys import KEY_BYTES, create_master_key, load_master_key
from sandbox.store import AssetStore, Judge, Record, Remnant, Shred
from services.attachments import AttachmentStore
from services.settings import Settings

log = logging.getLogger(__name__)

RESHREDDED = "asset_reshredded"
DESTROYED = "asset_destroyed"
REGISTERED = frozenset({"asset_registered", "asset_version_registered"})
# Every entry these types name is canonical JSON, so its text holds this before parsing.
LIFECYCLE_MARK = '"type":"asset_'
NOTE_FORMAT = 1
PAGE = 1000
BACKUP_FORMAT = "veil-keys/1"
BACKUP_MANIFEST = "backup.json"
MASTER, PREVIOUS, SIGNING = "master.key", "master.key.previous", "ledger-signing.key"


def asset_entry_key(kind: str, asset_id: str, *parts: object) -> str:
    """The idempotency key of a ledger entry about an asset: `kind:asset_id:parts...`, with the
    id's SHA-256 in place of the id where the id would take the key past the ledger's bound
    (an id holds no `-`, so the two never meet)."""
    tail = [str(part) for part in parts]
    key = ":".join([kind, asset_id, *tail])
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return ":".join([kind, "sha256-" + hashlib.sha256(asset_id.encode()).hexdigest(), *tail])


def load_master_keys(settings: Settings) -> tuple[bytes, bytes | None]:
    """The master key, and the one it replaced while a rotation has not finished."""
    previous = settings.previous_master_key_path
    return load_master_key(settings.master_key_path), (
        load_master_key(previous) if previous.exists() else None
    )


def metrics_token(settings: Settings) -> str:
    """The bearer token /metrics asks for: from the environment, else the home's token file,
    made on first use. Metrics count everyone's activity, so no principal's key opens them."""
    if settings.metrics_token:
        return settings.metrics_token
    path = settings.metrics_token_path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = path.with_name(f"metrics.token.{os.getpid()}")
        descriptor = os.open(made, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32))
        try:
            os.link(made, path)  # whole or not at all; a process that got there first wins
        except FileExistsError:
            pass
        finally:
            made.unlink()
    return path.read_text().strip()


def rotate_master_key(settings: Settings) -> dict[str, int]:
    """Replace the master key and wrap every data key and registration document's key under
    the new one; returns how many of each.

    Gateways may keep serving: each reads the key files again before it changes the store and
    after another process changed it (the rewrap does), so it holds the new key before any
    data key is wrapped under it alone. Each step can be interrupted and the command run again
    to finish, and a gateway started meanwhile still opens every asset, since it loads the
    replaced key too while that is kept."""
    current, previous = settings.master_key_path, settings.previous_master_key_path
    upcoming = current.with_name("master.key.next")
    if not previous.exists():
        if not upcoming.exists():
            create_master_key(upcoming)
        os.link(current, previous)
    if upcoming.exists():
        os.replace(upcoming, current)
    master_key, replaced = load_master_keys(settings)
    store = AssetStore(settings.assets_root, settings.keyring_root, master_key, replaced)
    rewrapped = store.rewrap()
    keys = [master_key] if replaced is None else [master_key, replaced]
    documents = AttachmentStore(settings.attachments_root, lambda: keys).rewrap()
    previous.unlink()
    return {"rewrapped": rewrapped, "documents_rewrapped": documents}


def rotate_signing_key(settings: Settings) -> Receipt:
    """Replace the ledger's signing key: the log records the new public key in an entry both
    keys sign, then the new key file takes the old one's place. Gateways may keep serving: each
    follows the rotation entry to the new key file (ledger/log.py, `Ledger._follow`). If
    interrupted, run it again to finish the same rotation."""
    current = settings.signing_key_path
    upcoming = current.with_name("ledger-signing.key.next")
    if not upcoming.exists():
        generate_signing_key(upcoming)
    ledger = Ledger.open(settings.ledger_url, current)
    try:
        receipt = ledger.rotate_signing_key(load_signing_key(upcoming))
    finally:
        ledger.close()
    os.replace(upcoming, current)
    return receipt


@dataclass(frozen=True)
class Destruction:
    """One `asset_destroyed` entry: where it is, which registration it ended, and when."""

    index: int
    registered_at: str
    at: str
    provider: str | None


@dataclass
class Lifecycle:
    """What the ledger says of one asset id: its destructions and its newest registration."""

    destructions: list[Destruction] = field(default_factory=list)
    registered: int | None = None

    @property
    def gone(self) -> bool:
        """Destroyed, and not registered again since."""
        last = self.destructions[-1] if self.destructions else None
        return last is not None and (self.registered is None or self.registered < last.index)


def covered_size(ledger: Ledger) -> int:
    """How many of the log's first entries a checkpoint signed with the ledger's key covers,
    their leaves recomputed from their data: the whole log when it verifies. Otherwise the
    newest checkpoint if it verifies and the entries after the verified prefix make its root,
    else the verified prefix: rows added by whoever can write the database without the
    signing key are never acted on."""
    report = ledger.verify_incremental()
    if report.ok:
        return report.tree_size
    log.error(
        "the ledger failed verification; acting only on the entries a signed checkpoint covers: %s",
        "; ".join(report.problems[:5]),
    )
    prefix, _, _ = ledger.rehash(None, 0)  # the stored verified prefix, as signed; not hashed
    frontier = Frontier() if prefix is None else prefix.target.copy()
    floor = frontier.size
    origin, public_key = ledger.public_key()
    try:
        size, root = verify_checkpoint(ledger.checkpoint().note, public_key, origin)
    except CheckpointInvalid:
        return floor
    if size <= floor:
        return floor
    while frontier.size < size:
        page = ledger.entries(after=frontier.size - 1, limit=PAGE)
        if not page:
            return floor
        for entry in page[: size - frontier.size]:
            if entry.index != frontier.size:
                return floor
            frontier.append(leaf_hash(entry.data.encode("utf-8")))
    return size if frontier.root() == root else floor


def lifecycles(store: AssetStore, ledger: Ledger) -> dict[str, Lifecycle]:
    """Every asset id's lifecycle in the ledger, as far as a signed checkpoint covers it
    (`covered_size`), read on from the store's sealed note of the last reading (whose last
    entry must still be there, unchanged), so a start-up reads only what was appended since;
    the note is kept for the next reading."""
    covered = covered_size(ledger)
    known, size = _from_note(store.destructions_note(), ledger, covered)
    anchor = None
    while size < covered:
        page = [e for e in ledger.entries(after=size - 1, limit=PAGE) if e.index < covered]
        if not page:
            break
        for entry in page:
            if LIFECYCLE_MARK in entry.data:
                _follow(known, entry.index, json.loads(entry.data))
        size, anchor = page[-1].index + 1, page[-1].leaf_hash
    if anchor is not None:
        store.note_destructions(_note(known, size, anchor))
    return known


def _follow(known: dict[str, Lifecycle], index: int, data: dict) -> None:
    kind, asset_id = data.get("type"), data.get("asset")
    if not isinstance(asset_id, str):
        return
    if kind == DESTROYED:
        life = known.setdefault(asset_id, Lifecycle())
        life.destructions.append(
            Destruction(index, str(data.get("registered_at")), str(data.get("at")),
                        data.get("provider"))
        )  # fmt: skip
    elif kind in REGISTERED:
        known.setdefault(asset_id, Lifecycle()).registered = index


def _from_note(note: dict | None, ledger: Ledger, covered: int) -> tuple[dict[str, Lifecycle], int]:
    """The lifecycles a note kept and the log size it read to; nothing and 0 when there is no
    note (or none sealed), when it read past what a signed checkpoint covers now, or when the
    log no longer holds the entry it ended with (a restored or replaced log)."""
    if note is None or note.get("format") != NOTE_FORMAT:
        return {}, 0
    try:
        size, anchor = int(note["size"]), str(note["leaf_hash"])
        ends = ledger.entries(after=size - 2, limit=1)
        if (
            not 1 <= size <= covered
            or not ends
            or (ends[0].index, ends[0].leaf_hash) != (size - 1, anchor)
        ):
            log.info("the note of the ledger's destructions no longer matches the log; rereading")
            return {}, 0
        known = {
            asset_id: Lifecycle([Destruction(*d) for d in life["destructions"]],
                                life["registered"])
            for asset_id, life in note["assets"].items()
        }  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return {}, 0
    return known, size


def _note(known: dict[str, Lifecycle], size: int, anchor: str) -> dict:
    assets = {
        asset_id: {
            "destructions": [
                [d.index, d.registered_at, d.at, d.provider] for d in life.destructions
            ],
            "registered": life.registered,
        }
        for asset_id, life in known.items()
    }
    return {"format": NOTE_FORMAT, "size": size, "leaf_hash": anchor, "assets": assets}


def judge(known: dict[str, Lifecycle], ledger: Ledger) -> Judge:
    """What to shred of a remnant, from the ledger alone: everything of an asset it records as
    destroyed and not registered since, unless the folder keeps a sealed registration whose
    entry is still to be written (a registration on its way); of an asset registered again
    since, a data folder of a destroyed registration and its key."""

    def decide(remnant: Remnant) -> Shred | None:
        life = known.get(remnant.asset_id)
        if life is None or not life.destructions:
            return None
        last = life.destructions[-1]
        if life.gone:
            if _on_its_way(remnant, last, ledger):
                return None
            return Shred(key=remnant.key, folder=remnant.folder, destroyed_at=last.at)
        # Registered again since: the folder's meta.json says which registration it holds.
        ended = {d.registered_at for d in life.destructions}
        folder = remnant.folder and remnant.registered_at in ended
        if not folder:
            return None
        return Shred(key=remnant.key, folder=True)

    return decide


def _on_its_way(remnant: Remnant, last: Destruction, ledger: Ledger) -> bool:
    """Whether the remnant's folder keeps a sealed registration of this asset whose entry the
    ledger does not hold yet, or holds after the destruction: a registration not yet on record
    (its process is writing the entry, or died first and the next start writes it)."""
    kept = remnant.kept
    if kept is None or not remnant.folder:
        return False
    entry = kept["entry"]
    if entry.get("type") not in REGISTERED or entry.get("asset") != remnant.asset_id:
        return False
    found = ledger.find(kept["key"])
    return found is None or found.index > last.index


def recorder(ledger: Ledger, known: dict[str, Lifecycle], trigger: str, done: list[dict]) -> Record:
    """Record each shred in the ledger before it is done (no entry, no shred), and collect
    what was recorded into `done`. The key names the remnant, so a retry after a crash between
    the two writes finds the same entry."""

    def record(remnant: Remnant, shred: Shred) -> None:
        life = known[remnant.asset_id]
        destruction = next(
            (d for d in life.destructions if d.registered_at == remnant.registered_at),
            life.destructions[-1],
        )
        entry = {
            "type": RESHREDDED,
            "asset": remnant.asset_id,
            "provider": destruction.provider,
            "destruction_index": destruction.index,
            "method": "crypto_shred",
            "removed": shred.removed,
            "trigger": trigger,
            "at": utc_now(),
        }
        key = asset_entry_key("reshred", remnant.asset_id, destruction.index, remnant.digest)
        receipt = ledger.append(entry, idempotency_key=key)
        log.warning(
            "asset %s came back after its destruction (ledger entry %d): shredding it again",
            remnant.asset_id,
            destruction.index,
        )
        done.append(
            {
                "asset": remnant.asset_id,
                "destruction_index": destruction.index,
                "removed": shred.removed,
                "ledger_index": receipt.index,
            }
        )

    return record


def reshred_destroyed(store: AssetStore, ledger: Ledger, trigger: str) -> list[dict]:
    """Shred again every asset the ledger records as destroyed whose key or data is back on
    disk (a restored backup), each shred recorded first; returns what was shredded. Raises if
    any of it fails: the caller must not serve then."""
    known = lifecycles(store, ledger)
    done: list[dict] = []
    store.reshred(judge(known, ledger), recorder(ledger, known, trigger, done))
    return done


def backup_keys(settings: Settings, destination: Path) -> dict:
    """Copy what a key restore needs into `destination` (new or empty): the master key (and
    the one it replaces mid-rotation), the ledger signing key, every wrapped data key, and a
    manifest of their digests with the ledger's size at the time."""
    if destination.exists() and any(destination.iterdir()):
        raise ValueError(f"{destination} is not empty")
    master_key, replaced = load_master_keys(settings)
    store = AssetStore(settings.assets_root, settings.keyring_root, master_key, replaced)
    files = {
        name: path.read_bytes() for name, path in _home_keys(settings).items() if path.exists()
    }
    files |= {f"assets/{asset_id}.wrapped": wrapped for asset_id, wrapped in
              store.wrapped_keys().items()}  # fmt: skip
    ledger = Ledger.open(settings.ledger_url, settings.signing_key_path)
    try:
        ledger_size, _ = ledger.head()
    finally:
        ledger.close()
    destination.mkdir(parents=True, exist_ok=True, mode=0o700)
    (destination / "assets").mkdir(mode=0o700, exist_ok=True)
    for name, content in files.items():
        _write_key(destination / name, content)
    manifest = {
        "format": BACKUP_FORMAT,
        "taken_at": utc_now(),
        "ledger_size": ledger_size,
        "files": {name: hashlib.sha256(content).hexdigest() for name, content in files.items()},
    }
    (destination / BACKUP_MANIFEST).write_text(json.dumps(manifest, indent=2))
    wrapped = sum(name.startswith("assets/") for name in files)
    return {"backup": str(destination), "wrapped_keys": wrapped, "ledger_size": ledger_size}


def _home_keys(settings: Settings) -> dict[str, Path]:
    return {
        MASTER: settings.master_key_path,
        PREVIOUS: settings.previous_master_key_path,
        SIGNING: settings.signing_key_path,
    }


@dataclass(frozen=True)
class KeyBackup:
    """A key backup as read: its files by name, and the ledger's size when it was taken."""

    files: dict[str, bytes]
    ledger_size: int | None

    def wrapped(self) -> dict[str, bytes]:
        return {
            name.removeprefix("assets/").removesuffix(".wrapped"): content
            for name, content in self.files.items()
            if name.startswith("assets/")
        }


def read_backup(source: Path) -> KeyBackup:
    """A key backup: a folder laid out as a home's `keys/` (or a home holding one), checked
    against its manifest when it has one, as `backup_keys` writes it."""
    if not (source / MASTER).exists() and (source / "keys").is_dir():
        source = source / "keys"
    manifest_path = source / BACKUP_MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != BACKUP_FORMAT:
            raise ValueError(f"{manifest_path} is not a {BACKUP_FORMAT} manifest")
        files = {}
        for name, digest in manifest["files"].items():
            content = (source / _backup_name(name)).read_bytes()
            if hashlib.sha256(content).hexdigest() != digest:
                raise ValueError(f"{name} in the backup does not match its manifest")
            files[name] = content
        return KeyBackup(files, manifest.get("ledger_size"))
    names = [name for name in (MASTER, PREVIOUS, SIGNING) if (source / name).is_file()]
    names += [
        f"assets/{path.name}"
        for path in sorted((source / "assets").glob("*.wrapped"))
        if not path.name.startswith(".")
    ]
    if not names:
        raise ValueError(f"{source} holds no keys")
    return KeyBackup({name: (source / _backup_name(name)).read_bytes() for name in names}, None)


def _backup_name(name: str) -> str:
    """A file name from a manifest, if it is one a key backup holds (nothing outside it)."""
    parts = name.split("/")
    if name in (MASTER, PREVIOUS, SIGNING) or (
        len(parts) == 2 and parts[0] == "assets" and parts[1].endswith(".wrapped")
        and not parts[1].startswith(".")
    ):  # fmt: skip
        return name
    raise ValueError(f"the backup names a file a key backup does not hold: {name!r}")


def restore_keys(settings: Settings, source: Path) -> dict:
    """Restore a key backup into the home, keeping every key the home already has, and shred
    again, before returning, every asset the ledger records as destroyed that came back.

    A master key the home has is kept: a backup's other master key unwraps the restored data
    keys until they are wrapped anew under the home's, as a rotation does. A backup's data key
    for an asset registered again after the backup was taken (its manifest says when) is stale
    and left out. Stop every gateway first."""
    backup = read_backup(source)
    for name in (MASTER, PREVIOUS):
        if name in backup.files and len(backup.files[name]) != KEY_BYTES:
            raise ValueError(f"{name} in the backup is damaged")
    restored: list[str] = []
    if not settings.master_key_path.exists():
        if MASTER not in backup.files:
            raise ValueError("neither the home nor the backup has a master key")
        for name in (PREVIOUS, MASTER):  # the current one last: a home with it is whole
            if name in backup.files:
                _write_key(_home_keys(settings)[name], backup.files[name])
                restored.append(name)
    if SIGNING in backup.files and not settings.signing_key_path.exists():
        _write_key(settings.signing_key_path, backup.files[SIGNING])
        restored.append(SIGNING)
    master_key, replaced = load_master_keys(settings)
    home = {master_key, replaced} - {None}
    foreign = [backup.files[n] for n in (MASTER, PREVIOUS) if n in backup.files
               and backup.files[n] not in home]  # fmt: skip
    if foreign and (replaced is not None or len(foreign) > 1):
        raise ValueError(
            "the backup's master key is not this home's, and this home is mid-rotation: "
            "finish it first (`veil keys rotate-master`)"
        )
    if foreign:
        _write_key(settings.previous_master_key_path, foreign[0])
        replaced = foreign[0]
    ledger = Ledger.open(settings.ledger_url, settings.signing_key_path)
    try:
        store = AssetStore(settings.assets_root, settings.keyring_root, master_key, replaced)
        known = lifecycles(store, ledger)
        present = set(store.wrapped_keys())
        stale = {a for a in backup.wrapped() if _registered_since(known, a, backup.ledger_size)}
        wrapped = {a: k for a, k in backup.wrapped().items() if a not in present | stale}
        done: list[dict] = []
        store.restore_keys(
            wrapped, judge(known, ledger), recorder(ledger, known, "keys_restore", done)
        )
    finally:
        ledger.close()
    rewrapped = 0
    if foreign:
        rewrapped = store.rewrap()
        settings.previous_master_key_path.unlink()
    return {
        "restored": restored,
        "wrapped_keys": sorted(wrapped),
        "kept": sorted(set(backup.wrapped()) & present),
        "stale": sorted(stale - present),
        "rewrapped": rewrapped,
        "reshredded": done,
        "unopenable": store.unopenable(),
    }


def _registered_since(known: dict[str, Lifecycle], asset_id: str, size: int | None) -> bool:
    """Whether the asset was registered anew at or after ledger size `size`: a key from
    before then is another data version's."""
    life = known.get(asset_id)
    return size is not None and life is not None and (life.registered or -1) >= size


def _write_key(path: Path, content: bytes) -> None:
    """Write a key file readable by its owner alone, replacing any in one step."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    made = path.with_name(f".{path.name}.{os.getpid()}")
    made.unlink(missing_ok=True)
    descriptor = os.open(made, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    os.replace(made, path)
