"""Job records in the control database: status, checked outputs and release decisions."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from governance.clock import utc_now
from governance.errors import ControlError, NotFound
from governance.tables import metadata

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(34), primary_key=True),
    sa.Column("developer", sa.String(64), nullable=False, index=True),
    sa.Column("grant_id", sa.String(32), sa.ForeignKey("grants.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("code_sha256", sa.String(64), nullable=False),
    sa.Column("reviewers", sa.Text, nullable=False),
    sa.Column("review", sa.Text, nullable=False),
    sa.Column("price_plan", sa.String(64), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("outputs", sa.Text, nullable=True),
    sa.Column("disclosure", sa.Text, nullable=True),
    sa.Column("cpu_ms", sa.BigInteger, nullable=False),
    sa.Column("submitted_at", sa.String(32), nullable=False),
    sa.Column("started_at", sa.String(32), nullable=True),
    sa.Column("finished_at", sa.String(32), nullable=True),
    sa.Column("decided_by", sa.String(64), nullable=True),
    sa.Column("decision_reason", sa.Text, nullable=True),
)

# A held job's run, record by record, until it is written to the ledger at the job's latest end.
job_traces = sa.Table(
    "job_traces",
    metadata,
    sa.Column("job_id", sa.String(34), sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("entry", sa.Text, nullable=False),
)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    REVIEW = "review"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"


ENDED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.REJECTED,
                   JobStatus.CANCELLED, JobStatus.TIMEOUT})  # fmt: skip
RELEASE_REJECTED = "RELEASE_REJECTED"
STAMP = "%Y-%m-%dT%H:%M:%SZ"  # how utc_now() stamps
# Where a held job can be when a reviewer decides: waiting, or ended in any way.
DECIDABLE = sorted(status.value for status in ENDED | {JobStatus.REVIEW})
TRANSITIONS = {
    JobStatus.QUEUED: {JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED},
    JobStatus.RUNNING: ENDED | {JobStatus.REVIEW},
    JobStatus.REVIEW: {JobStatus.SUCCEEDED, JobStatus.REJECTED},
}


@dataclass(frozen=True)
class Job:
    id: str
    developer: str
    grant_id: str
    status: JobStatus
    code: str
    code_sha256: str
    # Who may approve or reject its release: the providers of the grant's assets.
    reviewers: list[str]
    # Why its outputs wait for a reviewer, if they must.
    review: list[str]
    # The plan its CPU time is priced under, as decided at submission.
    price_plan: str
    error: dict | None
    outputs: dict | None
    disclosure: dict | None
    cpu_ms: int
    submitted_at: str
    started_at: str | None
    finished_at: str | None
    decided_by: str | None
    decision_reason: str | None

    @property
    def started(self) -> datetime | None:
        """When it started, to the second as stamped; None until it does."""
        if self.started_at is None:
            return None
        return datetime.strptime(self.started_at, STAMP).replace(tzinfo=UTC)

    @property
    def held(self) -> bool:
        """Whether a reviewer must decide before its developer learns how it ran.

        A job has review reasons when policy required review at submission or the gate held
        its tables; until a reviewer approves, every ending it could cause looks alike.
        """
        rejected = (self.error or {}).get("code") == RELEASE_REJECTED
        return bool(self.review) and (self.decided_by is None or rejected)

    def as_dict(self, *, with_outputs: bool) -> dict:
        """The job as the API shows it; outputs only where the caller may see them."""
        return {
            "id": self.id,
            "status": self.status.value,
            "outputs": self.outputs if with_outputs else None,
            "error": self.error,
            "developer": self.developer,
            "grant_id": self.grant_id,
            "code_sha256": self.code_sha256,
            "review": self.review,
            "disclosure": self.disclosure,
            "cpu_ms": self.cpu_ms,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "decided_by": self.decided_by,
        }


class JobRecords:
    """Every change of a job's status goes through `move`, which refuses a wrong transition."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(
        self,
        developer: str,
        grant_id: str,
        code: str,
        *,
        reviewers: list[str],
        review: list[str],
        price_plan: str,
    ) -> Job:
        job_id = "j_" + secrets.token_hex(16)
        with self.engine.begin() as db:
            db.execute(
                jobs.insert().values(
                    id=job_id,
                    developer=developer,
                    grant_id=grant_id,
                    status=JobStatus.QUEUED.value,
                    code=code,
                    code_sha256=hashlib.sha256(code.encode()).hexdigest(),
                    reviewers=json.dumps(sorted(set(reviewers))),
                    review=json.dumps(review),
                    price_plan=price_plan,
                    cpu_ms=0,
                    submitted_at=utc_now(),
                )
            )
        return self.get(job_id)

    def get(self, job_id: str) -> Job:
        with self.engine.connect() as db:
            row = db.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound("no such job")
        return _job(row)

    def listing(self, *, developer: str | None = None, status: str | None = None) -> list[Job]:
        query = sa.select(jobs).order_by(jobs.c.submitted_at.desc(), jobs.c.id).limit(500)
        if developer is not None:
            query = query.where(jobs.c.developer == developer)
        if status is not None:
            query = query.where(jobs.c.status == status)
        with self.engine.connect() as db:
            return [_job(row) for row in db.execute(query)]

    def held_of(self, developer: str) -> list[Job]:
        """The developer's jobs whose run it may not learn of until a reviewer approves."""
        query = sa.select(jobs).where(jobs.c.developer == developer, jobs.c.review != "[]")
        with self.engine.connect() as db:
            return [job for job in map(_job, db.execute(query)) if job.held]

    def trace(self, job_id: str, entry: dict) -> None:
        """Keep one record of a held job's run, durably, until its run is written."""
        with self.engine.begin() as db:
            seq = db.execute(
                sa.select(sa.func.count()).where(job_traces.c.job_id == job_id)
            ).scalar_one()
            db.execute(job_traces.insert().values(job_id=job_id, seq=seq, entry=json.dumps(entry)))

    def traced(self, job_id: str) -> list[dict]:
        """A held job's run as recorded so far, in order."""
        query = sa.select(job_traces.c.entry).where(job_traces.c.job_id == job_id)
        with self.engine.connect() as db:
            found = db.execute(query.order_by(job_traces.c.seq)).scalars()
            return [json.loads(entry) for entry in found]

    def untraced(self, job_id: str) -> None:
        """Forget a held job's records once its run is in the ledger."""
        with self.engine.begin() as db:
            db.execute(job_traces.delete().where(job_traces.c.job_id == job_id))

    def with_traces(self) -> list[Job]:
        """Held jobs whose run is recorded here and not yet in the ledger."""
        ids = sa.select(job_traces.c.job_id).distinct()
        with self.engine.connect() as db:
            return [_job(row) for row in db.execute(sa.select(jobs).where(jobs.c.id.in_(ids)))]

    def move(self, job_id: str, status: JobStatus, **values: Any) -> Job:
        """Change status (and the given fields) if the current status allows it, atomically."""
        allowed = [s.value for s, nexts in TRANSITIONS.items() if status in nexts]
        stamp = "started_at" if status is JobStatus.RUNNING else "finished_at"
        where = jobs.c.status.in_(allowed)
        return self._update(job_id, status, where, {stamp: utc_now(), **values})

    def decide(self, job_id: str, status: JobStatus, **values: Any) -> Job:
        """Record a reviewer's decision on a held job that has not been decided yet.

        A job held at submission may have ended in any way (it could fail on purpose); the
        decision settles what its developer sees: `status` is its ending once approved, or
        rejected.
        """
        where = sa.and_(
            jobs.c.review != "[]", jobs.c.decided_by.is_(None), jobs.c.status.in_(DECIDABLE)
        )
        return self._update(job_id, status, where, {"finished_at": utc_now(), **values})

    def _update(self, job_id: str, status: JobStatus, where: Any, values: dict) -> Job:
        encoded = {k: json.dumps(v) if k in JSON_FIELDS else v for k, v in values.items()}
        with self.engine.begin() as db:
            done = db.execute(
                jobs.update()
                .where(jobs.c.id == job_id, where)
                .values({**encoded, "status": status.value})
            )
        if done.rowcount != 1:
            current = self.get(job_id)
            raise ControlError(f"a {current.status.value} job cannot become {status.value}")
        return self.get(job_id)


JSON_FIELDS = frozenset({"review", "error", "outputs", "disclosure"})


def _job(row: sa.Row) -> Job:
    def loaded(name: str) -> Any:
        value = getattr(row, name)
        return None if value is None else json.loads(value)

    return Job(
        id=row.id,
        developer=row.developer,
        grant_id=row.grant_id,
        status=JobStatus(row.status),
        code=row.code,
        code_sha256=row.code_sha256,
        reviewers=json.loads(row.reviewers),
        review=json.loads(row.review),
        price_plan=row.price_plan,
        error=loaded("error"),
        outputs=loaded("outputs"),
        disclosure=loaded("disclosure"),
        cpu_ms=row.cpu_ms,
        submitted_at=row.submitted_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        decided_by=row.decided_by,
        decision_reason=row.decision_reason,
    )
