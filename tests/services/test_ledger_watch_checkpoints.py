"""The ledger watch raises its alarm on a checkpoint forged inside the verified prefix, as on
any other tampering: the verdict metric, the prefix withdrawn, full checks from then on."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

from ledger import Ledger
from ledger.checkpoints import sign_checkpoint
from ledger.verify import CHECKPOINT_COST, NO_VERIFIED_PREFIX
from services.ledger_watch import PREFIX_DID_NOT_HOLD, LedgerWatch
from services.metrics import Metrics
from tests.ledger.stores import raw, store_paths

ORIGIN = "veil.local/ledger"
# Each check's slice: two entries with a checkpoint each (every append here signs one).
SIZE, SLICE = 12, 2 * (1 + CHECKPOINT_COST)


@pytest.fixture(params=["sqlite", "postgresql"])
def paths(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    return store_paths(request.param, tmp_path)


def stored_prefix_size(paths: tuple[str, Path]) -> int | None:
    engine = create_engine(paths[0])
    with engine.connect() as connection:
        size = connection.execute(text("SELECT tree_size FROM ledger_verified")).scalar()
    engine.dispose()
    return size


def test_a_forged_checkpoint_in_the_prefix_fails_the_check_whose_slice_reaches_it(
    paths: tuple[str, Path],
) -> None:
    log, metrics = Ledger.open(*paths), Metrics()
    for i in range(SIZE):
        log.append({"kind": "query", "n": i, "at": "2026-11-01T00:00:00Z"}, f"k{i}")
    LedgerWatch(log, Metrics(), interval_s=600, rehash_entries=0).verify()  # the prefix: SIZE
    assert stored_prefix_size(paths) == SIZE
    root = b"\x01" * 32
    forged = sign_checkpoint(Ed25519PrivateKey.generate(), ORIGIN, 7, root)
    sql = "UPDATE ledger_checkpoints SET note = :n, root_hash = :r WHERE tree_size = 7"
    raw(paths, sql, n=forged, r=root.hex())

    watch = LedgerWatch(log, metrics, interval_s=600, rehash_entries=SLICE)
    verdicts = []
    for _ in range(6):
        watch.verify()
        assert watch.last is not None
        verdicts.append(watch.last[0])
    # Entries 0-1, 2-3 and 4-5 hold; 6-7 reaches checkpoint 7. From then on every check is
    # full, and fails.
    assert verdicts == [True, True, True, False, False, False]
    assert metrics.registry.get_sample_value("veil_ledger_verification_ok") == 0
    labels = {"mode": "full", "reason": PREFIX_DID_NOT_HOLD}
    assert metrics.registry.get_sample_value("veil_ledger_verifications_total", labels) == 2
    assert stored_prefix_size(paths) is None
    other = Ledger.open(*paths)  # another gateway: its next check is full, and fails
    report = other.verify_incremental()
    assert report.full_because == NO_VERIFIED_PREFIX and not report.ok
    other.close()
    log.close()
