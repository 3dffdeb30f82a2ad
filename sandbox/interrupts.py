"""Ctrl-C belongs to the gateway: the processes it starts are born with SIGINT held and ignore it.

A terminal's Ctrl-C signals every process in the foreground group. The gateway alone acts on
it and stops its enclave workers and job parent itself (a closed pipe or socket ends them), so
they neither die mid-start nor print a KeyboardInterrupt of their own.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from multiprocessing import resource_tracker


@contextlib.contextmanager
def held() -> Iterator[None]:
    """SIGINT blocked in this thread while a child starts: the child inherits the mask, so it
    cannot be interrupted before `ignore` runs in it."""
    # The tracker's first start unblocks SIGINT in the calling thread (multiprocessing's own
    # dance around spawning it), which would undo the block for the child started next.
    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ignore() -> None:
    """In a child, first thing: ignore SIGINT (one pending since start is dropped), then unblock.

    Processes it forks and executes keep SIGINT ignored, and Python leaves an ignored SIGINT
    ignored instead of raising KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
