"""The durable job queue on SQLite and PostgreSQL: jobs wait in the control store, any process
claims the oldest one whose developer has room, leases are renewed while a job runs, and a
job whose process stopped renewing is failed, never run twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from governance import ControlStore
from governance.job_records import JOB_LOST, Job, JobRecords, JobStatus, jobs
from services.errors import Busy
from services.job_queue import JobQueue

PATIENCE_S = 60
GRANT = {"developer": "a", "assets": ["a.one"], "purpose": "research", "methods": ["job"],
         "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"}  # fmt: skip


class _Runner:
    """The queue only closes its runner; these tests run plain callables in its slots."""

    def close(self) -> None:
        pass


def _queued(records: JobRecords, store: ControlStore, developer: str, code: str = "x = 1") -> Job:
    grant = store.create_grant(dict(GRANT, developer=developer), ["prov"])
    job = records.create(developer, grant.id, code, reviewers=["prov"], review=[],
                         price_plan="standard")  # fmt: skip
    records.open(job.id)
    return job


def _other_process(store: ControlStore) -> JobRecords:
    """The same database through an engine of its own, as another gateway process has."""
    return JobRecords(ControlStore(str(store.engine.url)).engine)


def test_a_job_being_submitted_waits_until_its_submission_is_recorded(store) -> None:
    records = JobRecords(store.engine)
    grant = store.create_grant(GRANT, ["prov"])
    job = records.create("a", grant.id, "x = 1", reviewers=["prov"], review=[],
                         price_plan="standard")  # fmt: skip
    assert records.claim("p1", per_principal=1, lease_s=30) is None
    records.open(job.id)
    claimed = records.claim("p1", per_principal=1, lease_s=30)
    assert claimed is not None and claimed.id == job.id
    assert claimed.status is JobStatus.RUNNING and claimed.started_at is not None


def test_leases_and_the_start_are_taken_from_the_database_clock_in_unix_seconds(store) -> None:
    """One reading of the database's clock stamps a job's start and dates its lease, in Unix
    seconds as leases always were (on one host it agrees with this process's clock)."""
    records = JobRecords(store.engine)
    assert abs(records.clock() - time.time()) < PATIENCE_S
    job = _queued(records, store, "a")
    claimed = records.claim("p1", per_principal=1, lease_s=30)
    assert claimed is not None and claimed.started is not None
    with store.engine.connect() as db:
        until = db.execute(sa.select(jobs.c.lease_until).where(jobs.c.id == job.id)).scalar_one()
    # The start is stamped to the second of the reading the lease's 30 s count from.
    assert -0.01 < until - 30 - claimed.started.timestamp() < 1.01


def test_claims_take_the_oldest_job_whose_developer_has_room_in_any_process(store) -> None:
    here, there = JobRecords(store.engine), _other_process(store)
    a1, a2 = _queued(here, store, "a"), _queued(here, store, "a")
    b1 = _queued(here, store, "b")
    first = here.claim("p1", per_principal=1, lease_s=30)
    assert first is not None and first.id == a1.id
    # The other process finds a's share taken: it starts b's job, queued after a's second.
    second = there.claim("p2", per_principal=1, lease_s=30)
    assert second is not None and second.id == b1.id
    assert there.claim("p2", per_principal=1, lease_s=30) is None
    here.release(a1.id, "p1")
    third = there.claim("p2", per_principal=1, lease_s=30)
    assert third is not None and third.id == a2.id
    assert here.claim("p1", per_principal=1, lease_s=30) is None  # nothing is claimed twice


def test_a_job_whose_process_stopped_renewing_fails_once_and_is_not_run_again(store) -> None:
    here, there = JobRecords(store.engine), _other_process(store)
    job = _queued(here, store, "a")
    assert here.claim("p1", per_principal=1, lease_s=30) is not None
    assert there.lose_expired(held_span_s=60) == []  # a live lease is left alone
    assert here.renew("p1", {job.id}, lease_s=0) == set()  # renewed: ours, nothing asked
    (lost,) = there.lose_expired(held_span_s=60)
    assert lost.id == job.id and lost.status is JobStatus.FAILED
    assert lost.error == {"code": JOB_LOST, "violations": []}
    assert there.lose_expired(held_span_s=60) == []
    # The first process, back, learns at its next renewal that the job is no longer its own.
    assert here.renew("p1", {job.id}, lease_s=30) == {job.id}
    assert here.claim("p1", per_principal=1, lease_s=30) is None
    assert there.claim("p2", per_principal=1, lease_s=30) is None


def test_a_lost_held_job_keeps_its_developers_share_for_its_whole_span(store) -> None:
    """A held job's developer must not learn when it ended: lost or not, its share frees no
    sooner than its latest end."""
    records = JobRecords(store.engine)
    grant = store.create_grant(GRANT, ["prov"])
    held = records.create("a", grant.id, "x = 1", reviewers=["prov"], review=["policy"],
                          price_plan="standard")  # fmt: skip
    records.open(held.id)
    nxt = _queued(records, store, "a")
    assert records.claim("p1", per_principal=1, lease_s=0) is not None  # its lease ends now
    (lost,) = records.lose_expired(held_span_s=3600)
    assert lost.id == held.id and lost.status is JobStatus.FAILED
    assert records.claim("p2", per_principal=1, lease_s=30) is None
    records.lose_expired(held_span_s=3600)
    assert records.claim("p2", per_principal=1, lease_s=30) is None
    assert records.get(nxt.id).status is JobStatus.QUEUED


def test_an_unfinished_submission_is_failed_not_run(store, monkeypatch) -> None:
    records = JobRecords(store.engine)
    grant = store.create_grant(GRANT, ["prov"])
    job = records.create("a", grant.id, "x = 1", reviewers=["prov"], review=[],
                         price_plan="standard")  # fmt: skip
    assert records.lose_expired(held_span_s=60) == []  # still within its submission's time
    monkeypatch.setattr("governance.job_records.SUBMISSION_LOST_S", -1.0)
    (lost,) = records.lose_expired(held_span_s=60)
    assert lost.id == job.id and lost.error["code"] == JOB_LOST
    assert records.claim("p1", per_principal=1, lease_s=30) is None


def test_a_cancel_asked_anywhere_reaches_the_process_running_the_job(store) -> None:
    here, there = JobRecords(store.engine), _other_process(store)
    job, other = _queued(here, store, "a"), _queued(here, store, "b")
    here.claim("p1", per_principal=1, lease_s=30)
    here.claim("p1", per_principal=1, lease_s=30)
    there.ask_cancel(job.id)
    assert here.renew("p1", {job.id, other.id}, lease_s=30) == {job.id}


@contextmanager
def _serving(
    store: ControlStore, works: dict[str, Callable[[], None]], **limits: int
) -> Iterator[JobQueue]:
    """A queue serving `works` by job code, with the limits given."""
    queue = JobQueue(_Runner(), JobRecords(store.engine), limits.get("slots", 1),  # type: ignore[arg-type]
                     limits.get("share", 1), capacity=limits.get("capacity", 8),
                     per_principal_waiting=limits.get("waiting", 8), lease_s=30, poll_s=0.05)  # fmt: skip
    queue.start(lambda job: works[job.code](), lambda: None)
    try:
        yield queue
    finally:
        queue.close()


def _submit(queue: JobQueue, store: ControlStore, developer: str, code: str) -> None:
    with queue.place(developer) as place:
        grant = store.create_grant(dict(GRANT, developer=developer), ["prov"])
        job = queue.records.create(developer, grant.id, code, reviewers=["prov"], review=[],
                                   price_plan="standard")  # fmt: skip
        place.enqueue(job.id)


def test_a_full_job_queue_refuses_a_job_before_it_is_submitted(store) -> None:
    """A principal with too many jobs waiting, or too many in all, is refused (Busy: 429) at
    once, before its job is compiled or recorded; a place given back makes room."""
    release, started, done = threading.Event(), threading.Event(), threading.Event()

    def hog() -> None:
        started.set()
        release.wait(PATIENCE_S)

    works = {"hog": hog, "idle": lambda: None, "done": done.set}
    try:
        with _serving(store, works, capacity=3, waiting=2) as queue:
            _submit(queue, store, "a", "hog")
            assert started.wait(PATIENCE_S)  # running, so no longer waiting
            _submit(queue, store, "a", "idle")
            _submit(queue, store, "a", "idle")
            with pytest.raises(Busy, match="2 jobs of one principal") as refused:
                _submit(queue, store, "a", "idle")
            assert refused.value.code == "RATE_LIMITED"
            with queue.place("b"), pytest.raises(Busy, match="at most 3 jobs may wait"):
                _submit(queue, store, "c", "idle")
            with pytest.raises(ValueError), queue.place("c"):
                raise ValueError("the submission was refused before it queued its job")
            _submit(queue, store, "c", "done")
            release.set()
            assert done.wait(PATIENCE_S)
    finally:
        release.set()


def test_a_principal_over_its_share_waits_and_others_start(store) -> None:
    release = threading.Event()
    started = {name: threading.Event() for name in ("a1", "a2", "a3", "b1")}

    def job(name: str) -> Callable[[], None]:
        def work() -> None:
            started[name].set()
            release.wait(PATIENCE_S)

        return work

    try:
        with _serving(store, {name: job(name) for name in started}, slots=2) as queue:
            for name in ("a1", "a2", "a3"):
                _submit(queue, store, "a", name)
            assert started["a1"].wait(PATIENCE_S)
            _submit(queue, store, "b", "b1")
            # b1 takes the second slot although a2 and a3 were queued before it.
            assert started["b1"].wait(PATIENCE_S)
            assert not started["a2"].is_set() and not started["a3"].is_set()
            release.set()
            # With the slots free again, a's jobs run in the order they came.
            assert started["a2"].wait(PATIENCE_S) and started["a3"].wait(PATIENCE_S)
    finally:
        release.set()


def test_a_job_that_raises_leaves_its_slot_serving(store) -> None:
    done = threading.Event()

    def broken() -> None:
        raise RuntimeError("a bug in one job")

    with _serving(store, {"broken": broken, "done": done.set}) as queue:
        _submit(queue, store, "a", "broken")
        _submit(queue, store, "a", "done")
        assert done.wait(PATIENCE_S)


def test_jobs_queued_by_one_process_are_run_by_another(store) -> None:
    """What waits is in the store: a process that stops leaves its queued jobs to the next."""
    done = threading.Event()
    submitter = JobQueue(_Runner(), _other_process(store), 1, 1, capacity=8,  # type: ignore[arg-type]
                         per_principal_waiting=8, lease_s=30, poll_s=0.05)  # fmt: skip
    _submit(submitter, store, "a", "done")
    submitter.close()  # never started: it ran nothing
    with _serving(store, {"done": done.set}):
        assert done.wait(PATIENCE_S)
