"""Refusal spikes: a principal refused again and again within a short window is probing."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# Principals followed at once; the least recently refused is forgotten first.
MAX_PRINCIPALS = 10_000
# Spikes kept for the overseers' page, newest last.
RECENT_SPIKES = 50


class RefusalWatch:
    """Counts each principal's refusals over the last `window_s` seconds and says when one
    goes past `limit`: once per spike, again only after it has fallen back within the limit."""

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window_s = window_s
        self._clock = clock
        self._refusals: OrderedDict[str, deque[float]] = OrderedDict()
        self._spiking: set[str] = set()
        self._recent: deque[tuple[str, float]] = deque(maxlen=RECENT_SPIKES)
        self._lock = threading.Lock()

    def refused(self, principal: str) -> bool:
        """Note one refusal; True when it takes `principal` past the limit."""
        now = self._clock()
        with self._lock:
            times = self._refusals.pop(principal, None) or deque(maxlen=self._limit + 1)
            self._refusals[principal] = times
            times.append(now)
            while times and times[0] <= now - self._window_s:
                times.popleft()
            if len(self._refusals) > MAX_PRINCIPALS:
                forgotten, _ = self._refusals.popitem(last=False)
                self._spiking.discard(forgotten)
            if len(times) <= self._limit:
                self._spiking.discard(principal)
                return False
            if principal in self._spiking:
                return False
            self._spiking.add(principal)
            self._recent.append((principal, time.time()))
            return True

    def recent(self) -> list[tuple[str, float]]:
        """The latest spikes this process saw: who, and when (Unix time)."""
        with self._lock:
            return list(self._recent)
