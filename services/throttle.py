"""Per-principal limits on work in flight, so one developer cannot hold every enclave worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from services.errors import Busy


class InFlight:
    """Counts running requests per principal and refuses those above `limit`."""

    def __init__(self, limit: int, what: str = "queries") -> None:
        self.limit = limit
        self.what = what
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, principal_id: str) -> Iterator[None]:
        with self._lock:
            if self._running.get(principal_id, 0) >= self.limit:
                raise Busy(f"at most {self.limit} {self.what} may run at once per principal")
            self._running[principal_id] = self._running.get(principal_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._running[principal_id] -= 1
                if not self._running[principal_id]:
                    del self._running[principal_id]
