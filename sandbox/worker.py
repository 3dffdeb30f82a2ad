"""Hardened DuckDB workers: separate processes holding the assets read-only, running checked SQL."""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import decimal
import logging
import math
import multiprocessing
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path

from sandbox import interrupts
from sandbox.duck import Limits, attach_sql, connect, lock_down
from sandbox.errors import Cancelled, EnclaveUnavailable, ExecutionFailed, ExecutionTimeout
from sandbox.store import Attachment

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
# How often a waiting query looks for a cancellation; a reply ends the wait at once.
CANCEL_CHECK_S = 0.05
# Why a worker left service.
CRASHED, TIMEOUT, CANCELLED = "crashed", "timeout", "cancelled"
ASSETS_CHANGED, START_FAILED, RECYCLED = "assets_changed", "start_failed", "recycled"
# A worker is replaced once it has served this long, so what DuckDB keeps between queries is
# bounded by time alone, which says nothing of how much any tenant asked. What it keeps is the
# handles of freed temporary buffers, held by dead entries in its buffer pool's eviction
# queues until a queue reaches 32,768 entries (a constant, no setting): 1.5-4 KB a query,
# levelling off about 30 MB above its first thousand queries after 25,000 (docs/operations.md).
WORKER_LIFETIME_S = 600.0
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
# What names one state of an asset file: its device, inode, size and modification time.
FileStamp = tuple[int, int, int, int] | None


class StartFailed(Exception):
    """Why a worker did not start: the type of what failed in it, `timeout` or `died`."""


@dataclass(frozen=True)
class ResultSet:
    columns: list[str]
    rows: list[list]
    truncated: bool
    cpu_ms: int = 0


@dataclass(frozen=True)
class WorkerConfig:
    limits: Limits = Limits()
    timeout_s: float = 10.0
    max_fetch_rows: int = 100_000
    # Each worker spills, encrypted, into a folder of its own made here (`Limits`).
    spill_root: Path | None = None
    lifetime_s: float = WORKER_LIFETIME_S


def plain(value: object) -> object:
    """Values a JSON response can carry, made inside the worker."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity; refusing them would be a data-dependent error
    if isinstance(value, float) and value == 0:
        # -0.0 groups with 0.0 and a group shows its first row's sign: one person's bit.
        return 0.0
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def _leave_network() -> bool:
    """Move this process into an empty network namespace where the kernel lets us.

    A second wall behind DuckDB's own `enable_external_access=false`: even an engine bug
    finds no route out. Without namespace rights (not root, no user namespaces) we go on.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    return any(libc.unshare(flags) == 0 for flags in (CLONE_NEWNET, CLONE_NEWUSER | CLONE_NEWNET))


def _serve(channel: Connection, attachments: list[Attachment], config: WorkerConfig) -> None:
    """The worker's whole life: open assets, lock DuckDB, answer queries; no engine text leaves.

    It writes nothing to the server's log itself: its replies carry what went wrong (exception
    types only) and the parent logs them, in the format the gateway's log is configured for.
    Once the parent has gone there is no one to answer, and it ends without a word."""
    interrupts.ignore()
    with contextlib.suppress(EOFError, ConnectionError):
        _answer(channel, attachments, config)


def _answer(channel: Connection, attachments: list[Attachment], config: WorkerConfig) -> None:
    """Open the assets, lock DuckDB, say so, then answer each query the parent sends."""
    import duckdb

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    isolated = _leave_network()
    unattached: list[tuple[str, str]] = []
    try:
        connection = connect()
        for attachment in attachments:
            try:
                connection.execute(
                    attach_sql(attachment.catalog, attachment.path, attachment.key, read_only=True)
                )
            except duckdb.Error as exc:
                # One damaged asset must not take the others down; queries on it fail.
                unattached.append((attachment.asset_id, type(exc).__name__))
        lock_down(connection, config.limits)
    except Exception as exc:  # noqa: BLE001 - the parent only learns that start-up failed
        channel.send(("failed", type(exc).__name__))
        return
    channel.send(("ready", isolated, unattached))
    while True:
        sql = channel.recv()
        started = time.process_time()
        try:
            cursor = connection.execute(sql)
            columns = [d[0] for d in cursor.description]
            fetched = cursor.fetchmany(config.max_fetch_rows + 1)
            rows = [[plain(v) for v in row] for row in fetched[: config.max_fetch_rows]]
            cpu_ms = math.ceil((time.process_time() - started) * 1000)
            channel.send(("ok", columns, rows, len(fetched) > config.max_fetch_rows, cpu_ms))
        except Exception as exc:  # noqa: BLE001 - engine text must not cross the boundary
            channel.send(("error", type(exc).__name__))


