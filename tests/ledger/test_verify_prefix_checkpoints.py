"""The background pass over the verified prefix re-checks the stored checkpoints inside it
(signature by the key then in force, root against the re-hashed tree), on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

from ledger import Ledger
from ledger.checkpoints import sign_checkpoint
from ledger.merkle import leaf_hash
from ledger.verify import CHECKPOINT_COST, ROTATION_WINDOW, Rehash
from tests.ledger.stores import raw, store_paths

ORIGIN = "veil.local/ledger"
# A slice's cost: two entries with a checkpoint each, as fill() leaves them.
LIMIT = 2 * (1 + CHECKPOINT_COST)


@pytest.fixture(params=["sqlite", "postgresql"])
def paths(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    return store_paths(request.param, tmp_path)


def fill(log: Ledger, first: int, last: int) -> None:
    """One append at a time, so each entry has a checkpoint of its own."""
    for i in range(first, last):
        log.append({"kind": "query", "n": i, "at": "2026-11-01T00:00:00Z"}, f"k{i}")


def prefixed(paths: tuple[str, Path], size: int) -> Ledger:
    log = Ledger.open(*paths)
    fill(log, 0, size)
    assert log.verify_incremental().ok  # the prefix: `size`
    return log


def recheck_until_done(log: Ledger, limit: int) -> list[tuple[list[str], int]]:
    steps: list[tuple[list[str], int]] = []
    state: Rehash | None = None
    while True:
        state, problems, hashed = log.recheck(state, limit)
        steps.append((problems, hashed))
        if state is None or state.done:
            return steps


def problems_of(steps: list[tuple[list[str], int]]) -> list[str]:
    return [problem for problems, _ in steps for problem in problems]


def test_an_honest_prefix_passes_slice_by_slice(paths: tuple[str, Path]) -> None:
    log = prefixed(paths, 13)
    assert recheck_until_done(log, LIMIT) == [([], 2)] * 6 + [([], 1)]
    log.close()


def test_a_slice_holds_more_entries_where_fewer_checkpoints_were_signed(
    paths: tuple[str, Path],
) -> None:
    log = prefixed(paths, 13)
    # Busy gateways sign one checkpoint a batch: here at 5, 10 and 13 only.
    raw(paths, "DELETE FROM ledger_checkpoints WHERE tree_size NOT IN (5, 10, 13)")
    # 9 entries and checkpoint 5 cost 17; 3 entries and checkpoint 10, 11; then the last.
    assert recheck_until_done(log, LIMIT) == [([], 9), ([], 3), ([], 1)]
    log.close()


def test_a_slice_too_small_for_an_entry_and_its_checkpoint_still_makes_progress(
    paths: tuple[str, Path],
) -> None:
    log = prefixed(paths, 3)
    assert recheck_until_done(log, 1) == [([], 1)] * 3
    log.close()


def test_a_checkpoint_re_signed_by_another_key_is_found_where_the_pass_reaches_it(
    paths: tuple[str, Path],
) -> None:
    log = prefixed(paths, 13)
    root = b"\x01" * 32
    forged = sign_checkpoint(Ed25519PrivateKey.generate(), ORIGIN, 7, root)
    sql = "UPDATE ledger_checkpoints SET note = :n, root_hash = :r WHERE tree_size = 7"
    raw(paths, sql, n=forged, r=root.hex())
    steps = recheck_until_done(log, LIMIT)
    # The fourth slice, entries 6 and 7, reaches checkpoint 7.
    assert steps[3] == (["checkpoint 7: no signature from the ledger key"], 2)
    assert problems_of(steps) == ["checkpoint 7: no signature from the ledger key"]
    log.close()


def test_a_stored_root_that_its_note_does_not_sign_is_found(paths: tuple[str, Path]) -> None:
    log = prefixed(paths, 13)
    raw(paths, "UPDATE ledger_checkpoints SET root_hash = :r WHERE tree_size = 2", r="ab" * 32)
    assert problems_of(recheck_until_done(log, LIMIT)) == [
        "checkpoint 2: signed note does not match its stored size and root"
    ]
    log.close()


def test_an_entry_rewritten_with_its_own_hash_fails_at_the_next_checkpoint(
    paths: tuple[str, Path],
) -> None:
    """Not only when the pass ends: the checkpoint after the entry no longer holds, and one
    report is enough (the checkpoints after it are not compared)."""
    log = prefixed(paths, 13)
    edit = '{"at":"2026-11-01T00:00:00Z","idempotency_key":"k3","kind":"query","n":99}'
    sql = "UPDATE ledger_entries SET data = :d, leaf_hash = :h WHERE idx = 3"
    raw(paths, sql, d=edit, h=leaf_hash(edit.encode()).hex())
    steps = recheck_until_done(log, LIMIT)
    assert steps[1] == (["checkpoint 4: signed root differs from the recomputed log"], 2)
    assert problems_of(steps) == [
        "checkpoint 4: signed root differs from the recomputed log",
        "entries before 13 no longer hash to the root verified for them",
    ]
    log.close()


def test_entries_missing_at_the_end_of_a_slice_are_named(paths: tuple[str, Path]) -> None:
    log = prefixed(paths, 13)
    raw(paths, "DELETE FROM ledger_entries WHERE idx IN (3, 4, 5)")
    # Sparse checkpoints, so the slices are long enough to end inside the gap.
    raw(paths, "DELETE FROM ledger_checkpoints WHERE tree_size <> 13")
    steps = recheck_until_done(log, 6)
    assert steps[0] == (["entries 3 to 5 are missing"], 3)
    assert steps[-1][0] == ["entries before 13 no longer hash to the root verified for them"]
    log.close()


def test_checkpoints_across_key_rotations_are_checked_with_the_key_then_in_force(
    paths: tuple[str, Path],
) -> None:
    log = Ledger.open(*paths)
    fill(log, 0, 3)
    log.rotate_signing_key(Ed25519PrivateKey.generate())  # entry 3, cosigned checkpoint 4
    fill(log, 4, 6)
    log.rotate_signing_key(Ed25519PrivateKey.generate())  # entry 6, cosigned checkpoint 7
    fill(log, 7, 9)
    assert log.verify_incremental().ok
    assert recheck_until_done(log, LIMIT) == [([], 2)] * 4 + [([], 1)]
    log.close()


def stored_root(paths: tuple[str, Path], size: int) -> bytes:
    engine = create_engine(paths[0])
    with engine.connect() as connection:
        query = text("SELECT root_hash FROM ledger_checkpoints WHERE tree_size = :s")
        root = connection.execute(query, {"s": size}).scalar_one()
    engine.dispose()
    return bytes.fromhex(root)


def test_a_rotation_checkpoint_without_the_replaced_keys_signature_is_found(
    paths: tuple[str, Path],
) -> None:
    log = Ledger.open(*paths)
    fill(log, 0, 3)
    new = Ed25519PrivateKey.generate()
    log.rotate_signing_key(new)  # entry 3, checkpoint 4 signed by both keys
    fill(log, 4, 6)
    assert log.verify_incremental().ok
    # Checkpoint 4 as the new key alone signs it: nothing then vouches for the new key.
    alone = sign_checkpoint(new, ORIGIN, 4, stored_root(paths, 4))
    raw(paths, "UPDATE ledger_checkpoints SET note = :n WHERE tree_size = 4", n=alone)
    assert not log.verify().ok
    assert problems_of(recheck_until_done(log, LIMIT)) == [
        "checkpoint 4: no signature from the ledger key"
    ]
    log.close()


def test_rotations_are_searched_a_window_at_a_time_before_anything_is_hashed(
    paths: tuple[str, Path],
) -> None:
    """What one call does is bounded by its limit, however long the prefix: the first check
    after start-up costs no more than any other."""
    size = 2 * ROTATION_WINDOW + 3
    log = prefixed(paths, size)
    steps = recheck_until_done(log, 1)
    # Windows of ROTATION_WINDOW entries: the third reaches the end and its call hashes one.
    assert steps[:3] == [([], 0), ([], 0), ([], 1)]
    assert problems_of(steps) == [] and sum(hashed for _, hashed in steps) == size
    log.close()
