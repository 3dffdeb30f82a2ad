"""Incremental verification: from the signed verified prefix on, on both stores, and the watch
that runs it in the background with a slow re-hash of the prefix itself."""

import hashlib
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

from ledger import Frontier, Ledger, LedgerError, canonical_json, load_signing_key
from ledger.checkpoints import sign_checkpoint, sign_note, verify_checkpoint
from ledger.merkle import leaf_hash
from ledger.verify import (
    CHECKPOINT_COST,
    INVALID_VERIFIED_PREFIX,
    NO_VERIFIED_PREFIX,
    open_verified,
    save_verified,
    sign_verified,
)
from services.ledger_watch import PREFIX_DID_NOT_HOLD, LedgerWatch
from services.metrics import Metrics
from tests.ledger.stores import raw, store_paths

ORIGIN = "veil.local/ledger"
VERIFIED, GROWN = 10, 15  # the prefix verified first, then the log's size after growing


@pytest.fixture(params=["sqlite", "postgresql"])
def paths(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    return store_paths(request.param, tmp_path)


def fill(log: Ledger, first: int, last: int) -> None:
    for i in range(first, last):
        log.append({"kind": "query", "n": i, "at": f"2026-11-{1 + i % 28:02d}T00:00:00Z"}, f"k{i}")


def entry_text(i: int, n: int | None = None) -> str:
    """What fill() hashed for entry `i`, with its "n" changed to `n` when given."""
    at = f"2026-11-{1 + i % 28:02d}T00:00:00Z"
    return canonical_json({"kind": "query", "n": i if n is None else n, "at": at,
                           "idempotency_key": f"k{i}"})  # fmt: skip


def grown(paths: tuple[str, Path]) -> Ledger:
    """A log whose first VERIFIED entries are the verified prefix, grown to GROWN since."""
    log = Ledger.open(*paths)
    fill(log, 0, VERIFIED)
    first = log.verify_incremental()
    assert first.ok and first.recorded and first.tree_size == VERIFIED
    fill(log, VERIFIED, GROWN)
    return log


def stored_prefix(paths: tuple[str, Path]) -> tuple[int, str] | None:
    engine = create_engine(paths[0])
    with engine.connect() as connection:
        row = connection.execute(text("SELECT tree_size, note FROM ledger_verified")).first()
    engine.dispose()
    return None if row is None else (row.tree_size, row.note)


def incremental_problems(log: Ledger) -> list[str]:
    """The problems an incremental check (from the prefix at VERIFIED) finds; it must fail."""
    report = log.verify_incremental()
    assert report.full_because is None and report.verified_from == VERIFIED
    assert report.hashed == report.tree_size - VERIFIED
    assert not report.ok and not report.recorded
    return report.problems


# --- an honest log ----------------------------------------------------------------------------


def test_each_check_recomputes_only_what_was_appended_since_the_last(
    paths: tuple[str, Path],
) -> None:
    log = Ledger.open(*paths)
    empty = log.verify_incremental()
    assert empty.ok and empty.full_because == NO_VERIFIED_PREFIX and empty.hashed == 0
    size = 0
    for grow in (7, 1, 0, 30):
        fill(log, size, size + grow)
        report = log.verify_incremental()
        assert report.ok and report.problems == [] and report.recorded
        assert report.full_because is None
        assert (report.verified_from, report.hashed, report.tree_size) == (size, grow, size + grow)
        size += grow
    assert stored_prefix(paths)[0] == size
    assert log.verify().ok
    log.close()


def test_the_first_check_of_a_log_without_a_prefix_is_full(paths: tuple[str, Path]) -> None:
    log = Ledger.open(*paths)
    fill(log, 0, 12)
    report = log.verify_incremental()
    assert report.ok and report.full_because == NO_VERIFIED_PREFIX
    assert (report.verified_from, report.hashed) == (0, 12)
    log.close()


def test_start_up_after_a_restart_is_incremental(paths: tuple[str, Path]) -> None:
    grown(paths).close()  # the prefix stays at VERIFIED; GROWN - VERIFIED entries are new
    reopened = Ledger.open(*paths)
    report = reopened.verify_incremental()
    assert report.ok and report.full_because is None
    assert (report.verified_from, report.hashed) == (VERIFIED, GROWN - VERIFIED)
    reopened.close()
    again = Ledger.open(*paths)
    assert again.verify_incremental().hashed == 0
    again.close()


def test_a_check_after_a_key_rotation_is_full_once(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    log.rotate_signing_key(Ed25519PrivateKey.generate())
    fill(log, GROWN, GROWN + 2)
    # The prefix is signed by the replaced key, which no longer vouches for anything.
    after = log.verify_incremental()
    assert after.ok and after.full_because == INVALID_VERIFIED_PREFIX
    fill(log, GROWN + 2, GROWN + 4)
    report = log.verify_incremental()
    assert report.ok and report.full_because is None and report.hashed == 2
    log.close()


def test_a_rotation_after_the_prefix_fails_under_the_replaced_key(
    paths: tuple[str, Path],
) -> None:
    log = grown(paths)
    log.rotate_signing_key(Ed25519PrivateKey.generate())
    log.close()
    stale = Ledger.open(*paths)  # still configured with the key the prefix is signed with
    problems = incremental_problems(stale)
    assert "the log's newest signing key is not the configured key" in problems
    stale.close()


def test_a_process_behind_never_moves_the_prefix_back(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    assert log.verify_incremental().ok
    behind = Frontier()
    for i in range(VERIFIED):
        behind.append(leaf_hash(entry_text(i).encode()))
    with log._connect(writing=True) as connection:
        save_verified(connection, load_signing_key(paths[1]), ORIGIN, behind)
    assert stored_prefix(paths)[0] == GROWN
    log.close()


# --- opening: the writer goes on from the prefix ------------------------------------------------


def test_the_writer_goes_on_from_the_prefix_not_from_stored_hashes(
    paths: tuple[str, Path],
) -> None:
    """A stored hash changed inside the prefix must not enter the checkpoints signed next."""
    log = grown(paths)
    assert log.verify_incremental().ok  # the prefix is now GROWN
    log.close()
    bogus = hashlib.sha256(b"bogus").hexdigest()
    raw(paths, "UPDATE ledger_entries SET leaf_hash = :h WHERE idx = 3", h=bogus)
    reopened = Ledger.open(*paths)
    fill(reopened, GROWN, GROWN + 1)
    true_tree = Frontier()
    for i in range(GROWN + 1):
        true_tree.append(leaf_hash(entry_text(i).encode()))
    assert reopened.checkpoint().root_hash == true_tree.root().hex()
    reopened.close()


def test_a_log_cut_below_the_prefix_takes_no_appends(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    assert log.verify_incremental().ok
    log.close()
    raw(paths, "DELETE FROM ledger_entries WHERE idx >= 12")
    raw(paths, "DELETE FROM ledger_checkpoints WHERE tree_size > 12")
    reopened = Ledger.open(*paths)
    with pytest.raises(LedgerError) as caught:
        reopened.append({"kind": "more"}, "more")
    assert caught.value.code == "LEDGER_CORRUPT"
    reopened.close()


def test_a_rotation_after_the_prefix_is_seen_on_opening(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    assert log.verify_incremental().ok  # a prefix signed by the key about to be replaced
    new = Ed25519PrivateKey.generate()
    log.rotate_signing_key(new)
    log.close()
    stale = Ledger.open(*paths)
    with pytest.raises(LedgerError, match="replaced this signing key"):
        stale.append({"kind": "query"}, "after-rotation")
    stale.close()
    paths[1].write_bytes(new.private_bytes_raw())
    current = Ledger.open(*paths)
    current.append({"kind": "query"}, "after-rotation")
    assert current.verify().ok
    current.close()


# --- tampering after the prefix: an incremental check finds each ------------------------------


def test_finds_a_changed_new_entry(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    raw(paths, "UPDATE ledger_entries SET data = :d WHERE idx = 12", d=entry_text(12, n=99))
    problems = incremental_problems(log)
    assert problems[0] == "entry 12: stored leaf hash does not match its data"
    log.close()


def test_finds_a_new_entry_rewritten_with_its_leaf_hash(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    edit = entry_text(12, n=99)
    sql = "UPDATE ledger_entries SET data = :d, leaf_hash = :h WHERE idx = 12"
    raw(paths, sql, d=edit, h=leaf_hash(edit.encode()).hex())
    problems = incremental_problems(log)
    assert problems == [f"checkpoint {size}: signed root differs from the recomputed log"
                        for size in range(13, GROWN + 1)]  # fmt: skip
    log.close()


@pytest.mark.parametrize("index", [VERIFIED, 12, GROWN - 1])
def test_finds_a_removed_new_entry(paths: tuple[str, Path], index: int) -> None:
    log = grown(paths)
    raw(paths, "DELETE FROM ledger_entries WHERE idx = :i", i=index)
    problems = incremental_problems(log)
    if index == GROWN - 1:
        assert problems == [f"checkpoint {GROWN} is beyond the {GROWN - 1} entries"]
    else:
        assert problems[0] == f"entry {index} is missing; the next stored index is {index + 1}"
    log.close()


def test_finds_reordered_new_entries(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    swap = "UPDATE ledger_entries SET idx = :new WHERE idx = :old"
    for move in ({"new": 100, "old": 11}, {"new": 11, "old": 12}, {"new": 12, "old": 100}):
        raw(paths, swap, **move)
    problems = incremental_problems(log)
    assert problems[0] == "checkpoint 12: signed root differs from the recomputed log"
    log.close()


def test_finds_a_forged_new_checkpoint(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    forged_root = hashlib.sha256(b"forged").digest()
    note = sign_checkpoint(Ed25519PrivateKey.generate(), ORIGIN, GROWN, forged_root)
    sql = "UPDATE ledger_checkpoints SET root_hash = :r, note = :n WHERE tree_size = :s"
    raw(paths, sql, r=forged_root.hex(), n=note, s=GROWN)
    assert incremental_problems(log) == [f"checkpoint {GROWN}: no signature from the ledger key"]
    log.close()


def test_finds_a_stored_root_the_signed_note_does_not_hold(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    sql = "UPDATE ledger_checkpoints SET root_hash = :r WHERE tree_size = :s"
    raw(paths, sql, r=hashlib.sha256(b"other").hexdigest(), s=GROWN)
    assert incremental_problems(log) == [
        f"checkpoint {GROWN}: signed note does not match its stored size and root"
    ]
    log.close()


def test_finds_an_unsigned_new_entry(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    data = canonical_json({"kind": "forged", "idempotency_key": "x"})
    sql = (
        "INSERT INTO ledger_entries (idx, idempotency_key, data, leaf_hash, created_at)"
        " VALUES (:i, 'x', :d, :h, '2026-01-01T00:00:00+00:00')"
    )
    raw(paths, sql, i=GROWN, d=data, h=leaf_hash(data.encode()).hex())
    assert incremental_problems(log) == [
        f"entries from {GROWN} on are not covered by a signed checkpoint"
    ]
    log.close()


def test_finds_a_log_cut_below_the_prefix(paths: tuple[str, Path]) -> None:
    """Entries cut with their checkpoints leave no trace in the log; the prefix remembers."""
    log = grown(paths)
    raw(paths, "DELETE FROM ledger_entries WHERE idx >= 8")
    raw(paths, "DELETE FROM ledger_checkpoints WHERE tree_size > 8")
    assert log.verify().ok  # a full verification cannot see it
    problems = incremental_problems(log)
    assert f"the log holds 8 entries, fewer than the {VERIFIED} already verified" in problems
    log.close()


def test_finds_the_prefix_checkpoint_changed(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    sql = "UPDATE ledger_checkpoints SET root_hash = :r, note = :n WHERE tree_size = :s"
    root = hashlib.sha256(b"other").digest()
    note = sign_checkpoint(Ed25519PrivateKey.generate(), ORIGIN, VERIFIED, root)
    raw(paths, sql, r=root.hex(), n=note, s=VERIFIED)
    assert incremental_problems(log) == [f"checkpoint {VERIFIED}: no signature from the ledger key"]
    raw(paths, "DELETE FROM ledger_checkpoints WHERE tree_size = :s", s=VERIFIED)
    assert incremental_problems(log) == [
        f"checkpoint {VERIFIED}, the end of the verified prefix, is missing"
    ]
    log.close()


def test_a_failed_check_leaves_the_prefix_where_it_was(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    raw(paths, "UPDATE ledger_entries SET data = :d WHERE idx = 12", d=entry_text(12, n=99))
    for _ in range(2):
        assert not log.verify_incremental().ok
    assert stored_prefix(paths)[0] == VERIFIED
    log.close()


# --- the stored prefix cannot be faked ---------------------------------------------------------


def test_a_missing_prefix_means_a_full_check(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    raw(paths, "DELETE FROM ledger_verified")
    report = log.verify_incremental()
    assert report.ok and report.full_because == NO_VERIFIED_PREFIX
    assert (report.verified_from, report.hashed) == (0, GROWN)
    log.close()


def forged_prefix(paths: tuple[str, Path], note: str, size: int = GROWN) -> None:
    raw(paths, "UPDATE ledger_verified SET tree_size = :s, note = :n", s=size, n=note)


def test_a_prefix_signed_by_another_key_means_a_full_check(paths: tuple[str, Path]) -> None:
    """Whoever can write the store cannot skip verification of what they changed."""
    log = grown(paths)
    edit = entry_text(12, n=99)
    sql = "UPDATE ledger_entries SET data = :d, leaf_hash = :h WHERE idx = 12"
    raw(paths, sql, d=edit, h=leaf_hash(edit.encode()).hex())
    # A prefix over the tampered log, which would make the edit part of what is "verified".
    frontier = Frontier()
    for i in range(GROWN):
        frontier.append(leaf_hash((edit if i == 12 else entry_text(i)).encode()))
    forged_prefix(paths, sign_verified(Ed25519PrivateKey.generate(), ORIGIN, frontier))
    report = log.verify_incremental()
    assert report.full_because == INVALID_VERIFIED_PREFIX and report.verified_from == 0
    assert not report.ok
    assert "checkpoint 13: signed root differs from the recomputed log" in report.problems
    log.close()


def test_an_edited_prefix_note_means_a_full_check(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    size, note = stored_prefix(paths)
    forged_prefix(paths, note.replace(f"\n{size}\n", f"\n{GROWN}\n", 1))
    report = log.verify_incremental()
    assert report.ok and report.full_because == INVALID_VERIFIED_PREFIX
    assert report.hashed == GROWN
    log.close()


def test_a_checkpoint_is_no_verified_prefix_and_back(paths: tuple[str, Path]) -> None:
    """The same key signs both; neither kind of note passes for the other."""
    log = grown(paths)
    checkpoint = log.checkpoint()
    forged_prefix(paths, checkpoint.note)
    assert log.verify_incremental().full_because == INVALID_VERIFIED_PREFIX
    key = load_signing_key(paths[1])
    prefix = stored_prefix(paths)[1]
    assert open_verified(prefix, key.public_key(), ORIGIN).size == GROWN
    with pytest.raises(LedgerError):
        verify_checkpoint(prefix, key.public_key(), ORIGIN)
    log.close()


def test_a_prefix_note_must_hold_a_frontier_that_makes_its_root(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    frontier = Frontier()
    for i in range(3):
        frontier.append(leaf_hash(entry_text(i).encode()))
    note = sign_verified(key, ORIGIN, frontier)
    assert open_verified(note, key.public_key(), ORIGIN).root() == frontier.root()
    text_lines = note[: note.index("\n\n") + 1].splitlines()
    text_lines[-1] = text_lines[-2]  # the right number of hashes, not the right hashes
    bent = sign_note(key, ORIGIN, "".join(f"{line}\n" for line in text_lines))
    with pytest.raises(LedgerError, match="does not make its root"):
        open_verified(bent, key.public_key(), ORIGIN)
    elsewhere = sign_note(key, "other.example/ledger", note[: note.index("\n\n") + 1])
    with pytest.raises(LedgerError, match="not a verified-prefix note of this log"):
        open_verified(elsewhere, key.public_key(), "other.example/ledger")


def test_a_full_check_can_be_asked_for(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    report = log.verify_incremental(full=True)
    assert report.ok and (report.verified_from, report.hashed) == (0, GROWN)
    assert report.full_because == "requested"
    log.close()


# --- inside the prefix: the full verification's job, and the re-hash pass's --------------------


def test_tampering_inside_the_prefix_is_left_to_full_verification(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    edit = entry_text(3, n=99)
    sql = "UPDATE ledger_entries SET data = :d, leaf_hash = :h WHERE idx = 3"
    raw(paths, sql, d=edit, h=leaf_hash(edit.encode()).hex())
    assert log.verify_incremental().ok  # taken as verified: that is what a prefix is
    assert "checkpoint 4: signed root differs from the recomputed log" in log.verify().problems
    log.close()


def rehash_until_done(log: Ledger, limit: int) -> list[tuple[list[str], int]]:
    steps, state = [], None
    while True:
        state, problems, hashed = log.rehash(state, limit)
        steps.append((problems, hashed))
        if state is None or state.done:
            return steps


def test_the_rehash_pass_covers_the_prefix_in_slices(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    assert log.verify_incremental().ok  # the prefix is now GROWN
    assert rehash_until_done(log, 4) == [([], 4), ([], 4), ([], 4), ([], 3)]
    log.close()


def test_the_rehash_pass_finds_a_prefix_entry_rewritten_with_its_hash(
    paths: tuple[str, Path],
) -> None:
    log = grown(paths)
    edit = entry_text(3, n=99)
    sql = "UPDATE ledger_entries SET data = :d, leaf_hash = :h WHERE idx = 3"
    raw(paths, sql, d=edit, h=leaf_hash(edit.encode()).hex())
    steps = rehash_until_done(log, 4)
    assert [problems for problems, _ in steps] == [
        [],
        [],
        [f"entries before {VERIFIED} no longer hash to the root verified for them"],
    ]
    log.close()


def test_the_rehash_pass_finds_a_changed_or_missing_prefix_entry(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    raw(paths, "UPDATE ledger_entries SET data = :d WHERE idx = 5", d=entry_text(5, n=99))
    raw(paths, "DELETE FROM ledger_entries WHERE idx = 1")
    steps = rehash_until_done(log, 4)
    assert steps[0][0] == ["entry 1 is missing; the next stored index is 2"]
    assert steps[1][0] == ["entry 5: stored leaf hash does not match its data"]
    assert steps[-1][0] == [
        f"entries before {VERIFIED} no longer hash to the root verified for them"
    ]
    log.close()


def test_without_a_valid_prefix_there_is_nothing_to_rehash(paths: tuple[str, Path]) -> None:
    log = grown(paths)
    forged_prefix(paths, "not a note")
    assert log.rehash(None, 4) == (None, [], 0)
    log.close()


# --- the watch --------------------------------------------------------------------------------


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_the_watch_checks_what_is_new_and_reports_it(paths: tuple[str, Path]) -> None:
    grown(paths).close()
    log, metrics = Ledger.open(*paths), Metrics()
    # A slice of two entries with their checkpoints (fill() signs one an entry).
    watch = LedgerWatch(log, metrics, interval_s=600, rehash_entries=2 * (1 + CHECKPOINT_COST))
    watch.verify()  # as at start-up: the prefix was stored by the process before
    assert watch.last is not None and watch.last[0] is True
    assert watch.last_report.hashed == GROWN - VERIFIED
    assert sample(metrics, "veil_ledger_verification_ok") == 1
    assert sample(metrics, "veil_ledger_verification_entries") == GROWN - VERIFIED
    assert (
        sample(metrics, "veil_ledger_verifications_total", mode="incremental", reason="none") == 1
    )
    assert sample(metrics, "veil_ledger_rehashed_entries_total") == 2
    log.close()


def test_the_watch_says_why_it_verifies_in_full(
    paths: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    log, metrics = grown(paths), Metrics()
    raw(paths, "DELETE FROM ledger_verified")
    watch = LedgerWatch(log, metrics, interval_s=600)
    with caplog.at_level(logging.WARNING, logger="services.ledger_watch"):
        watch.verify()
    assert watch.last[0] is True and watch.last_report.hashed == GROWN
    assert f"verifying the whole ledger ({GROWN} entries): no verified prefix" in caplog.text
    labels = {"mode": "full", "reason": NO_VERIFIED_PREFIX}
    assert sample(metrics, "veil_ledger_verifications_total", **labels) == 1
    assert sample(metrics, "veil_ledger_verification_entries") == GROWN
    log.close()


def test_the_watch_fails_on_a_changed_new_entry(paths: tuple[str, Path]) -> None:
    log, metrics = grown(paths), Metrics()
    raw(paths, "UPDATE ledger_entries SET data = :d WHERE idx = 12", d=entry_text(12, n=99))
    watch = LedgerWatch(log, metrics, interval_s=600)
    watch.verify()
    assert watch.last[0] is False and sample(metrics, "veil_ledger_verification_ok") == 0
    log.close()


def test_the_watch_fails_once_its_pass_meets_tampering_and_stays_failed(
    paths: tuple[str, Path],
) -> None:
    log, metrics = grown(paths), Metrics()
    edit = entry_text(3, n=99)
    sql = "UPDATE ledger_entries SET data = :d, leaf_hash = :h WHERE idx = 3"
    raw(paths, sql, d=edit, h=leaf_hash(edit.encode()).hex())
    watch = LedgerWatch(log, metrics, interval_s=600, rehash_entries=4)
    verdicts = []
    for _ in range(6):
        watch.verify()
        verdicts.append(watch.last[0])
    # The first check moves the prefix to GROWN; an entry and its checkpoint cost more than 4,
    # so each check re-hashes one entry: entries 0, 1 and 2 pass, and entry 3 reaches
    # checkpoint 4, which no longer holds. From then on every check is full, and fails, in this
    # process and (the prefix withdrawn) in every other.
    assert verdicts == [True, True, True, False, False, False]
    assert stored_prefix(paths) is None
    labels = {"mode": "full", "reason": PREFIX_DID_NOT_HOLD}
    assert sample(metrics, "veil_ledger_verifications_total", **labels) == 2
    other = Ledger.open(*paths)
    assert other.verify_incremental().full_because == NO_VERIFIED_PREFIX
    other.close()
    log.close()


# --- the frontier a prefix stores --------------------------------------------------------------


def test_a_restored_frontier_goes_on_as_the_original() -> None:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(40)]
    for size in range(len(leaves)):
        original = Frontier()
        for leaf in leaves[:size]:
            original.append(leaf)
        restored = Frontier.restore(size, original.hashes)
        assert restored.size == size and restored.root() == original.root()
        for leaf in leaves[size:]:
            original.append(leaf)
            restored.append(leaf)
            assert restored.root() == original.root()


@pytest.mark.parametrize(
    ("size", "hashes"),
    [(3, [b"\x00" * 32]), (1, []), (2, [b"\x00" * 31]), (-1, [])],
)
def test_a_frontier_must_have_one_root_per_one_bit(size: int, hashes: list[bytes]) -> None:
    with pytest.raises(ValueError):
        Frontier.restore(size, hashes)
