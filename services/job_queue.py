"""The job queue, kept in the control store so that no job is lost with a process: every
gateway process claims waiting jobs with a lease, renews the leases of the jobs it runs, and
fails the running jobs of a process that stopped renewing."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from governance.job_records import Job, JobRecords
from sandbox.jobs.runner import JobRunner
from services.errors import Busy

log = logging.getLogger(__name__)


class Place:
    """Room in the queue for one job of one principal, taken before the job is submitted so
    that a full queue refuses it before anything is compiled or recorded."""

    def __init__(self, queue: JobQueue, principal: str) -> None:
        self._queue = queue
        self.principal = principal
        self.used = False

    def enqueue(self, job_id: str) -> None:
        """Let any process start the job, created and recorded in this place: once."""
        self._queue._open(self, job_id)


class JobQueue:
    """Jobs of every process: this one runs at most `concurrency` at once; a principal has at
    most `per_principal` running (or holding a slot) in all processes, so one who queues many
    cannot hold every slot; among the jobs that may start, the oldest starts first. At most
    `capacity` wait in all and at most `per_principal_waiting` of one principal's; a job beyond
    either is refused with Busy.

    A slot claims a job with a lease of `lease_s` seconds, renewed every third of it while the
    job runs; a process that stops renewing loses its running jobs to `reap` (any process's).
    Leases are taken and judged by the database's clock, so processes whose own clocks differ
    agree on which have run out.
    Idle slots look for jobs queued elsewhere every `poll_s` seconds, and at once for their own.
    """

    def __init__(
        self,
        runner: JobRunner,
        records: JobRecords,
        concurrency: int,
        per_principal: int,
        *,
        capacity: int,
        per_principal_waiting: int,
        lease_s: float,
        poll_s: float,
    ) -> None:
        self.runner = runner
        self.records = records
        # This process, as its leases name it: a fresh name each start.
        self.owner = f"p_{uuid.uuid4().hex[:16]}"
        self.concurrency = concurrency
        self.per_principal = per_principal
        self.capacity = capacity
        self.per_principal_waiting = per_principal_waiting
        self.lease_s = lease_s
        self.poll_s = poll_s
        # Per principal, its places held for jobs being submitted in this process.
        self._placing: Counter[str] = Counter()
        # The jobs whose leases this process renews.
        self._leased: set[str] = set()
        self._cancels: dict[str, threading.Event] = {}
        self._closed = False
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, work: Callable[[Job], None], reap: Callable[[], None]) -> None:
        """Serve: each slot runs `work` on the jobs it claims; `reap` runs with each renewal."""
        self._threads = [
            threading.Thread(target=self._serve, args=(work,), name=f"veil-job-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        self._threads.append(
            threading.Thread(target=self._keep_leases, args=(reap,), name="job-leases", daemon=True)
        )
        for thread in self._threads:
            thread.start()

    @contextmanager
    def place(self, principal: str) -> Iterator[Place]:
        """Room for one of `principal`'s jobs while it is submitted, or Busy if the queue has
        none; given back once the job is queued or the submission ends."""
        waiting, theirs = self.records.waiting(principal)
        with self._changed:
            if waiting + self._placing.total() >= self.capacity:
                raise Busy(f"at most {self.capacity} jobs may wait at once; try again later")
            if theirs + self._placing[principal] >= self.per_principal_waiting:
                raise Busy(
                    f"at most {self.per_principal_waiting} jobs of one principal may wait at"
                    " once; try again once one has started"
                )
            self._placing[principal] += 1
        place = Place(self, principal)
        try:
            yield place
        finally:
            with self._changed:
                self._placing[principal] -= 1
                if not self._placing[principal]:
                    del self._placing[principal]

    def _open(self, place: Place, job_id: str) -> None:
        if place.used:
            raise RuntimeError("a place in the job queue holds one job")
        place.used = True
        self.records.open(job_id)
        with self._changed:
            self._changed.notify_all()

    def cancel_event(self, job_id: str) -> threading.Event:
        with self._changed:
            return self._cancels.setdefault(job_id, threading.Event())

    def cancel(self, job_id: str) -> None:
        """Stop the job here if it runs here, and ask whichever process runs it to stop it."""
        self.cancel_event(job_id).set()
        self.records.ask_cancel(job_id)

    def forget(self, job_id: str) -> None:
        with self._changed:
            self._cancels.pop(job_id, None)

    def hold(self, job_id: str, until: float) -> float:
        """Keep an ended job's slot taken until `until` (Unix time by the database's clock),
        even past this process; returns the seconds left until then by that clock."""
        with self._changed:
            self._leased.discard(job_id)
        return self.records.hold(job_id, self.owner, until)

    def close(self) -> None:
        """Stop this process's slots; its running jobs are cancelled, waiting ones stay queued
        for any process."""
        self._stopping.set()
        with self._changed:
            self._closed = True
            for event in self._cancels.values():
                event.set()
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()
        self.runner.close()

    def _serve(self, work: Callable[[Job], None]) -> None:
        """One slot: claim the oldest job whose principal is under its share, run it, repeat."""
        while True:
            with self._changed:
                if self._closed:
                    return
            job = self._claim()
            if job is None:
                with self._changed:
                    if not self._closed:
                        self._changed.wait(self.poll_s)
                continue
            try:
                work(job)
            except Exception:  # noqa: BLE001 - a slot must outlive any one job
                log.exception("a job's work raised in its slot")
            finally:
                self._free(job.id)

    def _claim(self) -> Job | None:
        try:
            job = self.records.claim(
                self.owner, per_principal=self.per_principal, lease_s=self.lease_s
            )
        except Exception:  # noqa: BLE001 - the store may be away for a while; try again later
            log.exception("could not claim a job")
            return None
        if job is not None:
            with self._changed:
                self._leased.add(job.id)
        return job

    def _free(self, job_id: str) -> None:
        with self._changed:
            held = job_id not in self._leased
            self._leased.discard(job_id)
        try:
            if not held:  # a held slot keeps its lease until the time it was held to
                self.records.release(job_id, self.owner)
        except Exception:  # noqa: BLE001 - the lease then runs out by itself
            log.exception("could not free the slot of job %s", job_id)
        with self._changed:
            self._changed.notify_all()  # its principal's next job may start now

    def _keep_leases(self, reap: Callable[[], None]) -> None:
        """Renew this process's leases, stop jobs whose cancel was asked or whose lease was
        lost, and fail the jobs of processes that stopped renewing theirs."""
        while not self._stopping.wait(self.lease_s / 3):
            with self._changed:
                leased = set(self._leased)
            try:
                for job_id in self.records.renew(self.owner, leased, self.lease_s):
                    self.cancel_event(job_id).set()
                reap()
            except Exception:  # noqa: BLE001 - the next renewal tries again
                log.exception("could not renew the job leases")
