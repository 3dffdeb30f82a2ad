"""A writer's turn: writers of one SQLite file wait for each other in the kernel, not asleep.

SQLite lets one transaction write at a time, and a writer it refuses sleeps and tries again
(after 1, 2, 5, 10 ms and on, up to 100 ms a try), whether or not the lock was let go
meanwhile. Two gateway processes appending to one ledger spent their tails asleep so. A
writer that first takes the file's turn, an exclusive lock on a file beside it, waits in the
kernel and is woken as the writer before it lets go. SQLite's own lock is still what keeps
each write whole: the turn only orders the writers that take it, so a writer that cannot
open the turn's file writes without it. PostgreSQL queues waiting writers itself.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import sqlalchemy as sa

SUFFIX = ".writer"


def turn_path(engine: sa.Engine) -> str | None:
    """The file whose lock is the turn to write `engine`'s SQLite database; None if it has none."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database + SUFFIX


def prepare_turn(engine: sa.Engine) -> None:
    """Create the turn's file now, so that taking the turn later needs no room on the volume."""
    path = turn_path(engine)
    if path is not None:
        with suppress(OSError):  # then its writers go without it
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


@contextmanager
def writers_turn(engine: sa.Engine) -> Iterator[None]:
    """Hold the turn to write `engine`'s database (in every process and thread) while the
    block runs: begin and end the write transaction inside it."""
    path = turn_path(engine)
    descriptor = None
    if path is not None:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            descriptor = None  # SQLite's lock alone orders this writer
    if descriptor is None:
        yield
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # lets the turn go
