"""Slots a principal's queries share with every gateway process on one home (SQLite) or one
database (PostgreSQL), so that a per-principal limit holds across processes.

A slot is a lock the kernel or the database server holds for the process that took it and
drops when that process dies, so nothing is left held by a dead process and taking or giving
one writes nothing to disk: an open-file-description lock on one byte of a file under the home,
or a PostgreSQL session advisory lock on a connection kept for as long as the slot is held."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import struct
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.pool import PoolProxiedConnection

log = logging.getLogger(__name__)

# A file lock's offset: 47 bits of the principal's hash, then 15 of the slot (below 2**62).
_SLOT_BITS = 15
MAX_SLOTS = 1 << _SLOT_BITS
# What a principal's id is hashed under, so its locks are Veil's query slots and nothing else.
_NAMESPACE = b"veil:query-slot:"
# A vanished host's connection is noticed by the server within about 10 + 3 * 5 s.
_KEEPALIVE = {"tcp_keepalives_idle": 10, "tcp_keepalives_interval": 5, "tcp_keepalives_count": 3}


class Slot(Protocol):
    """One slot held; `release` gives it back and never raises."""

    def release(self) -> None: ...


class SharedSlots(Protocol):
    """Slots of each principal, at most `per_principal` held at once by all processes."""

    per_principal: int

    def take(self, principal: str) -> Slot | None:
        """A free slot of `principal`'s, now held, or None if all are taken; never waits."""
        ...

    def close(self) -> None:
        """Let go of what is kept open between slots (connections); none may be held."""
        ...


def shared_slots(
    engine: sa.Engine, run_root: Path, per_principal: int, connections: int
) -> SharedSlots:
    """The slots the processes sharing `engine`'s database have in common: advisory locks on
    PostgreSQL (replicas may run on several hosts), file locks under `run_root` on SQLite
    (the processes share the home, on one host). `connections`: the most slots this process
    holds or tries at once (its query slots), which PostgreSQL's pool is sized to."""
    if engine.dialect.name == "postgresql":
        return AdvisorySlots(engine.url, per_principal, connections)
    return FileSlots(run_root / "query-slots", per_principal)


def _digest(principal: str) -> bytes:
    return hashlib.sha256(_NAMESPACE + principal.encode()).digest()


def _check(per_principal: int) -> None:
    if not 1 <= per_principal <= MAX_SLOTS:
        raise ValueError(f"a principal has between 1 and {MAX_SLOTS} shared slots")


class FileSlots:
    """Slot `i` of a principal is a write lock on one byte of one file, at an offset made of
    the principal's hash and `i`. The lock is an open-file-description lock (F_OFD_SETLK),
    taken on a descriptor opened for it alone: two threads of one process conflict as two
    processes do, and the kernel drops it when the descriptor closes, so at the latest when
    its process dies. The file is created once, empty; locks write nothing to it."""

    def __init__(self, path: Path, per_principal: int) -> None:
        _check(per_principal)
        self.path = path
        self.per_principal = per_principal
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))

    def take(self, principal: str) -> Slot | None:
        base = (int.from_bytes(_digest(principal)[:6]) >> 1) << _SLOT_BITS
        # Never inherited: a child process must not keep a slot alive past its parent.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            for index in range(self.per_principal):
                if _lock(fd, base + index, fcntl.F_WRLCK):
                    return _FileSlot(fd, base + index)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        return None

    def close(self) -> None:
        """Nothing stays open between slots."""


def _lock(fd: int, offset: int, kind: int) -> bool:
    """Set (F_WRLCK) or clear (F_UNLCK) the open-file-description lock on byte `offset`;
    False if another description holds it."""
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (0, as OFD locks require).
    request = struct.pack("hhqqi", kind, os.SEEK_SET, offset, 1, 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, request)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


class _FileSlot:
    def __init__(self, fd: int, offset: int) -> None:
        self._fd: int | None = fd
        self._offset = offset

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Cleared first: closing alone would leave it held by any copy of the descriptor.
            _lock(fd, self._offset, fcntl.F_UNLCK)
        except OSError:
            log.exception("a query slot's lock could not be cleared; closing its descriptor")
        finally:
            os.close(fd)


