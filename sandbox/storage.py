"""Telling a volume without room from other failures to write: refused with STORAGE_FULL."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sandbox.errors import SandboxError, StorageFull

# No blocks or inodes left, over a quota, or past a file-size limit.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def out_of_room(exc: BaseException) -> bool:
    """Whether `exc` says the volume had no room: an OSError's number, or DuckDB's text, which
    carries the system's message for it and no number."""
    if isinstance(exc, OSError):
        return exc.errno in NO_ROOM
    if isinstance(exc, SandboxError):
        return False  # already a refusal in its own words
    return any(os.strerror(number) in str(exc) for number in NO_ROOM)


@contextmanager
def refused_when_full() -> Iterator[None]:
    """Turn a write that found no room into StorageFull; anything else passes unchanged."""
    try:
        yield
    except Exception as exc:
        if out_of_room(exc):
            raise StorageFull(
                "there is no room to store this file; nothing of it was kept"
            ) from exc
        raise
