"""The job queue of one gateway process: bounded concurrency, a fair share per principal, and a
cancel switch per job."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.jobs.runner import JobRunner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Waiting:
    principal: str
    work: Callable[[], None]


class JobQueue:
    """Jobs of this process: at most `concurrency` run at once and at most `per_principal` of
    one principal's, so a principal who queues many jobs cannot hold every slot; among the jobs
    that may start, the oldest starts first."""

    def __init__(self, runner: JobRunner, concurrency: int, per_principal: int) -> None:
        self.runner = runner
        self.per_principal = per_principal
        self._waiting: list[_Waiting] = []
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

    def enqueue(self, work: Callable[[], None], job_id: str, principal: str) -> None:
        with self._changed:
            self._cancels[job_id] = threading.Event()
            self._waiting.append(_Waiting(principal, work))
            self._changed.notify_all()

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
                return self._waiting.pop(at)
        return None
