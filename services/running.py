"""Work under way in this process, so a revocation, suspension or destruction can stop it."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Running:
    """One query (or job) running: under whom, which grant and which assets."""

    principal: str
    grant_id: str | None
    assets: frozenset[str]
    cancel: threading.Event = field(default_factory=threading.Event)

    def under(self, principal: str | None, grant: str | None, asset: str | None) -> bool:
        return (
            (principal is not None and principal == self.principal)
            or (grant is not None and grant == self.grant_id)
            or (asset is not None and asset in self.assets)
        )


class RunningWork:
    """Tracks running work; `stop` sets the cancel event of everything under a target.

    A stop reaches only this process's work. With several gateway processes, `in_force` is
    given: a watcher asks it about each piece of running work every `interval_s` seconds and
    cancels what no longer holds, so a stop made in another process lands here too."""

    def __init__(
        self, in_force: Callable[[Running], bool] | None = None, interval_s: float = 1.0
    ) -> None:
        self._work: dict[int, Running] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._in_force = in_force
        self._interval_s = interval_s
        self._closed = threading.Event()
        if in_force is not None:
            threading.Thread(target=self._watch, name="veil-running-watch", daemon=True).start()

    def _watch(self) -> None:
        while not self._closed.wait(self._interval_s):
            with self._lock:
                running = list(self._work.values())
            for work in running:
                if not work.cancel.is_set() and not self._holds(work):
                    work.cancel.set()

    def _holds(self, work: Running) -> bool:
        assert self._in_force is not None
        try:
            return self._in_force(work)
        except Exception:  # noqa: BLE001 - when in doubt, the work stops
            log.exception("cannot tell whether running work is still authorised")
            return False

    def close(self) -> None:
        self._closed.set()

    @contextmanager
    def track(
        self, principal: str, grant_id: str | None, assets: list[str]
    ) -> Iterator[threading.Event]:
        work = Running(principal, grant_id, frozenset(assets))
        with self._lock:
            key = next(self._ids)
            self._work[key] = work
        try:
            yield work.cancel
        finally:
            with self._lock:
                del self._work[key]

    def stop(
        self, *, principal: str | None = None, grant: str | None = None, asset: str | None = None
    ) -> int:
        """Cancel all work under the principal, grant or asset; returns how many were running."""
        with self._lock:
            matching = [w for w in self._work.values() if w.under(principal, grant, asset)]
        for work in matching:
            work.cancel.set()
        return len(matching)
