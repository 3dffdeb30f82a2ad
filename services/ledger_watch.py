"""Verifying the ledger in the background, so /metrics says whether it still holds.

Each check verifies what was appended since the verified prefix (the whole log when no valid
one is stored), then re-hashes a bounded slice of the prefix itself and re-checks the stored
checkpoints that slice reaches: a check costs the same however long the log, and a pass over
the old entries and their checkpoints ends every so many checks.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Gauge

from ledger import Ledger, LedgerUnavailable
from ledger.verify import (
    FULL_REQUESTED,
    INVALID_VERIFIED_PREFIX,
    NO_VERIFIED_PREFIX,
    CheckReport,
    Rehash,
)
from services.metrics import Metrics

log = logging.getLogger(__name__)

# Work per check on the verified prefix, in entries re-hashed (a stored checkpoint checked on
# the way costs ledger.verify.CHECKPOINT_COST of them): about a second of one core. At the
# default interval of ten minutes a pass over a million entries takes some eight hours when
# checkpoints are few (a busy gateway signs one a batch), some three days at one an entry.
REHASH_ENTRIES = 20_000
# Why a check verified the whole log although a prefix may be stored.
PREFIX_DID_NOT_HOLD = "prefix_did_not_hold"
_REASONS = {
    NO_VERIFIED_PREFIX: "no verified prefix is stored",
    INVALID_VERIFIED_PREFIX: "the stored verified prefix does not verify with the ledger key "
    "(altered, or signed before a key rotation)",
    PREFIX_DID_NOT_HOLD: "entries inside the verified prefix changed",
}


@dataclass(frozen=True)
class _WatchMetrics:
    checks: Counter
    entries: Gauge
    rehashed: Counter


# One set per registry: a registry refuses a metric name twice.
_METRICS: WeakKeyDictionary[CollectorRegistry, _WatchMetrics] = WeakKeyDictionary()


def _watch_metrics(metrics: Metrics) -> _WatchMetrics:
    registry = metrics.registry
    if registry not in _METRICS:
        _METRICS[registry] = _WatchMetrics(
            checks=Counter(
                "veil_ledger_verifications",
                "Ledger verifications by mode (incremental: from the verified prefix; full) "
                "and why one was full (no_verified_prefix, invalid_verified_prefix, "
                "prefix_did_not_hold; none when incremental)",
                ["mode", "reason"],
                registry=registry,
            ),
            entries=Gauge(
                "veil_ledger_verification_entries",
                "Entries the last ledger verification recomputed from their data",
                multiprocess_mode="livemax",
                registry=registry,
            ),
            rehashed=Counter(
                "veil_ledger_rehashed_entries",
                "Entries of the verified prefix re-hashed by the background pass",
                registry=registry,
            ),
        )
    return _METRICS[registry]


class LedgerWatch:
    """Verifies the ledger now and then every `interval_s` seconds until closed."""

    def __init__(
        self,
        ledger: Ledger,
        metrics: Metrics,
        interval_s: float,
        rehash_entries: int = REHASH_ENTRIES,
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self._watch_metrics = _watch_metrics(metrics)
        self._interval_s = interval_s
        self._rehash_entries = rehash_entries
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="ledger-watch", daemon=True)
        # The last verdict and when it was reached (Unix time), for the overseers' page.
        self.last: tuple[bool, float] | None = None
        # What the last check covered, when it reached a verdict on the new entries.
        self.last_report: CheckReport | None = None
        self._rehash: Rehash | None = None
        # Set when the prefix was found not to hold: checks stay full until one passes.
        self._full_because: str | None = None

    def start(self) -> None:
        self._thread.start()

    def verify(self) -> None:
        """One check; its verdict and time go to the metrics."""
        try:
            ok = self._check()
        except LedgerUnavailable:
            # Not a verdict on the log: the verification timestamp goes stale and alerts.
            log.warning("the ledger could not be read for verification")
            return
        except Exception:  # noqa: BLE001 - a verification that cannot finish has failed
            log.exception("the ledger verification could not finish")
            ok = False
        at = time.time()
        self._metrics.verification_ok.set(int(ok))
        self._metrics.verified_at.set(at)
        self.last = (ok, at)

    def close(self) -> None:
        self._stopped.set()

    def _check(self) -> bool:
        """Verify the new entries, then (if they hold) a slice of the old ones."""
        forced = self._full_because
        report = self._ledger.verify_incremental(full=forced is not None)
        self.last_report = report
        because = forced if report.full_because == FULL_REQUESTED else report.full_because
        mode = "incremental" if because is None else "full"
        self._watch_metrics.checks.labels(mode, because or "none").inc()
        self._watch_metrics.entries.set(report.hashed)
        if because is not None:
            log.warning(
                "verifying the whole ledger (%d entries): %s",
                report.tree_size,
                _REASONS.get(because, because),
            )
        if not report.ok:
            log.error("the ledger failed verification: %s", "; ".join(report.problems))
            return False
        if not report.recorded:
            log.warning("the verified prefix could not be stored; the next check redoes this one")
        self._full_because = None
        if because is not None:
            self._rehash = None  # everything was just recomputed; a new pass starts next time
            return True
        return self._rehash_slice()

    def _rehash_slice(self) -> bool:
        """Re-hash the next slice of the verified prefix and re-check its checkpoints; False if
        it no longer holds."""
        if self._rehash_entries <= 0:
            return True
        self._rehash, problems, hashed = self._ledger.recheck(self._rehash, self._rehash_entries)
        self._watch_metrics.rehashed.inc(hashed)
        if not problems:
            return True
        log.error("entries the ledger had verified no longer hold: %s", "; ".join(problems))
        self._rehash = None
        self._full_because = PREFIX_DID_NOT_HOLD
        # Every process's next check is then full, and fails for as long as the damage stays.
        with suppress(LedgerUnavailable):
            self._ledger.withdraw_verified()
        return False

    def _watch(self) -> None:
        while not self._stopped.is_set():
            self.verify()
            self._stopped.wait(self._interval_s)
