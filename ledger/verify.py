"""Auditing a stored log (leaf hashes, index sequence, postings and checkpoints), either whole
or from the verified prefix onwards, and the signed record of that prefix."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, delete, func, insert, select, update

from ledger.checkpoints import (
    open_note,
    public_key_b64,
    public_key_from_b64,
    sign_note,
    verify_checkpoint,
)
from ledger.errors import CheckpointInvalid, LedgerError
from ledger.merkle import Frontier, leaf_hash
from ledger.records import VerifyReport
from ledger.settlements import period_of, posting_lines
from ledger.store import ledger_checkpoints, ledger_entries, ledger_verified

MAX_PROBLEMS = 100
_PAGE = 1000
# A pass over the prefix first searches it for rotations, this many entries per unit of a
# slice's limit: a range scan inside the database, far cheaper per entry than re-hashing one.
ROTATION_WINDOW = 20
# What checking one checkpoint's signature and root costs, in entries re-hashed (about 0.3 ms
# against 35 us on the 2-core development machine): a slice of the prefix is cut so its cost
# stays within its limit however densely the log was checkpointed (a quiet gateway signs one
# checkpoint per entry).
CHECKPOINT_COST = 8
SIGNING_KEY_ROTATED = "signing_key_rotated"
# Canonical JSON writes the pair exactly so; candidates are parsed before they count.
_ROTATION_TEXT = f'%"type":"{SIGNING_KEY_ROTATED}"%'

VERIFIED_SLOT = "prefix"
# The verified prefix's note opens with this line. It holds spaces, which a key name (and so a
# checkpoint's origin line) never does: the ledger key's signature on one kind of note can
# never pass for the other.
VERIFIED_HEADER = "veil ledger verified prefix v1"
_SIZE = re.compile(r"0|[1-9][0-9]*")

# Why a verification that could have started at the verified prefix recomputed the whole log.
NO_VERIFIED_PREFIX = "no_verified_prefix"
INVALID_VERIFIED_PREFIX = "invalid_verified_prefix"
FULL_REQUESTED = "requested"


@dataclass(frozen=True)
class CheckReport(VerifyReport):
    """A verdict and what it covered: entries from `verified_from` on were recomputed (0: the
    whole log), `hashed` of them; `full_because` says why a check that could have been
    incremental was full; `recorded` whether the end of the log became the verified prefix."""

    verified_from: int = 0
    hashed: int = 0
    full_because: str | None = None
    recorded: bool = False


@dataclass(frozen=True)
class Rotation:
    """A signing key replaced at entry `index`: checkpoints up to that entry are signed by
    `previous`, later ones by `new`, and the checkpoint that first covers it by both."""

    index: int
    previous: str
    new: str


def rotations(connection: Connection, first: int = 0, end: int | None = None) -> list[Rotation]:
    """Every signing-key rotation recorded in the log from entry `first` on (and before entry
    `end`, when given), oldest first."""
    query = (
        select(ledger_entries.c.idx, ledger_entries.c.data)
        .where(ledger_entries.c.data.like(_ROTATION_TEXT))
        .order_by(ledger_entries.c.idx)
    )
    if first:
        query = query.where(ledger_entries.c.idx >= first)
    if end is not None:
        query = query.where(ledger_entries.c.idx < end)
    found = []
    for row in connection.execute(query):
        entry = _parsed(row.data)
        if entry.get("type") == SIGNING_KEY_ROTATED:
            found.append(Rotation(row.idx, str(entry.get("previous_public_key")),
                                  str(entry.get("public_key"))))  # fmt: skip
    return found


class _Keys:
    """Which public keys must have signed the checkpoint of each tree size."""

    def __init__(
        self, rotated: list[Rotation], current: Ed25519PublicKey, first: str | None = None
    ) -> None:
        """`first` is the key in force before the first of `rotated`, when the log before
        them is not being read (an incremental check); otherwise the first rotation says."""
        self.problems: list[str] = []
        self._rotated = rotated
        if first is None:
            first = rotated[0].previous if rotated else public_key_b64(current)
        keys = [first]
        for rotation in rotated:
            if rotation.previous != keys[-1]:
                self.problems.append(
                    f"entry {rotation.index}: the rotation does not replace the key in force"
                )
            keys.append(rotation.new)
        if keys[-1] != public_key_b64(current):
            self.problems.append("the log's newest signing key is not the configured key")
        self._keys = keys

    def for_size(self, size: int) -> list[str]:
        """The key in force for a tree of `size` entries, and the replaced one as well for
        the checkpoint that first covers a rotation."""
        earlier = [rotation for rotation in self._rotated if rotation.index < size]
        signers = [self._keys[len(earlier)]]
        if earlier and earlier[-1].index == size - 1:
            signers.append(earlier[-1].previous)
        return signers

    def covered(self, sizes: set[int]) -> list[str]:
        """Each rotation must be followed by the checkpoint both keys signed."""
        return [
            f"entry {rotation.index}: no checkpoint signed by both keys covers the rotation"
            for rotation in self._rotated
            if rotation.index + 1 not in sizes
        ]


class _Audit:
    """Walks entries and checkpoints side by side, both in ascending order."""

    def __init__(self, checkpoints: Any, keys: _Keys, origin: str, start: Frontier) -> None:
        """`start` is the prefix taken as verified: entries and checkpoints after it follow."""
        self.problems: list[str] = []
        self.hidden = 0
        self.frontier = start
        self.verified_from = start.size
        self.newest_checkpoint = start.size
        self.checked_sizes: set[int] = set()
        self._checkpoints = iter(checkpoints)
        self._pending = next(self._checkpoints, None)
        self._keys = keys
        self._origin = origin
        for problem in keys.problems:
            self.report(problem)

    def report(self, problem: str) -> None:
        # One early edit breaks every later checkpoint; keep the report readable.
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.hidden += 1

    def entry(self, row: Any, expected: int) -> None:
        self.frontier.append(_checked_leaf(row, expected, self.report))

    def settle_checkpoints(self) -> None:
        """Check every checkpoint up to the current size against the recomputed root."""
        size = self.frontier.size
        while self._pending is not None and self._pending.tree_size <= size:
            checkpoint = self._pending
            if checkpoint.tree_size == size:
                self.check(checkpoint)
            else:
                self.report(f"checkpoint {checkpoint.tree_size} names no size of this log")
            self.newest_checkpoint = checkpoint.tree_size
            self._pending = next(self._checkpoints, None)

    def finish(self) -> CheckReport:
        size = self.frontier.size
        for checkpoint in [self._pending, *self._checkpoints]:
            if checkpoint is not None:
                self.report(f"checkpoint {checkpoint.tree_size} is beyond the {size} entries")
                self.newest_checkpoint = checkpoint.tree_size
        if self.newest_checkpoint < size:
            first = self.newest_checkpoint
            self.report(f"entries from {first} on are not covered by a signed checkpoint")
        for problem in self._keys.covered(self.checked_sizes):
            self.report(problem)
        problems = self.problems + ([f"... and {self.hidden} more"] if self.hidden else [])
        return CheckReport(
            ok=not problems,
            problems=problems,
            tree_size=size,
            verified_from=self.verified_from,
            hashed=size - self.verified_from,
        )

    def check(self, row: Any) -> None:
        """Check one stored checkpoint against the frontier as it stands."""
        if _check_checkpoint(row, self._keys, self._origin, self.frontier, self.report):
            self.checked_sizes.add(row.tree_size)


def _check_checkpoint(
    row: Any, keys: _Keys, origin: str, frontier: Frontier, report: Callable[[str], None]
) -> bool:
    """Report what is wrong with one stored checkpoint, `frontier` being the log recomputed to
    its size; True if every key that had to sign it did."""
    size = row.tree_size
    try:
        signed = [
            verify_checkpoint(row.note, public_key_from_b64(key), origin)
            for key in keys.for_size(size)
        ]
    except CheckpointInvalid as error:
        report(f"checkpoint {size}: {error.message}")
        return False
    signed_size, signed_root = signed[0]
    if signed_size != size or signed_root.hex() != row.root_hash:
        report(f"checkpoint {size}: signed note does not match its stored size and root")
    elif signed_root != frontier.root():
        report(f"checkpoint {size}: signed root differs from the recomputed log")
    return True


def audit_log(connection: Connection, public_key: Ed25519PublicKey, origin: str) -> VerifyReport:
    """Recompute the whole log from its stored data and check it against every checkpoint.

    Run inside one transaction so entries and checkpoints come from the same snapshot.
    Truncating the newest entries together with their checkpoints is invisible here; only a
    checkpoint kept outside the store (a client's receipt, a witness) can reveal it.
    """
    return audit(connection, public_key, origin)[0]


def audit(
    connection: Connection,
    public_key: Ed25519PublicKey,
    origin: str,
    since: Frontier | None = None,
) -> tuple[CheckReport, Frontier]:
    """Recompute the log from the verified prefix `since` on (the whole log when None) and
    check every checkpoint beyond it; return the report and the log's frontier.

    From a prefix, the checkpoint at its size must still hold its root, the log must not be
    shorter, and every later entry and checkpoint is checked as a full audit would; entries
    inside the prefix are taken as verified (see `rehash`). Run inside one transaction.
    """
    start = Frontier() if since is None else since.copy()
    first = start.size
    if since is None:
        keys = _Keys(rotations(connection), public_key)
    else:
        # The prefix's note verified under `public_key`, which was then the key in force.
        keys = _Keys(rotations(connection, first), public_key, public_key_b64(public_key))
    streaming = connection.execution_options(yield_per=_PAGE)
    checkpoints = streaming.execute(
        select(ledger_checkpoints)
        .where(ledger_checkpoints.c.tree_size > first)
        .order_by(ledger_checkpoints.c.tree_size)
    )
    audit = _Audit(checkpoints, keys, origin, start)
    if first:
        _check_prefix(connection, audit)
    audit.settle_checkpoints()
    entries = streaming.execute(
        select(ledger_entries).where(ledger_entries.c.idx >= first).order_by(ledger_entries.c.idx)
    )
    expected = first
    for row in entries:
        audit.entry(row, expected)
        expected = row.idx + 1
        audit.settle_checkpoints()
    return audit.finish(), audit.frontier


def _check_prefix(connection: Connection, audit: _Audit) -> None:
    """The log still reaches the verified prefix, and its checkpoint there still holds."""
    size = audit.frontier.size
    newest = connection.execute(select(func.max(ledger_entries.c.idx))).scalar()
    stored = 0 if newest is None else newest + 1
    if stored < size:
        audit.report(f"the log holds {stored} entries, fewer than the {size} already verified")
    row = connection.execute(
        select(ledger_checkpoints).where(ledger_checkpoints.c.tree_size == size)
    ).first()
    if row is None:
        audit.report(f"checkpoint {size}, the end of the verified prefix, is missing")
    else:
        audit.check(row)


def _checked_leaf(row: Any, expected: int, report: Callable[[str], None]) -> bytes:
    """Report what is wrong with one stored entry; return its leaf hash, from its data."""
    if row.idx != expected:
        report(f"entry {expected} is missing; the next stored index is {row.idx}")
    computed = leaf_hash(row.data.encode("utf-8"))
    if computed.hex() != row.leaf_hash:
        report(f"entry {row.idx}: stored leaf hash does not match its data")
    parsed = _parsed(row.data)
    if parsed.get("idempotency_key") != row.idempotency_key:
        report(f"entry {row.idx}: idempotency key does not match its data")
    if period_of(parsed) != row.period:
        report(f"entry {row.idx}: period does not match its data")
    if "cost" in parsed:
        try:
            posting_lines(row.idx, parsed)
        except LedgerError as error:
            report(error.message)
    return computed


# --- the verified prefix ----------------------------------------------------------------------


def sign_verified(key: Ed25519PrivateKey, origin: str, frontier: Frontier) -> str:
    """A signed note saying the log's first `frontier.size` entries verified, with the
    frontier that lets the next verification go on from there."""
    lines = [VERIFIED_HEADER, origin, str(frontier.size), _b64(frontier.root())]
    lines += [_b64(node) for node in frontier.hashes]
    return sign_note(key, origin, "".join(f"{line}\n" for line in lines))


def open_verified(note: str, public_key: Ed25519PublicKey, origin: str) -> Frontier:
    """The frontier a verified-prefix note records, if the ledger key signed it for `origin`."""
    lines = open_note(note, origin, public_key).split("\n")[:-1]
    if len(lines) < 4 or lines[0] != VERIFIED_HEADER or lines[1] != origin:
        raise CheckpointInvalid("not a verified-prefix note of this log")
    if not _SIZE.fullmatch(lines[2]):
        raise CheckpointInvalid("the verified prefix's size is malformed")
    try:
        root = base64.b64decode(lines[3], validate=True)
        hashes = [base64.b64decode(line, validate=True) for line in lines[4:]]
        frontier = Frontier.restore(int(lines[2]), hashes)
    except (binascii.Error, ValueError) as error:
        raise CheckpointInvalid("the verified prefix's hashes are malformed") from error
    if frontier.root() != root:
        raise CheckpointInvalid("the verified prefix's frontier does not make its root")
    return frontier


def load_verified(
    connection: Connection, public_key: Ed25519PublicKey, origin: str
) -> tuple[Frontier | None, str | None]:
    """The stored verified prefix if its note verifies; else None and why not."""
    row = connection.execute(
        select(ledger_verified.c.note).where(ledger_verified.c.slot == VERIFIED_SLOT)
    ).first()
    if row is None:
        return None, NO_VERIFIED_PREFIX
    try:
        return open_verified(row.note, public_key, origin), None
    except CheckpointInvalid:
        return None, INVALID_VERIFIED_PREFIX


def save_verified(
    connection: Connection, key: Ed25519PrivateKey, origin: str, frontier: Frontier
) -> None:
    """Make `frontier` the verified prefix, unless a valid one as long is stored already
    (another process may have verified further). Run while holding the write lock."""
    stored, _ = load_verified(connection, key.public_key(), origin)
    if stored is not None and stored.size >= frontier.size:
        return
    values = {
        "tree_size": frontier.size,
        "note": sign_verified(key, origin, frontier),
        "verified_at": datetime.now(UTC).isoformat(),
    }
    present = connection.execute(
        select(ledger_verified.c.slot).where(ledger_verified.c.slot == VERIFIED_SLOT)
    ).first()
    if present is None:
        connection.execute(insert(ledger_verified).values(slot=VERIFIED_SLOT, **values))
    else:
        connection.execute(
            update(ledger_verified).where(ledger_verified.c.slot == VERIFIED_SLOT).values(values)
        )


def withdraw_verified(connection: Connection) -> None:
    """Forget the verified prefix, so every process's next check recomputes the whole log."""
    connection.execute(delete(ledger_verified).where(ledger_verified.c.slot == VERIFIED_SLOT))


# --- re-hashing the prefix ----------------------------------------------------------------------


@dataclass
class Rehash:
    """A slow pass over the verified prefix `target`, recomputing its leaves from their data a
    slice at a time: tampering inside the prefix, which incremental checks take as verified,
    shows when the pass ends with another root than the one verified.

    Given `signer`, the key the prefix is signed with (base64), and the log's `origin`, the
    pass also checks each stored checkpoint inside the prefix when the re-hashed tree reaches
    its size: signed by the key then in force, and holding the re-hashed root. Which key was in
    force comes from the rotations inside the prefix, searched for first, a window at a time.
    """

    target: Frontier
    frontier: Frontier = field(default_factory=Frontier)
    next_index: int = 0
    signer: str | None = None
    origin: str = ""
    # Entries before `searched` have been searched for rotations; `keys` is set once all were.
    searched: int = 0
    rotated: list[Rotation] = field(default_factory=list)
    keys: _Keys | None = None
    # Sizes whose checkpoint the keys of a rotation both signed, to see each rotation covered.
    cosigned: set[int] = field(default_factory=set)
    # Once a problem is found the re-hashed tree is no longer the one the checkpoints signed:
    # comparing more of them would only repeat it.
    failed: bool = False

    @property
    def done(self) -> bool:
        return self.next_index >= self.target.size


def rehash(connection: Connection, state: Rehash, limit: int) -> tuple[list[str], int]:
    """Recompute up to `limit` more entries of `state`'s prefix; (problems, entries hashed).

    When the pass checks checkpoints, `limit` is a cost: an entry costs one, a checkpoint
    CHECKPOINT_COST, and a slice holds at least one entry. While the prefix's rotations are
    still being searched, nothing is hashed."""
    problems: list[str] = []
    report = _failing(state, problems)
    if state.signer is not None and state.keys is None:
        _search_rotations(connection, state, max(limit, 1) * ROTATION_WINDOW, report)
        if state.keys is None:
            return problems, 0
    first = state.next_index
    end = min(first + limit, state.target.size)
    found = _checkpoints_between(connection, state, first, end)
    end = _slice_end(first, end, limit, [row.tree_size for row in found])
    checkpoints = deque(row for row in found if row.tree_size <= end)
    rows = connection.execute(
        select(ledger_entries)
        .where(ledger_entries.c.idx >= first, ledger_entries.c.idx < end)
        .order_by(ledger_entries.c.idx)
    )
    hashed = 0
    for row in rows:
        state.frontier.append(_checked_leaf(row, state.next_index, report))
        state.next_index = row.idx + 1
        hashed += 1
        while checkpoints and checkpoints[0].tree_size <= state.next_index:
            _recheck(checkpoints.popleft(), state, report)
    if state.next_index < end - 1:
        report(f"entries {state.next_index} to {end - 1} are missing")
    elif state.next_index < end:
        report(f"entry {state.next_index} is missing")
    state.next_index = end
    if state.done:
        if state.frontier.root() != state.target.root():
            report(
                f"entries before {state.target.size} no longer hash to the root verified for them"
            )
        if state.keys is not None and not state.failed:
            for problem in state.keys.covered(state.cosigned):
                report(problem)
    return problems, hashed


def _search_rotations(
    connection: Connection, state: Rehash, window: int, report: Callable[[str], None]
) -> None:
    """Search the next `window` entries of the prefix for rotations; after the last, settle
    which key signed each size (the chain must end at the key that signed the prefix)."""
    end = min(state.searched + window, state.target.size)
    state.rotated += rotations(connection, state.searched, end)
    state.searched = end
    if end < state.target.size or state.signer is None:
        return
    state.keys = _Keys(state.rotated, public_key_from_b64(state.signer))
    for problem in state.keys.problems:
        report(problem)


def _slice_end(first: int, end: int, limit: int, sizes: list[int]) -> int:
    """Where a slice from `first` ends (at most `end`) so its entries, and the checkpoints of
    `sizes` (ascending, at most `end`) it reaches, cost at most `limit`; never before
    `first + 1`, so every slice makes progress."""
    if end <= first:
        return end
    best = first
    # Between reaching `reached` checkpoints and the next, each further entry costs one.
    for reached, low in enumerate([first + 1, *sizes]):
        affordable = first + limit - CHECKPOINT_COST * reached
        if affordable < low:
            break
        following = sizes[reached] - 1 if reached < len(sizes) else end
        best = max(best, min(following, affordable))
    return max(best, first + 1)


def _checkpoints_between(connection: Connection, state: Rehash, first: int, end: int) -> list:
    """The stored checkpoints of sizes first+1 to end, when the pass checks them."""
    if state.keys is None or state.failed:
        return []
    query = (
        select(ledger_checkpoints)
        .where(ledger_checkpoints.c.tree_size > first, ledger_checkpoints.c.tree_size <= end)
        .order_by(ledger_checkpoints.c.tree_size)
    )
    return list(connection.execute(query))


def _recheck(row: Any, state: Rehash, report: Callable[[str], None]) -> None:
    """Check one checkpoint inside the prefix against the tree re-hashed to its size."""
    if state.failed or state.keys is None:
        return
    if row.tree_size != state.frontier.size:
        report(f"checkpoint {row.tree_size} names no size the re-hashed log reached")
    elif _check_checkpoint(row, state.keys, state.origin, state.frontier, report) and (
        len(state.keys.for_size(row.tree_size)) > 1
    ):
        state.cosigned.add(row.tree_size)


def _failing(state: Rehash, problems: list[str]) -> Callable[[str], None]:
    """A bounded report that also marks the pass as failed."""
    bounded = _bounded(problems)

    def report(problem: str) -> None:
        state.failed = True
        bounded(problem)

    return report


def _bounded(problems: list[str]) -> Callable[[str], None]:
    def report(problem: str) -> None:
        if len(problems) < MAX_PROBLEMS:
            problems.append(problem)

    return report


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _parsed(data: str) -> dict:
    try:
        parsed = json.loads(data)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