def _stamp(path: Path) -> FileStamp:
    """The file's stamp now; None if it cannot be read."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


class Worker:
    """One enclave process and the pipe to it."""

    def __init__(self, attachments: list[Attachment], config: WorkerConfig) -> None:
        # Taken before the worker opens the files: one changed in between only looks stale.
        self._stamps = {attachment.path: _stamp(attachment.path) for attachment in attachments}
        context = multiprocessing.get_context("spawn")
        self._channel, child = context.Pipe()
        # A spill folder of its own, readable by this user alone and gone with the worker.
        self._spill: Path | None = None
        if config.spill_root is not None:
            config.spill_root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._spill = Path(tempfile.mkdtemp(prefix="worker-", dir=config.spill_root))
            spilling = replace(config.limits, spill_directory=str(self._spill))
            config = replace(config, limits=spilling)
        self._config = config
        # Why the pool stopped this worker, if it did: a dead worker without one crashed.
        self.stopped_for: str | None = None
        self.retires_at = time.monotonic() + config.lifetime_s
        self.process = context.Process(
            target=_serve, args=(child, attachments, config), daemon=True, name="veil-enclave"
        )
        with interrupts.held():
            self.process.start()
        child.close()
        try:
            reply = self._channel.recv() if self._channel.poll(START_TIMEOUT_S) else ("timeout",)
        except (EOFError, OSError):
            reply = ("died",)  # a worker that dies while starting is one that could not start
        if reply[0] != "ready":
            self.kill()
            raise EnclaveUnavailable("the enclave could not start") from StartFailed(reply[-1])
        self.network_isolated: bool = reply[1]
        unattached: list[tuple[str, str]] = reply[2]
        if not self.network_isolated:
            log.warning("enclave worker could not leave the network namespace")
        for asset_id, error in unattached:
            log.error("asset %s could not be attached: %s", asset_id, error)

    def run(self, sql: str, cancel: threading.Event | None = None) -> ResultSet:
        """Run `sql`; a set `cancel` or the time limit kills the worker mid-query."""
        try:
            self._channel.send(sql)
            self._await_reply(cancel)
            reply = self._channel.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            self.kill(CRASHED)
            raise ExecutionFailed("the query could not be executed") from exc
        if reply[0] != "ok":
            log.info("query failed in enclave worker: %s", reply[1])
            raise ExecutionFailed("the query could not be executed")
        _, columns, rows, truncated, cpu_ms = reply
        return ResultSet(columns, rows, truncated, cpu_ms)

    def _await_reply(self, cancel: threading.Event | None) -> None:
        deadline = time.monotonic() + self._config.timeout_s
        while not self._channel.poll(min(CANCEL_CHECK_S, max(0.0, deadline - time.monotonic()))):
            if cancel is not None and cancel.is_set():
                self.kill(CANCELLED)
                raise Cancelled("the query was stopped: its authorisation ended while it ran")
            if time.monotonic() >= deadline:
                self.kill(TIMEOUT)
                raise ExecutionTimeout("the query ran past its time limit and was stopped")

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    @property
    def current(self) -> bool:
        """Every asset file is the one this worker opened. A worker holds the file (the inode) it
        attached, and one it could not attach stays unattached: a file repaired or restored
        since, in place or by rename, is read only by a new worker."""
        return all(_stamp(path) == stamp for path, stamp in self._stamps.items())

    def kill(self, reason: str | None = None) -> None:
        if self.stopped_for is None:
            self.stopped_for = reason
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self._channel.close()
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)


class WorkerPool:
    """At most `size` workers over the current set of assets, replaced when they die or the
    assets change. A slot is freed the moment a query ends, however it ends.

    `on_retire` hears why each worker left service: crashed, timeout, cancelled, assets_changed,
    recycled (its lifetime over) or start_failed (a worker that never started)."""

    def __init__(
        self,
        catalog: Callable[[], tuple[int, list[Attachment]]],
        config: WorkerConfig,
        size: int = 2,
        on_retire: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self._catalog = catalog
        self._config = config
        self._on_retire = on_retire
        self._size = size
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[tuple[int, Worker]] = []
        self._closed = False
        self._lock = threading.Lock()

    @property
    def max_fetch_rows(self) -> int:
        """The most rows a query's answer may have before it is cut."""
        return self._config.max_fetch_rows

    def warm(self) -> None:
        """Start the workers the pool may hold, so the first queries need not wait for one.

        A worker that finds the pool closed or already full is stopped at once."""
        for _ in range(self._size):
            if not self._add_idle():
                return

    def _add_idle(self) -> bool:
        """Start a worker for the idle set; False, and it stopped, if the pool is closed or full."""
        generation, attachments = self._catalog()
        try:
            worker = self._start(attachments)
        except EnclaveUnavailable:
            if self._closed:
                return False
            raise
        with self._lock:
            kept = not self._closed and len(self._idle) < self._size
            if kept:
                self._idle.append((generation, worker))
        if not kept:
            worker.kill()
        return kept

    def run(self, sql: str, cancel: threading.Event | None = None) -> ResultSet:
        if not self._slots.acquire(timeout=self._config.timeout_s * 2):
            raise EnclaveUnavailable("the enclave is busy; try again")
        try:
            generation, worker = self._checkout()
            try:
                return worker.run(sql, cancel)
            finally:
                self._checkin(generation, worker)
        finally:
            self._slots.release()

    def _checkout(self) -> tuple[int, Worker]:
        generation, attachments = self._catalog()
        with self._lock:
            while self._idle:
                held_generation, worker = self._idle.pop()
                if held_generation == generation and worker.alive and worker.current:
                    return generation, worker
                self._retire(worker)
        return generation, self._start(attachments)

    def _checkin(self, generation: int, worker: Worker) -> None:
        if worker.alive and time.monotonic() >= worker.retires_at:
            worker.stopped_for = RECYCLED
        elif worker.alive and generation == self._catalog()[0]:
            with self._lock:
                # Warming may have filled the pool while this worker was out.
                if not self._closed and len(self._idle) < self._size:
                    self._idle.append((generation, worker))
                    return
            worker.kill()
            return
        self._retire(worker)

    def _start(self, attachments: list[Attachment]) -> Worker:
        try:
            return Worker(attachments, self._config)
        except EnclaveUnavailable as exc:
            if self._closed:
                raise  # shutting down: a worker stopped while it started has not failed
            log.error("enclave worker failed to start: %s", exc.__cause__)
            self._on_retire(START_FAILED)
            raise

    def _retire(self, worker: Worker) -> None:
        """Stop a worker the pool cannot use again, say why it left, and start its successor
        at once: a pool left short until the next query would tell that query's sender that
        some query was cancelled, timed out or crashed a worker."""
        reason = worker.stopped_for or (ASSETS_CHANGED if worker.alive else CRASHED)
        worker.kill()
        self._on_retire(reason)
        threading.Thread(target=self._replace, name="worker-replace", daemon=True).start()

    def _replace(self) -> None:
        # If it cannot start, the next query starts one or says the enclave is unavailable.
        with contextlib.suppress(EnclaveUnavailable):
            self._add_idle()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for _, worker in self._idle:
                worker.kill()
            self._idle.clear()
