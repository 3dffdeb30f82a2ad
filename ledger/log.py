"""The Ledger: an append-only, signed Merkle log of canonical JSON entries."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, bindparam, func, insert, null, select, union_all
from sqlalchemy.exc import SQLAlchemyError

from database.prepared import Prepared
from database.turns import writers_turn
from ledger.canonical import canonical_json
from ledger.checkpoints import (
    check_key_name,
    public_key_b64,
    sign_checkpoint,
    verify_checkpoint,
)
from ledger.documents import sign_document
from ledger.errors import (
    CheckpointInvalid,
    InvalidEntry,
    InvalidRange,
    LedgerCorrupt,
    LedgerError,
    LedgerUnavailable,
)
from ledger.keys import load_signing_key
from ledger.merkle import Frontier, consistency_proof, inclusion_proof, leaf_hash
from ledger.records import Checkpoint, Entry, Receipt, VerifyReport
from ledger.settlements import check_period, period_of
from ledger.store import (
    create_store,
    ledger_checkpoints,
    ledger_entries,
    open_transaction,
    take_write_lock,
)
from ledger.verify import (
    FULL_REQUESTED,
    SIGNING_KEY_ROTATED,
    CheckReport,
    Rehash,
    Rotation,
    audit,
    audit_log,
    load_verified,
    rehash,
    rotations,
    save_verified,
    withdraw_verified,
)

MAX_PAGE = 1000
MAX_KEY_LENGTH = 256
# Appends committed in one transaction at most; bounds a batch's SQL parameters and latency.
MAX_BATCH = 256
KEY_FIELD = "idempotency_key"

_entries = ledger_entries.c
_checkpoints = ledger_checkpoints.c
# Built once: the append path runs them for every batch.
_RECORDED = select(_entries.idempotency_key, _entries.idx, _entries.leaf_hash).where(
    _entries.idempotency_key.in_(bindparam("keys", expanding=True))
)
_NEWEST = select(func.max(_entries.idx))
# A batch of one, the usual case, in one statement: the entry its key names if recorded, and
# the newest index (the row without a key). An expanding IN is rendered again on every run.
_RECORDED_ONE = Prepared(
    union_all(
        select(_entries.idempotency_key, _entries.idx, _entries.leaf_hash).where(
            _entries.idempotency_key == bindparam("key")
        ),
        select(null(), func.max(_entries.idx), null()),
    )
)
_ENTRIES_FROM = (
    select(_entries.idx, _entries.data)
    .where(_entries.idx >= bindparam("first"))
    .order_by(_entries.idx)
)
_CHECKPOINT_AT = select(_checkpoints.note).where(_checkpoints.tree_size == bindparam("size"))
_INSERT_ENTRY = insert(ledger_entries)
_INSERT_ONE_ENTRY = Prepared(
    insert(ledger_entries).values({column.name: bindparam(column.name) for column in _entries})
)
_INSERT_CHECKPOINT = Prepared(
    insert(ledger_checkpoints).values(
        {column.name: bindparam(column.name) for column in _checkpoints}
    )
)


@dataclass
class _Pending:
    """One caller's append, waiting for the batch that commits it."""

    key: str
    data: str
    leaf: bytes
    period: str | None
    receipt: Receipt | None = None
    error: LedgerError | None = None

    @property
    def settled(self) -> bool:
        return self.receipt is not None or self.error is not None


