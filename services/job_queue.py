"""The job queue of one gateway process: bounded concurrency, a fair share per principal, a
bounded number waiting, and a cancel switch per job."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sandbox.jobs.runner import JobRunner
from services.errors import Busy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Waiting:
    principal: str
    work: Callable[[], None]


class Place:
    """Room in the queue for one job of one principal, taken before the job is submitted so
    that a full queue refuses it before anything is compiled or recorded."""

    def __init__(self, queue: JobQueue, principal: str) -> None:
        self._queue = queue
        self.principal = principal
        self.used = False

    def enqueue(self, work: Callable[[], None], job_id: str) -> None:
        """Queue the job in this place: once."""
        self._queue._put(self, work, job_id)


class JobQueue:
    """Jobs of this process: at most `concurrency` run at once and at most `per_principal` of
    one principal's, so a principal who queues many jobs cannot hold every slot; among the jobs
    that may start, the oldest starts first. At most `capacity` wait in all and at most
    `per_principal_waiting` of one principal's; a job beyond either is refused with Busy."""

    def __init__(
        self,
        runner: JobRunner,
        concurrency: int,
        per_principal: int,
        *,
        capacity: int,
        per_principal_waiting: int,
    ) -> None:
        self.runner = runner
        self.per_principal = per_principal
        self.capacity = capacity
        self.per_principal_waiting = per_principal_waiting
        self._waiting: list[_Waiting] = []
        # Per principal, its jobs waiting and its places held for jobs being submitted.
        self._queued: Counter[str] = Counter()
        self._running: Counter[str] = Counter()
        self._cancels: dict[str, threading.Event] = {}
        self._closed = False
        self._changed = threading.Condition()
        self._slots = [
            threading.Thread(target=self._serve, name=f"veil-job-{i}", daemon=True)
            for i in range(concurrency)
        ]
        for slot in self._slots:
            slot.start()

    @contextmanager
    def place(self, principal: str) -> Iterator[Place]:
        """Room for one of `principal`'s jobs while it is submitted, or Busy if the queue has
        none; given back unless a job was queued in it."""
        with self._changed:
            if self._queued.total() >= self.capacity:
                raise Busy(f"at most {self.capacity} jobs may wait at once; try again later")
            if self._queued[principal] >= self.per_principal_waiting:
                raise Busy(
                    f"at most {self.per_principal_waiting} jobs of one principal may wait at"
                    " once; try again once one has started"
                )
            self._queued[principal] += 1
        place = Place(self, principal)
        try:
            yield place
        finally:
            if not place.used:
                with self._changed:
                    self._unqueue(principal)

    def enqueue(self, work: Callable[[], None], job_id: str, principal: str) -> None:
        """Queue a job at once, or refuse it with Busy if the queue has no room."""
        with self.place(principal) as room:
            room.enqueue(work, job_id)

    def _put(self, place: Place, work: Callable[[], None], job_id: str) -> None:
        with self._changed:
            if place.used:
                raise RuntimeError("a place in the job queue holds one job")
            place.used = True
            self._cancels[job_id] = threading.Event()
            self._waiting.append(_Waiting(place.principal, work))
            self._changed.notify_all()

    def _unqueue(self, principal: str) -> None:
        self._queued[principal] -= 1
        if not self._queued[principal]:
            del self._queued[principal]

    def cancel_event(self, job_id: str) -> threading.Event:
        with self._changed:
            return self._cancels.setdefault(job_id, threading.Event())

    def cancel(self, job_id: str) -> None:
        self.cancel_event(job_id).set()

    def forget(self, job_id: str) -> None:
        with self._changed:
            self._cancels.pop(job_id, None)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            for job in self._waiting:
                self._unqueue(job.principal)
            self._waiting.clear()
            for event in self._cancels.values():
                event.set()
            self._changed.notify_all()
        for slot in self._slots:
            slot.join()
        self.runner.close()

    def _serve(self) -> None:
        """One slot: take the oldest job whose principal is under its share, run it, repeat."""
        while True:
            with self._changed:
                job = self._next()
                while job is None:
                    if self._closed:
                        return
                    self._changed.wait()
                    job = self._next()
                self._running[job.principal] += 1
            try:
                job.work()
            except Exception:  # noqa: BLE001 - a slot must outlive any one job
                log.exception("a job's work raised in its slot")
            finally:
                with self._changed:
                    self._running[job.principal] -= 1
                    if not self._running[job.principal]:
                        del self._running[job.principal]
                    self._changed.notify_all()

    def _next(self) -> _Waiting | None:
        for at, job in enumerate(self._waiting):
            if self._running[job.principal] < self.per_principal:
                self._unqueue(job.principal)
                return self._waiting.pop(at)
        return None
