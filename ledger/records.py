"""The values the ledger hands back: receipts, entries, checkpoints and verify reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Receipt:
    """Where an entry landed: its index and hex leaf hash; `fresh` is False when an entry with
    the same idempotency key was already there and nothing new was written."""

    index: int
    leaf_hash: str
    fresh: bool = True


@dataclass(frozen=True)
class Entry:
    """One log entry; `data` is the exact canonical JSON text that was hashed."""

    index: int
    leaf_hash: str
    data: str


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: size, hex root and the C2SP signed-note text."""

    tree_size: int
    root_hash: str
    note: str


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    problems: list[str]
    tree_size: int
