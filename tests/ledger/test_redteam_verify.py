"""Red team, incremental verification: what a writer of the ledger's database (without the
signing key) can change that the checks every gateway runs for /metrics never notice, while
`veil ledger verify` does."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, generate_signing_key, load_signing_key
from ledger.checkpoints import sign_checkpoint
from ledger.merkle import leaf_hash
from services.ledger_watch import LedgerWatch
from services.metrics import Metrics
from tests.ledger.stores import raw, store_paths

ORIGIN = "veil.local/ledger"
SIZE, SLICE = 12, 5
# Checks enough for the background pass to cover the whole prefix twice over, even one entry
# a check (an entry and its checkpoint cost more than SLICE: every append here signs one).
CHECKS = 2 * (SIZE + 1)


def _log(tmp_path: Path) -> tuple[Ledger, tuple[str, Path]]:
    paths = store_paths("sqlite", tmp_path)
    log = Ledger.open(*paths)
    for i in range(SIZE):
        log.append({"kind": "query", "n": i, "at": "2026-11-01T00:00:00Z"}, f"k{i}")
    return log, paths


def _watched(log: Ledger) -> list[bool]:
    """The verdicts of a gateway's background checks, the first one making the prefix."""
    watch = LedgerWatch(log, Metrics(), interval_s=600, rehash_entries=SLICE)
    verdicts = []
    for _ in range(CHECKS):
        watch.verify()
        assert watch.last is not None
        verdicts.append(watch.last[0])
    return verdicts


def test_an_entry_changed_inside_the_prefix_is_found_by_the_rehash(tmp_path: Path) -> None:
    """Held: an entry rewritten with its own leaf hash inside the prefix fails a check once
    the pass reaches the prefix's end."""
    log, paths = _log(tmp_path)
    LedgerWatch(log, Metrics(), interval_s=600, rehash_entries=0).verify()  # the prefix: SIZE
    text = '{"at":"2026-11-01T00:00:00Z","idempotency_key":"k3","kind":"query","n":99}'
    sql = "UPDATE ledger_entries SET data = :d, leaf_hash = :h WHERE idx = 3"
    raw(paths, sql, d=text, h=leaf_hash(text.encode()).hex())
    assert not all(_watched(log))
    log.close()


def test_a_checkpoint_forged_inside_the_prefix_fails_the_background_checks(
    tmp_path: Path,
) -> None:
    """Found: incremental checks read only checkpoints past the verified prefix and the re-hash
    pass recomputed entries alone, so a checkpoint inside the prefix replaced by a forged one
    was never noticed by the watch (/metrics stayed ok) though `veil ledger verify` failed.
    Fixed in ledger/verify.py: the pass also checks each checkpoint it reaches."""
    log, paths = _log(tmp_path)
    LedgerWatch(log, Metrics(), interval_s=600, rehash_entries=0).verify()  # the prefix: SIZE
    forged = sign_checkpoint(Ed25519PrivateKey.generate(), ORIGIN, 4, b"\x01" * 32)
    raw(
        paths,
        "UPDATE ledger_checkpoints SET note = :n, root_hash = :r WHERE tree_size = 4",
        n=forged,
        r=(b"\x01" * 32).hex(),
    )
    assert not log.verify().ok  # what `veil ledger verify` runs
    assert not all(_watched(log))
    log.close()


def test_a_process_that_has_not_written_since_a_rotation_still_verifies(tmp_path: Path) -> None:
    """Found: a gateway followed another process's signing-key rotation only when it next
    appended, so a quiet one (a replica with no traffic, or the check that comes first) kept
    verifying with the replaced key and reported the ledger as failing (`the log's newest
    signing key is not the configured key`): a false alarm after every live rotation. Fixed in
    ledger/log.py (a check follows a rotation as an append does)."""
    log, paths = _log(tmp_path)
    quiet = Ledger.open(*paths)  # another gateway process on the same ledger
    assert quiet.verify_incremental().ok
    # `veil keys rotate-signing` while both serve (services/keys.py rotate_signing_key).
    upcoming = paths[1].with_name(paths[1].name + ".next")
    generate_signing_key(upcoming)
    rotator = Ledger.open(*paths)
    rotator.rotate_signing_key(load_signing_key(upcoming))
    rotator.close()
    os.replace(upcoming, paths[1])
    log.append({"kind": "query", "n": SIZE, "at": "2026-11-01T00:00:00Z"}, f"k{SIZE}")

    report = quiet.verify_incremental()
    assert report.ok, report.problems
    assert quiet.public_key() == log.public_key()
    log.close()
    quiet.close()
