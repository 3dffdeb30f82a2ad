"""Work under way in this process, so a revocation, suspension or destruction can stop it."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


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
    """Tracks running work; `stop` sets the cancel event of everything under a target."""

    def __init__(self) -> None:
        self._work: dict[int, Running] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()

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