class AdvisorySlots:
    """Slot `i` of a principal is the session advisory lock (k1, k2) with k1 and the high half
    of k2 from the principal's hash and `i` the low half of k2 (the two-key space, which the
    ledger's and the job queue's one-key locks never meet). It is held on a connection of a
    pool of its own, in autocommit (no transaction stays open), kept for as long as the slot
    is; a connection goes back to the pool only once the lock is known released, otherwise it
    is closed, and closing a session drops its locks, as does the death of its process.

    Driver calls on pooled connections, not SQLAlchemy's statements: a take and a release are
    a round trip each on every query, and SQLAlchemy's layer would cost more CPU than both.
    Failures are raised as SQLAlchemy's errors all the same, as the control store's are."""

    def __init__(self, url: sa.URL, per_principal: int, connections: int) -> None:
        _check(per_principal)
        self.per_principal = per_principal
        # Each slot held or tried is under one of this process's query slots: the pool never
        # waits, and the control store's own pool is never drawn on.
        self._connections = max(1, connections)
        self.engine = sa.create_engine(
            url,
            pool_size=self._connections,
            max_overflow=0,
            isolation_level="AUTOCOMMIT",
            hide_parameters=True,
        )
        sa.event.listen(self.engine, "connect", _keep_alive)

    def take(self, principal: str) -> Slot | None:
        keys = list(_keys(principal, self.per_principal))
        # Pooled connections the server dropped (a restart) fail once each, and are replaced.
        for _ in range(self._connections):
            try:
                return self._take(keys)
            except sa.exc.DBAPIError as error:
                if not error.connection_invalidated:
                    raise
        return self._take(keys)

    def _take(self, keys: list[tuple[int, int]]) -> Slot | None:
        dbapi = self.engine.dialect.loaded_dbapi
        try:
            connection = self.engine.raw_connection()
        except dbapi.Error as error:
            raise sa.exc.DBAPIError.instance(None, None, error, dbapi.Error) from error
        key: tuple[int, int] | None = None
        try:
            cursor = connection.cursor()
            for key in keys:
                cursor.execute(_TRY_LOCK, key)
                if cursor.fetchone()[0]:
                    cursor.close()
                    return _AdvisorySlot(connection, key)
            cursor.close()
        except BaseException as error:
            # It may hold a lock taken before the failure: closed, never pooled as it is.
            gone = isinstance(error, dbapi.Error) and self.engine.dialect.is_disconnect(
                error, connection.dbapi_connection, None
            )
            with suppress(Exception):
                connection.invalidate()
            if isinstance(error, dbapi.Error):
                raise sa.exc.DBAPIError.instance(
                    _TRY_LOCK, key, error, dbapi.Error, hide_parameters=True,
                    connection_invalidated=gone,
                ) from error  # fmt: skip
            raise
        connection.close()  # it holds nothing: every try was refused
        return None

    def close(self) -> None:
        self.engine.dispose()


_TRY_LOCK = "SELECT pg_try_advisory_lock(%s::integer, %s::integer)"
_UNLOCK = "SELECT pg_advisory_unlock(%s::integer, %s::integer)"


def _keys(principal: str, count: int) -> Iterator[tuple[int, int]]:
    digest = _digest(principal)
    first = int.from_bytes(digest[:4], signed=True)
    high = int.from_bytes(digest[4:6]) << 16
    for index in range(count):
        second = high | index
        yield first, second - (1 << 32) if second >= 1 << 31 else second


def _keep_alive(connection, _record) -> None:  # noqa: ANN001 - DB-API hook
    """Have the server probe an idle connection, so that a slot held by a host that vanished
    (its connection never closed) comes free within seconds instead of hours."""
    cursor = connection.cursor()
    for name, value in _KEEPALIVE.items():
        cursor.execute(f"SET {name} = {int(value)}")
    cursor.close()
    connection.commit()  # nothing open once it is pooled, whatever its isolation level


class _AdvisorySlot:
    def __init__(self, connection: PoolProxiedConnection, key: tuple[int, int]) -> None:
        self._connection: PoolProxiedConnection | None = connection
        self._key = key

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            cursor = connection.cursor()
            cursor.execute(_UNLOCK, self._key)
            released = cursor.fetchone()[0] is True
            cursor.close()
        except Exception:  # noqa: BLE001 - the connection is closed instead, which releases
            log.warning("a query slot's advisory lock could not be released; closing its session")
            released = False
        try:
            if released:
                connection.close()
            else:
                connection.invalidate()  # closed, its record back in the pool to reconnect
        except Exception:  # noqa: BLE001 - a broken connection is gone either way
            log.warning("a query slot's connection could not be closed cleanly")
