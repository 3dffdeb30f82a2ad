"""The job queue of one gateway process: bounded concurrency, and a cancel switch per job."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sandbox.jobs.runner import JobRunner


class JobQueue:
    """Jobs of this process: at most `concurrency` run at once, the rest wait their turn."""

    def __init__(self, runner: JobRunner, concurrency: int) -> None:
        self.runner = runner
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="veil-job")
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def enqueue(self, work: Callable[[], None], job_id: str) -> None:
        with self._lock:
            self._cancels[job_id] = threading.Event()
        self._executor.submit(work)

    def cancel_event(self, job_id: str) -> threading.Event:
        with self._lock:
            return self._cancels.setdefault(job_id, threading.Event())

    def cancel(self, job_id: str) -> None:
        self.cancel_event(job_id).set()

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._cancels.pop(job_id, None)

    def close(self) -> None:
        with self._lock:
            for event in self._cancels.values():
                event.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.runner.close()
