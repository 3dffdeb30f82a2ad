"""Full audit of a stored log: leaf hashes, index sequence, postings and every checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, select

from ledger.checkpoints import public_key_b64, public_key_from_b64, verify_checkpoint
from ledger.errors import CheckpointInvalid, LedgerError
from ledger.merkle import Frontier, leaf_hash
from ledger.records import VerifyReport
from ledger.settlements import period_of, posting_lines
from ledger.store import ledger_checkpoints, ledger_entries

MAX_PROBLEMS = 100
_PAGE = 1000
SIGNING_KEY_ROTATED = "signing_key_rotated"
# Canonical JSON writes the pair exactly so; candidates are parsed before they count.
_ROTATION_TEXT = f'%"type":"{SIGNING_KEY_ROTATED}"%'


@dataclass(frozen=True)
class Rotation:
    """A signing key replaced at entry `index`: checkpoints up to that entry are signed by
    `previous`, later ones by `new`, and the checkpoint that first covers it by both."""

    index: int
    previous: str
    new: str


def rotations(connection: Connection) -> list[Rotation]:
    """Every signing-key rotation recorded in the log, oldest first."""
    query = (
        select(ledger_entries.c.idx, ledger_entries.c.data)
        .where(ledger_entries.c.data.like(_ROTATION_TEXT))
        .order_by(ledger_entries.c.idx)
    )
    found = []
    for row in connection.execute(query):
        entry = _parsed(row.data)
        if entry.get("type") == SIGNING_KEY_ROTATED:
            found.append(Rotation(row.idx, str(entry.get("previous_public_key")),
                                  str(entry.get("public_key"))))  # fmt: skip
    return found


class _Keys:
    """Which public keys must have signed the checkpoint of each tree size."""

    def __init__(self, rotated: list[Rotation], current: Ed25519PublicKey) -> None:
        self.problems: list[str] = []
        self._rotated = rotated
        keys = [rotated[0].previous] if rotated else [public_key_b64(current)]
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

    def __init__(self, checkpoints: Any, keys: _Keys, origin: str) -> None:
        self.problems: list[str] = []
        self.hidden = 0
        self.frontier = Frontier()
        self.newest_checkpoint = 0
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
        if row.idx != expected:
            self.report(f"entry {expected} is missing; the next stored index is {row.idx}")
        computed = leaf_hash(row.data.encode("utf-8"))
        if computed.hex() != row.leaf_hash:
            self.report(f"entry {row.idx}: stored leaf hash does not match its data")
        parsed = _parsed(row.data)
        if parsed.get("idempotency_key") != row.idempotency_key:
            self.report(f"entry {row.idx}: idempotency key does not match its data")
        if period_of(parsed) != row.period:
            self.report(f"entry {row.idx}: period does not match its data")
        if "cost" in parsed:
            try:
                posting_lines(row.idx, parsed)
            except LedgerError as error:
                self.report(error.message)
        self.frontier.append(computed)

    def settle_checkpoints(self) -> None:
        """Check every checkpoint up to the current size against the recomputed root."""
        size = self.frontier.size
        while self._pending is not None and self._pending.tree_size <= size:
            checkpoint = self._pending
            if checkpoint.tree_size == size:
                self._check(checkpoint)
            else:
                self.report(f"checkpoint {checkpoint.tree_size} names no size of this log")
            self.newest_checkpoint = checkpoint.tree_size
            self._pending = next(self._checkpoints, None)

    def finish(self) -> VerifyReport:
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
        return VerifyReport(ok=not problems, problems=problems, tree_size=size)

    def _check(self, row: Any) -> None:
        size = row.tree_size
        try:
            signed = [
                verify_checkpoint(row.note, public_key_from_b64(key), self._origin)
                for key in self._keys.for_size(size)
            ]
        except CheckpointInvalid as error:
            self.report(f"checkpoint {size}: {error.message}")
            return
        self.checked_sizes.add(size)
        signed_size, signed_root = signed[0]
        if signed_size != size or signed_root.hex() != row.root_hash:
            self.report(f"checkpoint {size}: signed note does not match its stored size and root")
        elif signed_root != self.frontier.root():
            self.report(f"checkpoint {size}: signed root differs from the recomputed log")


def audit_log(connection: Connection, public_key: Ed25519PublicKey, origin: str) -> VerifyReport:
    """Recompute the log from its stored data and check it against every checkpoint.

    Run inside one transaction so entries and checkpoints come from the same snapshot.
    Truncating the newest entries together with their checkpoints is invisible here; only a
    checkpoint kept outside the store (a client's receipt, a witness) can reveal it.
    """
    streaming = connection.execution_options(yield_per=_PAGE)
    checkpoints = streaming.execute(
        select(ledger_checkpoints).order_by(ledger_checkpoints.c.tree_size)
    )
    audit = _Audit(checkpoints, _Keys(rotations(connection), public_key), origin)
    audit.settle_checkpoints()
    entries = streaming.execute(select(ledger_entries).order_by(ledger_entries.c.idx))
    expected = 0
    for row in entries:
        audit.entry(row, expected)
        expected = row.idx + 1
        audit.settle_checkpoints()
    return audit.finish()


def _parsed(data: str) -> dict:
    try:
        parsed = json.loads(data)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
