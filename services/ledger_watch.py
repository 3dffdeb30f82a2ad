"""Verifying the whole ledger in the background, so /metrics says whether it still holds."""

from __future__ import annotations

import logging
import threading
import time

from ledger import Ledger, LedgerUnavailable
from services.metrics import Metrics

log = logging.getLogger(__name__)


class LedgerWatch:
    """Verifies the ledger now and then every `interval_s` seconds until closed."""

    def __init__(self, ledger: Ledger, metrics: Metrics, interval_s: float) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self._interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="ledger-watch", daemon=True)
        # The last verdict and when it was reached (Unix time), for the overseers' page.
        self.last: tuple[bool, float] | None = None

    def start(self) -> None:
        self._thread.start()

    def verify(self) -> None:
        """One full verification; its result and time go to the metrics."""
        try:
            report = self._ledger.verify()
        except LedgerUnavailable:
            # Not a verdict on the log: the verification timestamp goes stale and alerts.
            log.warning("the ledger could not be read for verification")
            return
        except Exception:  # noqa: BLE001 - a verification that cannot finish has failed
            log.exception("the ledger verification could not finish")
            ok = False
        else:
            ok = report.ok
            if not ok:
                log.error("the ledger failed verification: %s", "; ".join(report.problems))
        at = time.time()
        self._metrics.verification_ok.set(int(ok))
        self._metrics.verified_at.set(at)
        self.last = (ok, at)

    def close(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.is_set():
            self.verify()
            self._stopped.wait(self._interval_s)
