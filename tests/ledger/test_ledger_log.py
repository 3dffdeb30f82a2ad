import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

import ledger.log
from ledger import (
    Frontier,
    Ledger,
    LedgerError,
    Receipt,
    canonical_json,
    generate_signing_key,
    leaf_hash,
    load_signing_key,
    root_from_leaves,
    sign_checkpoint,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from ledger.checkpoints import public_key_b64
from ledger.store import SEQUENCER_LOCK
from tests.ledger.stores import raw, store_paths
from tests.support import wait_until

ORIGIN = "veil.local/ledger"


@pytest.fixture(params=["sqlite", "postgresql"])
def paths(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    return store_paths(request.param, tmp_path)


@pytest.fixture
def log(paths: tuple[str, Path]) -> Ledger:
    opened = Ledger.open(*paths)
    yield opened
    opened.close()


def fill(log: Ledger, n: int) -> list[Receipt]:
    return [
        log.append({"kind": "query", "n": i, "at": f"2026-11-{1 + i % 28:02d}T00:00:00Z"}, f"k{i}")
        for i in range(n)
    ]


def test_append_and_page(log: Ledger) -> None:
    receipts = fill(log, 25)
    assert [r.index for r in receipts] == list(range(25))
    first = log.entries(limit=1)[0]
    assert first.data == canonical_json({"kind": "query", "n": 0, "at": "2026-11-01T00:00:00Z",
                                         "idempotency_key": "k0"})  # fmt: skip
    assert first.leaf_hash == hashlib.sha256(b"\x00" + first.data.encode()).hexdigest()
    assert first.leaf_hash == receipts[0].leaf_hash
    assert [e.index for e in log.entries(limit=10)] == list(range(10))
    assert [e.index for e in log.entries(after=9, limit=10)] == list(range(10, 20))
    assert [e.index for e in log.entries(after=19)] == list(range(20, 25))
    assert log.entries(after=24) == []
    assert len(log.entries(after=-1)) == 25


def test_head_gives_the_size_and_when_the_newest_entry_committed(log: Ledger) -> None:
    assert log.head() == (0, None)
    before = datetime.now(UTC)
    fill(log, 3)
    size, committed = log.head()
    assert size == 3 == log.checkpoint().tree_size
    assert committed is not None and before <= committed <= datetime.now(UTC)


def test_page_limit_is_capped(log: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(log, 5)
    monkeypatch.setattr(ledger.log, "MAX_PAGE", 3)
    assert len(log.entries(limit=1000)) == 3
    with pytest.raises(LedgerError):
        log.entries(limit=0)


def test_idempotency(log: Ledger) -> None:
    first = log.append({"kind": "query"}, "same")
    assert first.fresh
    again = Receipt(first.index, first.leaf_hash, fresh=False)
    assert log.append({"kind": "query"}, "same") == again
    assert log.append({"kind": "query", "idempotency_key": "same"}, "same") == again
    assert log.append({"kind": "other"}, "same") == again
    assert len(log.entries()) == 1 and log.checkpoint().tree_size == 1
    assert log.find("same") == log.entries()[0]
    assert log.find("missing") is None


@pytest.mark.parametrize(
    ("entry", "key"),
    [({"idempotency_key": "other"}, "k"), ({"x": float("nan")}, "k"), ({"x": b"1"}, "k"),
     ({"x": 1}, ""), (["not", "an", "object"], "k")],
)  # fmt: skip
def test_rejects_bad_entries(log: Ledger, entry: object, key: str) -> None:
    with pytest.raises(LedgerError) as caught:
        log.append(entry, key)  # type: ignore[arg-type]
    assert caught.value.code == "LEDGER_INVALID_ENTRY"
    assert log.entries() == []


def test_durable_across_reopen(paths: tuple[str, Path]) -> None:
    log = Ledger.open(*paths)
    fill(log, 9)
    before = log.checkpoint()
    log.close()
    log = Ledger.open(*paths)
    assert log.checkpoint() == before
    log.append({"kind": "after"}, "after")
    leaves = [bytes.fromhex(e.leaf_hash) for e in log.entries()]
    assert log.checkpoint().root_hash == root_from_leaves(leaves).hex()
    assert log.checkpoint().tree_size == 10
    assert log.verify().ok
    log.close()


def test_checkpoint_note_verifies_with_public_key(log: Ledger) -> None:
    empty = log.checkpoint()
    name, public_key = log.public_key()
    assert name == ORIGIN
    assert verify_checkpoint(empty.note, public_key, ORIGIN) == (0, bytes.fromhex(empty.root_hash))
    fill(log, 3)
    checkpoint = log.checkpoint()
    size, root = verify_checkpoint(checkpoint.note, public_key, ORIGIN)
    assert (size, root.hex()) == (checkpoint.tree_size, checkpoint.root_hash) == (3, root.hex())


def test_proofs_verify(log: Ledger) -> None:
    checkpoints = [log.checkpoint()]
    receipts = []
    for i in range(12):
        receipts.append(log.append({"n": i}, f"k{i}"))
        checkpoints.append(log.checkpoint())
    roots = [bytes.fromhex(c.root_hash) for c in checkpoints]
    for size in range(1, 13):
        for index in range(size):
            proof = [bytes.fromhex(p) for p in log.inclusion_proof(index, size)]
            leaf = bytes.fromhex(receipts[index].leaf_hash)
            assert verify_inclusion(leaf, index, size, proof, roots[size])
        for frm in range(size + 1):
            proof = [bytes.fromhex(p) for p in log.consistency_proof(frm, size)]
            assert verify_consistency(frm, size, roots[frm], roots[size], proof)
    for bad in [(3, 3), (0, 13), (-1, 2)]:
        with pytest.raises(LedgerError) as caught:
            log.inclusion_proof(*bad)
        assert caught.value.code == "LEDGER_INVALID_RANGE"
    for bad in [(5, 4), (0, 13)]:
        with pytest.raises(LedgerError):
            log.consistency_proof(*bad)


def test_concurrent_appends_are_sequenced(log: Ledger) -> None:
    def work(worker: int) -> None:
        for i in range(10):
            log.append({"worker": worker, "i": i}, f"w{worker}-{i}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [e.index for e in log.entries()] == list(range(80))
    assert log.verify().ok


@contextmanager
def store_write_locked(paths: tuple[str, Path]) -> Iterator[Callable[[str], None]]:
    """Hold the store's write lock from outside, as another gateway process would; yields a
    way to run SQL in that transaction, which commits (releasing the lock) on exit."""
    url = paths[0]
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        yield connection.execute
        connection.execute("COMMIT")
        connection.close()
        return
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEQUENCER_LOCK})
        yield lambda sql: connection.execute(text(sql))
    engine.dispose()


def appending(log: Ledger, keys: list[str]) -> tuple[list[threading.Thread], list[object]]:
    """Start one thread per key appending it; results collect each Receipt or error."""
    results: list[object] = []

    def work(key: str) -> None:
        try:
            results.append(log.append({"key": key}, key))
        except LedgerError as error:
            results.append(error)

    threads = [threading.Thread(target=work, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    return threads, results


def test_appends_waiting_on_a_busy_store_commit_together(paths: tuple[str, Path]) -> None:
    log = Ledger.open(*paths)
    fill(log, 3)
    with store_write_locked(paths):
        first, first_result = appending(log, ["first"])
        # The first append now holds the writer turn and waits for the store; these queue.
        wait_until("a batch is being written", lambda: log._writing, 10)
        rest, results = appending(log, [f"later-{i}" for i in range(9)])
        wait_until("9 appends wait", lambda: len(log._waiting) == 9, 10)
    for thread in first + rest:
        thread.join()
    assert first_result[0].index == 3
    assert sorted(receipt.index for receipt in results) == list(range(4, 13))
    assert checkpoint_sizes(paths) == [1, 2, 3, 4, 13]  # one checkpoint for the nine
    checkpoint = log.checkpoint()
    for receipt in [*results, *first_result]:
        path = [bytes.fromhex(h) for h in log.inclusion_proof(receipt.index, 13)]
        leaf = bytes.fromhex(receipt.leaf_hash)
        assert verify_inclusion(leaf, receipt.index, 13, path, bytes.fromhex(checkpoint.root_hash))
    assert log.verify().ok
    log.close()


def test_a_repeated_key_in_one_batch_is_written_once(paths: tuple[str, Path]) -> None:
    log = Ledger.open(*paths)
    with store_write_locked(paths):
        first, _ = appending(log, ["first"])
        wait_until("a batch is being written", lambda: log._writing, 10)
        rest, results = appending(log, ["same"] * 4)
        wait_until("4 appends wait", lambda: len(log._waiting) == 4, 10)
    for thread in first + rest:
        thread.join()
    receipts = results
    assert {(receipt.index, receipt.leaf_hash) for receipt in receipts} == {
        (1, receipts[0].leaf_hash)
    }
    assert sorted(receipt.fresh for receipt in receipts) == [False, False, False, True]
    assert log.checkpoint().tree_size == 2
    log.close()


def test_a_failed_batch_fails_every_waiter_and_writes_nothing(paths: tuple[str, Path]) -> None:
    log = Ledger.open(*paths)
    fill(log, 2)
    with store_write_locked(paths) as run:
        first, first_result = appending(log, ["first"])
        wait_until("a batch is being written", lambda: log._writing, 10)
        rest, results = appending(log, [f"later-{i}" for i in range(5)])
        wait_until("5 appends wait", lambda: len(log._waiting) == 5, 10)
        # The entries insert will succeed and the checkpoint insert fail, in each batch.
        run("ALTER TABLE ledger_checkpoints RENAME TO moved_checkpoints")
    for thread in first + rest:
        thread.join()
    outcomes = [*first_result, *results]
    assert [getattr(outcome, "code", None) for outcome in outcomes] == ["LEDGER_UNAVAILABLE"] * 6
    raw(paths, "ALTER TABLE moved_checkpoints RENAME TO ledger_checkpoints")
    assert log.append({"kind": "after"}, "after").index == 2
    assert [entry.index for entry in log.entries()] == [0, 1, 2]
    assert log.verify().ok
    log.close()


def checkpoint_sizes(paths: tuple[str, Path]) -> list[int]:
    engine = create_engine(paths[0])
    with engine.connect() as connection:
        sizes = connection.execute(text("SELECT tree_size FROM ledger_checkpoints ORDER BY 1"))
        found = list(sizes.scalars())
    engine.dispose()
    return found


def test_second_writer_on_same_store_stays_in_sequence(paths: tuple[str, Path]) -> None:
    first, second = Ledger.open(*paths), Ledger.open(*paths)
    first.append({"n": 0}, "a")
    second.append({"n": 1}, "b")
    assert first.append({"n": 2}, "c").index == 2
    assert first.verify().ok
    first.close()
    second.close()


def test_concurrent_writers_on_one_store_never_fork_the_log(paths: tuple[str, Path]) -> None:
    # Two Ledger objects stand for two gateway processes: only the store can sequence them.
    writers = [Ledger.open(*paths), Ledger.open(*paths)]
    failures: list[Exception] = []

    def work(worker: int) -> None:
        for i in range(15):
            try:
                writers[worker % 2].append({"worker": worker, "i": i}, f"w{worker}-{i}")
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert [e.index for e in writers[0].entries(limit=1000)] == list(range(90))
    assert writers[1].checkpoint().tree_size == 90
    assert writers[0].verify().ok
    for writer in writers:
        writer.close()


def test_schema_is_under_alembic(paths: tuple[str, Path]) -> None:
    Ledger.open(*paths).close()
    engine = create_engine(paths[0])
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM ledger_alembic_version"))
        assert version.scalar_one() == "ledger_0003"
    engine.dispose()


LEDGER_0001_TABLES = (
    "CREATE TABLE ledger_entries (idx BIGINT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,"
    " data TEXT NOT NULL, leaf_hash TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE ledger_checkpoints (tree_size BIGINT PRIMARY KEY, root_hash TEXT NOT NULL,"
    " note TEXT NOT NULL)",
)


def test_a_store_made_before_alembic_is_adopted(tmp_path: Path) -> None:
    key = tmp_path / "ledger.key"
    generate_signing_key(key)
    url = f"sqlite:///{tmp_path / 'old.db'}"
    for statement in LEDGER_0001_TABLES:
        raw((url, key), statement)
    log = Ledger.open(url, key)
    fill(log, 3)
    assert log.verify().ok
    log.close()


def test_upgrading_fills_in_the_period_of_existing_entries(paths: tuple[str, Path]) -> None:
    from ledger.store import migrate

    engine = create_engine(paths[0])
    migrate(engine, "ledger_0001")
    engine.dispose()
    # Entries written by the revision-0001 writer: no period column yet.
    key = load_signing_key(paths[1])
    frontier = Frontier()
    for i, at in enumerate(["2026-10-31T23:00:00Z", "2026-11-01T00:00:00Z", None]):
        data = canonical_json({"at": at, "n": i, "idempotency_key": f"k{i}"})
        leaf = leaf_hash(data.encode())
        frontier.append(leaf)
        insert = "INSERT INTO ledger_entries VALUES (:i, :k, :d, :h, '2026-11-01')"
        raw(paths, insert, i=i, k=f"k{i}", d=data, h=leaf.hex())
    note = sign_checkpoint(key, ORIGIN, 3, frontier.root())
    raw(paths, "INSERT INTO ledger_checkpoints VALUES (3, :r, :n)", r=frontier.root().hex(), n=note)
    log = Ledger.open(*paths)
    assert log.verify().ok
    assert [index for index, _ in log.replay("2026-11")] == [1]
    assert [index for index, _ in log.replay("2026-10")] == [0]
    log.close()


def test_replay_reads_one_period_up_to_a_size(log: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger.log, "MAX_PAGE", 3)  # several pages
    months = ["2026-10", "2026-11", "2026-11", None, "2026-11", "2026-12"] * 3
    for i, month in enumerate(months):
        log.append({"at": f"{month}-05T00:00:00Z" if month else None, "n": i}, f"k{i}")
    november = [i for i, month in enumerate(months) if month == "2026-11"]
    assert [index for index, _ in log.replay("2026-11")] == november
    assert [data["n"] for _, data in log.replay("2026-11")] == november
    assert [index for index, _ in log.replay("2026-11", size=8)] == [1, 2, 4, 7]
    assert len(list(log.replay())) == len(months)
    with pytest.raises(LedgerError):
        list(log.replay("2026-13"))


def test_verify_clean_log(log: Ledger) -> None:
    assert log.verify().ok
    fill(log, 20)
    report = log.verify()
    assert report.ok and report.problems == [] and report.tree_size == 20


def tampered(paths: tuple[str, Path], *statements: tuple[str, dict]) -> list[str]:
    log = Ledger.open(*paths)
    fill(log, 10)
    assert log.verify().ok
    for sql, params in statements:
        raw(paths, sql, **params)
    report = log.verify()
    log.close()
    assert not report.ok
    return report.problems


def test_verify_checks_every_charge_against_its_postings(paths: tuple[str, Path]) -> None:
    log = Ledger.open(*paths)
    cost = {"amount_minor": 10, "currency": "CNY", "plan": "standard"}
    log.append({"cost": cost, "postings": [["developer:d", -10], ["party:p", 10]]}, "good")
    log.append({"cost": {**cost, "amount_minor": 0}, "postings": []}, "free")
    assert log.verify().ok
    log.append({"cost": cost, "postings": [["developer:d", -10], ["party:p", 9]]}, "short")
    log.append({"cost": cost}, "missing")
    report = log.verify()
    log.close()
    assert report.problems == [
        "entry 2 has a cost its postings do not balance",
        "entry 3 has a cost its postings do not balance",
    ]


AT_4 = "2026-11-05T00:00:00Z"  # what fill() gave entry 4


def test_verify_detects_edited_data(paths: tuple[str, Path]) -> None:
    edit = canonical_json({"kind": "query", "n": 40, "at": AT_4, "idempotency_key": "k4"})
    problems = tampered(paths, ("UPDATE ledger_entries SET data = :d WHERE idx = 4", {"d": edit}))
    assert "entry 4: stored leaf hash does not match its data" in problems


def test_verify_detects_data_and_leaf_hash_rewritten(paths: tuple[str, Path]) -> None:
    edit = canonical_json({"kind": "query", "n": 40, "at": AT_4, "idempotency_key": "k4"})
    new_hash = hashlib.sha256(b"\x00" + edit.encode()).hexdigest()
    sql = "UPDATE ledger_entries SET data = :d, leaf_hash = :h WHERE idx = 4"
    problems = tampered(paths, (sql, {"d": edit, "h": new_hash}))
    assert problems[0].startswith("checkpoint 5: signed root differs")
    assert len(problems) == 6  # checkpoints 5..10 all cover the edit


def test_verify_detects_a_moved_period(paths: tuple[str, Path]) -> None:
    # The period column is outside the hash; moving an entry out of its month would hide it
    # from that month's settlement.
    sql = "UPDATE ledger_entries SET period = '2020-01' WHERE idx = 6"
    assert tampered(paths, (sql, {})) == ["entry 6: period does not match its data"]


def test_verify_detects_reordering(paths: tuple[str, Path]) -> None:
    swap = "UPDATE ledger_entries SET idx = :new WHERE idx = :old"
    moves = [{"new": 100, "old": 2}, {"new": 2, "old": 3}, {"new": 3, "old": 100}]
    problems = tampered(paths, *[(swap, move) for move in moves])
    assert any(p.startswith("checkpoint 3:") for p in problems)


@pytest.mark.parametrize("index", [0, 5, 9])
def test_verify_detects_deleted_row(paths: tuple[str, Path], index: int) -> None:
    assert tampered(paths, ("DELETE FROM ledger_entries WHERE idx = :i", {"i": index}))


def test_verify_detects_forged_checkpoint(paths: tuple[str, Path]) -> None:
    forged_root = hashlib.sha256(b"forged").digest()
    note = sign_checkpoint(Ed25519PrivateKey.generate(), ORIGIN, 10, forged_root)
    sql = "UPDATE ledger_checkpoints SET root_hash = :r, note = :n WHERE tree_size = 10"
    problems = tampered(paths, (sql, {"r": forged_root.hex(), "n": note}))
    assert problems == ["checkpoint 10: no signature from the ledger key"]


def test_verify_detects_unsigned_appended_entry(paths: tuple[str, Path]) -> None:
    data = canonical_json({"kind": "forged", "idempotency_key": "x"})
    sql = (
        "INSERT INTO ledger_entries (idx, idempotency_key, data, leaf_hash, created_at)"
        " VALUES (10, 'x', :d, :h, '2026-01-01T00:00:00+00:00')"
    )
    leaf = hashlib.sha256(b"\x00" + data.encode()).hexdigest()
    problems = tampered(paths, (sql, {"d": data, "h": leaf}))
    assert problems == ["entries from 10 on are not covered by a signed checkpoint"]


def test_corrupt_store_opens_for_verify_but_refuses_appends(paths: tuple[str, Path]) -> None:
    tampered(paths, ("DELETE FROM ledger_entries WHERE idx = 3", {}))
    log = Ledger.open(*paths)
    assert not log.verify().ok
    with pytest.raises(LedgerError) as caught:
        log.append({"kind": "more"}, "more")
    assert caught.value.code == "LEDGER_CORRUPT"
    log.close()


def test_unavailable_store_fails_closed(tmp_path: Path) -> None:
    generate_signing_key(tmp_path / "ledger.key")
    with pytest.raises(LedgerError) as caught:
        Ledger.open(f"sqlite:///{tmp_path / 'missing' / 'ledger.db'}", tmp_path / "ledger.key")
    assert caught.value.code == "LEDGER_UNAVAILABLE"


def _rotated(paths: tuple[str, Path]) -> tuple[Ledger, Ed25519PrivateKey, Ed25519PrivateKey, int]:
    """A log of 3 entries, a signing-key rotation, then 3 more; (log, old key, new key, index)."""
    log = Ledger.open(*paths)
    old, new = load_signing_key(paths[1]), Ed25519PrivateKey.generate()
    fill(log, 3)
    receipt = log.rotate_signing_key(new)
    for i in range(3):
        log.append({"kind": "query", "n": i}, f"after{i}")
    return log, old, new, receipt.index


def test_a_rotated_signing_key_verifies_through_the_chain(paths: tuple[str, Path]) -> None:
    log, old, new, index = _rotated(paths)
    assert index == 3
    assert log.verify().ok
    rotation = json.loads(log.entries(after=2, limit=1)[0].data)
    assert rotation["type"] == "signing_key_rotated"
    assert rotation["previous_public_key"] == public_key_b64(old)
    assert rotation["public_key"] == public_key_b64(new)
    # The checkpoint that first covers the rotation carries both signatures; later ones only
    # the new key's, and the public key served is the new one.
    notes = {row.tree_size: row.note for row in _checkpoint_rows(paths)}
    for key in (old, new):
        assert verify_checkpoint(notes[4], key.public_key(), ORIGIN)[0] == 4
    assert verify_checkpoint(notes[7], new.public_key(), ORIGIN)[0] == 7
    with pytest.raises(LedgerError):
        verify_checkpoint(notes[7], old.public_key(), ORIGIN)
    assert log.public_key() == (ORIGIN, public_key_b64(new))
    assert log.rotate_signing_key(new).fresh is False  # a rerun records nothing twice
    log.close()


def test_the_replaced_key_no_longer_verifies_the_log(paths: tuple[str, Path]) -> None:
    log, *_ = _rotated(paths)
    log.close()
    stale = Ledger.open(*paths)  # still configured with the replaced key
    assert "the log's newest signing key is not the configured key" in stale.verify().problems
    with pytest.raises(LedgerError, match="replaced this signing key"):
        stale.append({"kind": "query"}, "after-rotation")  # it would sign what cannot verify
    stale.close()


def test_a_rotation_not_cosigned_by_the_new_key_is_refused(paths: tuple[str, Path]) -> None:
    log, old, new, _ = _rotated(paths)
    root = bytes.fromhex(next(r.root_hash for r in _checkpoint_rows(paths) if r.tree_size == 4))
    sql = "UPDATE ledger_checkpoints SET note = :n WHERE tree_size = 4"
    raw(paths, sql, n=sign_checkpoint(old, ORIGIN, 4, root))
    problems = log.verify().problems
    assert "checkpoint 4: no signature from the ledger key" in problems
    assert "entry 3: no checkpoint signed by both keys covers the rotation" in problems
    log.close()


def test_a_forged_rotation_to_a_key_of_the_forgers_is_refused(paths: tuple[str, Path]) -> None:
    """Whoever can write the store but holds no ledger key cannot introduce a key of theirs."""
    log = Ledger.open(*paths)
    fill(log, 3)
    forger = Ledger(log._engine, Ed25519PrivateKey.generate(), ORIGIN)
    forger._frontier = log._frontier
    forger.rotate_signing_key(Ed25519PrivateKey.generate())
    problems = log.verify().problems
    # The chain ends at the forger's key, and the honest checkpoints are not the forger's.
    assert "the log's newest signing key is not the configured key" in problems
    assert "checkpoint 3: no signature from the ledger key" in problems
    log.close()


def test_a_rotation_must_replace_the_key_in_force(paths: tuple[str, Path]) -> None:
    """A second rotation signed by some other key than the one the first brought in."""
    log, _, _, _ = _rotated(paths)
    stranger, final = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    outsider = Ledger(log._engine, stranger, ORIGIN)
    outsider._frontier = log._frontier
    outsider.rotate_signing_key(final)
    problems = Ledger(log._engine, final, ORIGIN).verify().problems
    assert "entry 7: the rotation does not replace the key in force" in problems
    log.close()


def _checkpoint_rows(paths: tuple[str, Path]) -> list:
    engine = create_engine(paths[0])
    with engine.connect() as connection:
        rows = list(
            connection.execute(text("SELECT tree_size, root_hash, note FROM ledger_checkpoints"))
        )
    engine.dispose()
    return rows