class Ledger:
    """One sequencing writer over the store; reads may come from any thread.

    Each entry's hashed text is `canonical_json({**entry, "idempotency_key": key})`, so the
    key is covered by the leaf hash and an entry may carry the field only with the same value.
    `created_at` is bookkeeping outside the hash; callers put times they rely on in the entry.

    Appends from concurrent threads are group-committed: whichever caller holds the writer
    lock writes every append waiting at that moment in one transaction under one signed
    checkpoint, and no caller returns before the transaction holding its entry has committed.
    """

    def __init__(self, engine: Engine, key: Ed25519PrivateKey, origin: str) -> None:
        check_key_name(origin)
        self._engine = engine
        self._key = key
        self._origin = origin
        # Guards the queue of waiting appends and `_writing`, which marks a batch in flight.
        self._turn = threading.Condition()
        self._waiting: deque[_Pending] = deque()
        self._writing = False
        self._frontier: Frontier | None = None
        self._superseded = False
        # Where the signing key is kept: a key rotated by another process is read from there
        # (or from beside it, mid-rotation) as soon as its rotation entry is in the log.
        self._key_path: Path | None = None

    @classmethod
    def open(cls, url: str, signing_key_path: Path, origin: str = "veil.local/ledger") -> Ledger:
        key = load_signing_key(signing_key_path)
        try:
            engine = create_store(url)
        except SQLAlchemyError as error:
            raise LedgerUnavailable("the ledger store cannot be opened") from error
        ledger = cls(engine, key, origin)
        ledger._key_path = signing_key_path
        with ledger._connect() as connection:
            # The writer goes on from the verified prefix, recomputed from the entries' data,
            # rather than from the stored hashes; only what follows it is read here.
            since, _ = load_verified(connection, key.public_key(), origin)
            ledger._frontier = since
            # A corrupt store still opens, so verify() can report it; appends refuse meanwhile.
            with suppress(LedgerCorrupt):
                ledger._frontier = ledger._synced_frontier(connection)
            # Rotations inside a prefix signed by this key ended at this key.
            rotated = rotations(connection, 0 if since is None else since.size)
        if rotated:
            ledger._follow(rotated[-1])
        return ledger

    def close(self) -> None:
        self._engine.dispose()

    def append(self, entry: dict[str, Any], idempotency_key: str) -> Receipt:
        """Record `entry` durably; the same key again returns the first receipt."""
        if self._superseded:
            with self._connect() as connection:
                rotated = rotations(connection)
            if rotated:
                self._follow(rotated[-1])
        if self._superseded:
            raise LedgerUnavailable("the log has replaced this signing key; configure the new one")
        data = _entry_text(entry, idempotency_key)
        leaf = leaf_hash(data.encode("utf-8"))
        pending = _Pending(idempotency_key, data, leaf, period_of(entry))
        with self._turn:
            self._waiting.append(pending)
        while not pending.settled:
            with self._turn:
                # Another caller's batch may carry this append; wait for it, not for the store.
                while self._writing and not pending.settled:
                    self._turn.wait()
                if pending.settled:
                    break
                self._writing = True
                batch = [self._waiting.popleft() for _ in range(min(MAX_BATCH, len(self._waiting)))]
            try:
                self._commit(batch)
            finally:
                with self._turn:
                    self._writing = False
                    self._turn.notify_all()
        if pending.error is not None:
            raise type(pending.error)(pending.error.message) from pending.error
        assert pending.receipt is not None
        return pending.receipt

    def entries(self, after: int | None = None, limit: int = 100) -> list[Entry]:
        """Entries with index > `after` (all when None), oldest first, at most 1000."""
        if limit < 1:
            raise InvalidRange("limit must be at least 1")
        query = select(_entries.idx, _entries.leaf_hash, _entries.data).order_by(_entries.idx)
        if after is not None:
            query = query.where(_entries.idx > after)
        with self._connect() as connection:
            rows = connection.execute(query.limit(min(limit, MAX_PAGE))).all()
        return [Entry(row.idx, row.leaf_hash, row.data) for row in rows]

    def find(self, idempotency_key: str) -> Entry | None:
        """The entry recorded under `idempotency_key`, if any."""
        query = select(_entries.idx, _entries.leaf_hash, _entries.data).where(
            _entries.idempotency_key == idempotency_key
        )
        with self._connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else Entry(row.idx, row.leaf_hash, row.data)

    def replay(
        self, period: str | None = None, size: int | None = None
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Entries as (index, parsed data), oldest first, read page by page: those of one
        month when `period` is given, and only the first `size` of the log when it is."""
        query = select(_entries.idx, _entries.data).order_by(_entries.idx).limit(MAX_PAGE)
        if period is not None:
            query = query.where(_entries.period == check_period(period))
        if size is not None:
            query = query.where(_entries.idx < size)
        after = -1
        while True:
            with self._connect() as connection:
                page = connection.execute(query.where(_entries.idx > after)).all()
            for row in page:
                try:
                    yield row.idx, json.loads(row.data)
                except ValueError as error:
                    raise LedgerCorrupt(f"entry {row.idx} is not JSON; run verify") from error
            if len(page) < MAX_PAGE:
                return
            after = page[-1].idx

    def checkpoint(self) -> Checkpoint:
        """The newest signed checkpoint; an empty log gets a freshly signed size-0 one."""
        query = select(ledger_checkpoints).order_by(_checkpoints.tree_size.desc()).limit(1)
        with self._connect() as connection:
            row = connection.execute(query).first()
        if row is not None:
            return Checkpoint(row.tree_size, row.root_hash, row.note)
        root = Frontier().root()
        note = sign_checkpoint(self._key, self._origin, 0, root)
        return Checkpoint(0, root.hex(), note)

    def rotate_signing_key(self, new_key: Ed25519PrivateKey) -> Receipt:
        """Record that `new_key` replaces the signing key, in an entry whose checkpoint both
        keys sign, then sign with `new_key` from here on. Verification follows the chain:
        each key is vouched for by the next, up to the configured one."""
        entry = {
            "type": SIGNING_KEY_ROTATED,
            "previous_public_key": public_key_b64(self._key),
            "public_key": public_key_b64(new_key),
            "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        key = f"signing-key:{entry['public_key']}"
        data = _entry_text(entry, key)
        pending = _Pending(key, data, leaf_hash(data.encode("utf-8")), period_of(entry))
        with self._turn:
            while self._writing:
                self._turn.wait()
            self._writing = True
        try:
            with self._connect(writing=True) as connection:
                receipts, frontier = self._record(connection, [pending], cosigner=new_key)
        finally:
            with self._turn:
                self._writing = False
                self._turn.notify_all()
        if frontier is not None:
            self._frontier = frontier
        self._key = new_key
        return receipts[0]

    def head(self) -> tuple[int, datetime | None]:
        """The log's size, and when its newest entry was committed (with the checkpoint signed
        over it); None for an empty log."""
        query = select(_entries.idx, _entries.created_at).order_by(_entries.idx.desc()).limit(1)
        with self._connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return 0, None
        return row.idx + 1, datetime.fromisoformat(row.created_at)

    def sign_document(self, kind: str, body: dict) -> str:
        """`body` signed by the ledger's key as a document of `kind` (`ledger.documents`)."""
        return sign_document(self._key, self._origin, kind, body)

    def public_key(self) -> tuple[str, str]:
        """(key name, base64 raw Ed25519 public key); the key name is the origin."""
        return self._origin, public_key_b64(self._key)

    def inclusion_proof(self, index: int, size: int) -> list[str]:
        if not 0 <= index < size:
            raise InvalidRange("an inclusion proof needs 0 <= index < size")
        return [node.hex() for node in inclusion_proof(self._leaves(size), index, size)]

    def consistency_proof(self, frm: int, to: int) -> list[str]:
        if not 0 <= frm <= to:
            raise InvalidRange("a consistency proof needs 0 <= from <= to")
        return [node.hex() for node in consistency_proof(self._leaves(to), frm, to)]

    def verify(self) -> VerifyReport:
        """Recompute the whole log from stored data and check every stored checkpoint."""
        with self._snapshot() as connection:
            return audit_log(connection, self._key.public_key(), self._origin)

    def verify_incremental(self, full: bool = False) -> CheckReport:
        """Verify what was appended since the stored verified prefix, then make the end of the
        log the verified prefix if everything holds.

        The whole log is verified instead, and the report says why, when `full` is asked for
        or no verified prefix signed by this ledger's key is stored.
        """
        with self._connect() as connection:
            # A rotation another process made since this one last wrote: checked (and the
            # prefix signed) with the key it moved to, as this process's next append signs.
            start = 0 if self._frontier is None else self._frontier.size
            rotated = rotations(connection, start)
        if rotated:
            self._follow(rotated[-1])
        key = self._key  # the key the prefix is signed with, even if rotated meanwhile
        with self._snapshot() as connection:
            if full:
                since, because = None, FULL_REQUESTED
            else:
                since, because = load_verified(connection, key.public_key(), self._origin)
            report, frontier = audit(connection, key.public_key(), self._origin, since)
        recorded = False
        if report.ok:
            try:
                with self._connect(writing=True) as connection:
                    save_verified(connection, key, self._origin, frontier)
            except LedgerUnavailable:
                pass  # the verdict stands; the next check starts from the older prefix
            else:
                recorded = True
        return replace(report, full_because=because, recorded=recorded)

    def rehash(self, state: Rehash | None, limit: int) -> tuple[Rehash | None, list[str], int]:
        """Recompute up to `limit` entries of a pass over the verified prefix, beginning a new
        pass from the stored prefix when `state` is None or done; (state, problems, hashed).
        The state is None when no valid prefix is stored: the next check verifies in full."""
        with self._connect() as connection:
            if state is None or state.done:
                since, _ = load_verified(connection, self._key.public_key(), self._origin)
                if since is None:
                    return None, [], 0
                state = Rehash(since)
            problems, hashed = rehash(connection, state, limit)
        return state, problems, hashed

    def recheck(self, state: Rehash | None, limit: int) -> tuple[Rehash | None, list[str], int]:
        """As `rehash`, and the pass also checks every stored checkpoint inside the prefix when
        it reaches its size: signed by the key then in force, holding the re-hashed root."""
        with self._connect() as connection:
            if state is None or state.done:
                key = self._key.public_key()
                since, _ = load_verified(connection, key, self._origin)
                if since is None:
                    return None, [], 0
                state = Rehash(since, signer=public_key_b64(key), origin=self._origin)
            problems, hashed = rehash(connection, state, limit)
        return state, problems, hashed

    def withdraw_verified(self) -> None:
        """Forget the verified prefix (it was found not to hold): every next check is full."""
        with self._connect(writing=True) as connection:
            withdraw_verified(connection)

    def _commit(self, batch: list[_Pending]) -> None:
        """Write `batch` in one transaction and hand each caller its receipt or the error."""
        try:
            with self._connect(writing=True) as connection:
                receipts, frontier = self._record(connection, batch)
        except LedgerError as error:
            failure: LedgerError = error
        except Exception as error:  # noqa: BLE001 - every waiter must wake, and fail closed
            failure = LedgerUnavailable("the ledger store failed")
            failure.__cause__ = error
        else:
            # Adopted only after the commit, so a failed write leaves the frontier as it was.
            if frontier is not None:
                self._frontier = frontier
            for pending, receipt in zip(batch, receipts, strict=True):
                pending.receipt = receipt
            return
        for pending in batch:
            pending.error = failure

    def _record(
        self,
        connection: Connection,
        batch: list[_Pending],
        cosigner: Ed25519PrivateKey | None = None,
    ) -> tuple[list[Receipt], Frontier | None]:
        """Write the batch's new entries and one checkpoint in the caller's transaction."""
        keys = sorted({pending.key for pending in batch})
        if len(keys) == 1:
            found = _RECORDED_ONE.all(connection, {"key": keys[0]})
            newest = next(idx for key, idx, _ in found if key is None)
            found = [row for row in found if row[0] is not None]
        else:
            found = [tuple(row) for row in connection.execute(_RECORDED, {"keys": keys})]
            newest = connection.execute(_NEWEST).scalar()
        stored = 0 if newest is None else newest + 1
        recorded = {key: Receipt(idx, leaf, fresh=False) for key, idx, leaf in found}
        frontier = self._synced_frontier(connection, stored)
        created_at = datetime.now(UTC).isoformat()
        receipts, rows = [], []
        for pending in batch:
            if pending.key in recorded:
                receipts.append(recorded[pending.key])
                continue
            index, leaf = frontier.size, pending.leaf.hex()
            frontier.append(pending.leaf)
            rows.append(
                {
                    "idx": index,
                    "idempotency_key": pending.key,
                    "data": pending.data,
                    "leaf_hash": leaf,
                    "created_at": created_at,
                    "period": pending.period,
                }
            )
            receipts.append(Receipt(index, leaf))
            # The same key later in this batch is a retry of this entry.
            recorded[pending.key] = Receipt(index, leaf, fresh=False)
        if not rows:
            return receipts, None
        if self._superseded:
            raise LedgerUnavailable("the log has replaced this signing key; configure the new one")
        # One row as one statement: a list is an executemany, which costs more for a single row.
        if len(rows) == 1:
            _INSERT_ONE_ENTRY.run(connection, rows[0])
        else:
            connection.execute(_INSERT_ENTRY, rows)
        root = frontier.root()
        cosigners = [cosigner] if cosigner is not None else []
        note = sign_checkpoint(self._key, self._origin, frontier.size, root, *cosigners)
        _INSERT_CHECKPOINT.run(
            connection, {"tree_size": frontier.size, "root_hash": root.hex(), "note": note}
        )
        return receipts, frontier

    def _follow(self, rotation: Rotation) -> None:
        """Sign with the key `rotation` moved to, if it is where this ledger's key is kept (or
        beside it, as `.next`, while the rotation finishes); otherwise refuse to sign at all:
        checkpoints signed with a key the log has replaced would never verify again."""
        if rotation.new == public_key_b64(self._key):
            self._superseded = False
            return
        self._superseded = True
        if self._key_path is None:
            return
        for path in (self._key_path, self._key_path.with_name(self._key_path.name + ".next")):
            try:
                key = load_signing_key(path)
            except (OSError, ValueError):
                continue
            if public_key_b64(key) == rotation.new:
                self._key, self._superseded = key, False
                return

    def _synced_frontier(self, connection: Connection, stored: int | None = None) -> Frontier:
        """A copy of the frontier brought up to the stored log, which another writer may
        have extended; the copy is adopted only once a write commits. `stored` is the log's
        size if the caller has just read it in this transaction."""
        frontier = Frontier() if self._frontier is None else self._frontier.copy()
        if stored is None:
            newest = connection.execute(_NEWEST).scalar()
            stored = 0 if newest is None else newest + 1
        if stored < frontier.size:
            raise LedgerCorrupt("the ledger store lost entries; run verify")
        if stored > frontier.size:
            # Another process wrote since: it may have rotated the signing key.
            rotated = rotations(connection, frontier.size)
            if rotated:
                self._follow(rotated[-1])
            # Hashed again from the entries' text, and held to the checkpoint every writer signs
            # with what it appends: rows a writer of the database slipped in without the key
            # are never signed over by this one.
            rows = connection.execute(_ENTRIES_FROM, {"first": frontier.size})
            for row in rows:
                if row.idx != frontier.size:
                    raise LedgerCorrupt("ledger indices are not contiguous; run verify")
                frontier.append(leaf_hash(row.data.encode("utf-8")))
            note = connection.execute(_CHECKPOINT_AT, {"size": stored}).scalar()
            try:
                _, root = verify_checkpoint(note or "", self._key.public_key(), self._origin)
            except CheckpointInvalid as error:
                raise LedgerCorrupt("entries no signed checkpoint covers; run verify") from error
            if root != frontier.root():
                raise LedgerCorrupt("entries no signed checkpoint covers; run verify")
        return frontier

    def _leaves(self, size: int) -> list[bytes]:
        query = select(_entries.leaf_hash).where(_entries.idx < size).order_by(_entries.idx)
        with self._connect() as connection:
            leaves = [_hash_bytes(value) for value in connection.execute(query).scalars()]
        if len(leaves) < size:
            raise InvalidRange(f"the log has only {len(leaves)} entries")
        return leaves

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A connection inside one read transaction, so every read sees the same log."""
        with self._connect() as connection:
            if connection.dialect.name != "sqlite":
                connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                open_transaction(connection)
                yield connection

    @contextmanager
    def _connect(self, writing: bool = False) -> Iterator[Connection]:
        """A connection; when writing, inside one transaction committed on exit."""
        try:
            with self._engine.connect() as connection:
                if not writing:
                    yield connection
                    return
                with writers_turn(self._engine), connection.begin():
                    take_write_lock(connection)
                    yield connection
        except SQLAlchemyError as error:
            raise LedgerUnavailable("the ledger store failed") from error


def check_entry(entry: dict[str, Any], idempotency_key: str) -> None:
    """Raise InvalidEntry if `append` would refuse `entry` under `idempotency_key` whatever the
    store's state: for a caller that must know before it changes anything the entry records."""
    _entry_text(entry, idempotency_key)


def _entry_text(entry: dict[str, Any], idempotency_key: str) -> str:
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= MAX_KEY_LENGTH:
        raise InvalidEntry(f"the idempotency key must be 1 to {MAX_KEY_LENGTH} characters")
    if not isinstance(entry, dict):
        raise InvalidEntry("an entry must be a JSON object")
    if entry.get(KEY_FIELD, idempotency_key) != idempotency_key:
        raise InvalidEntry("the entry carries a different idempotency key")
    try:
        return canonical_json({**entry, KEY_FIELD: idempotency_key})
    except (TypeError, ValueError) as error:
        raise InvalidEntry("the entry cannot be written as canonical JSON") from error


def _hash_bytes(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except (TypeError, ValueError) as error:
        raise LedgerCorrupt("a stored leaf hash is malformed; run verify") from error
    if len(raw) != 32:
        raise LedgerCorrupt("a stored leaf hash is malformed; run verify")
    return raw
