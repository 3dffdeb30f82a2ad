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
    # The queue: waiting jobs start oldest first, whichever process claims them. This and
    # lease_until are Unix times by the database server's clock, never a process's own.
    sa.Column("queued_at", sa.Float, nullable=False, server_default="0"),
    # The process whose slot the job holds, and until when unless it renews: a developer's
    # jobs in flight are those with a live lease, in every process.
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    # A cancel asked of a job running in another process, which its lease renewal picks up.
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("jobs_waiting", "status", "queued_at"),
    sa.Index("jobs_leased", "lease_until"),
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
# A running job whose process stopped renewing its lease: it failed with this code.
JOB_LOST = "JOB_LOST"
# A job being submitted: queued, but no process may claim it until its submission is recorded.
SUBMITTING = "submitting"
# A submission unfinished this long after its job was created was lost with its process.
SUBMISSION_LOST_S = 120.0
# The jobs a claim looks through for one whose developer has room, oldest first.
CLAIM_WINDOW = 64
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
                    queued_at=_db_now(db.dialect),
                    lease_owner=SUBMITTING,
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

    def waiting(self, developer: str) -> tuple[int, int]:
        """How many jobs wait in all processes, and how many of them are `developer`'s."""
        query = sa.select(
            sa.func.count(),
            sa.func.count().filter(jobs.c.developer == developer),
        ).where(jobs.c.status == JobStatus.QUEUED.value)
        with self.engine.connect() as db:
            total, mine = db.execute(query).one()
        return total, mine

    def claim(self, owner: str, *, per_principal: int, lease_s: float) -> Job | None:
        """Start the oldest waiting job whose developer has fewer than `per_principal` jobs
        leased in any process, leased to `owner` for `lease_s` seconds; None if none may start.

        Claims are serialised (SQLite's write lock; on PostgreSQL a transaction lock, and the
        rows taken with FOR UPDATE SKIP LOCKED), so the developers' counts are exact. Leases
        are judged and taken by the database's clock, as is the start's stamp that a held
        job's span counts from."""
        with self.engine.begin() as db:
            now = _db_now(db.dialect)
            postgres = db.dialect.name == "postgresql"
            if postgres:
                db.execute(sa.select(sa.func.pg_advisory_xact_lock(_CLAIM_LOCK)))
            else:
                db.exec_driver_sql("BEGIN IMMEDIATE")
            waiting = (
                sa.select(jobs.c.id, jobs.c.developer)
                .where(jobs.c.status == JobStatus.QUEUED.value, jobs.c.lease_owner.is_(None))
                .order_by(jobs.c.queued_at, jobs.c.id)
                .limit(CLAIM_WINDOW)
            )
            if postgres:
                waiting = waiting.with_for_update(skip_locked=True)
            candidates = db.execute(waiting).all()
            if not candidates:
                return None
            leased = dict(
                db.execute(
                    sa.select(jobs.c.developer, sa.func.count())
                    .where(jobs.c.lease_until > now)
                    .group_by(jobs.c.developer)
                ).all()
            )
            chosen = next(
                (row.id for row in candidates if leased.get(row.developer, 0) < per_principal),
                None,
            )
            if chosen is None:
                return None
            db.execute(
                jobs.update()
                .where(jobs.c.id == chosen, jobs.c.status == JobStatus.QUEUED.value)
                .values(
                    status=JobStatus.RUNNING.value,
                    started_at=_db_stamp(db.dialect),
                    lease_owner=owner,
                    lease_until=now + lease_s,
                )  # fmt: skip
            )
        return self.get(chosen)

    def open(self, job_id: str) -> None:
        """Let any process claim a job whose submission is recorded."""
        with self.engine.begin() as db:
            db.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.lease_owner == SUBMITTING)
                .values(lease_owner=None)
            )

    def renew(self, owner: str, job_ids: set[str], lease_s: float) -> set[str]:
        """Extend `owner`'s leases on `job_ids` to `lease_s` from now by the database's clock;
        returns those to stop: asked to cancel, or no longer leased to `owner` (its lease ran
        out and another process failed the job)."""
        if not job_ids:
            return set()
        mine = sa.and_(jobs.c.id.in_(sorted(job_ids)), jobs.c.lease_owner == owner)
        with self.engine.begin() as db:
            until = _db_now(db.dialect) + lease_s
            db.execute(jobs.update().where(mine).values(lease_until=until))
            kept = db.execute(sa.select(jobs.c.id, jobs.c.cancel_requested).where(mine)).all()
        asked = {row.id for row in kept if row.cancel_requested}
        return (job_ids - {row.id for row in kept}) | asked

    def hold(self, job_id: str, owner: str, until: float) -> float:
        """Keep `owner`'s lease on an ended job until `until` (Unix time by the database's
        clock, as its start is stamped), renewed or not: its developer's share stays taken that
        long even if this process stops. Returns the seconds left until then, by that clock."""
        with self.engine.begin() as db:
            db.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
                .values(lease_until=until)
            )
            now = db.execute(sa.select(_db_now(db.dialect))).scalar_one()
        return until - now

    def clock(self) -> float:
        """The database's time now (Unix seconds): the clock every lease goes by."""
        with self.engine.connect() as db:
            return db.execute(sa.select(_db_now(db.dialect))).scalar_one()

    def release(self, job_id: str, owner: str) -> None:
        """End `owner`'s lease on a job: its slot is free."""
        with self.engine.begin() as db:
            db.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def ask_cancel(self, job_id: str) -> None:
        """Ask whichever process runs the job to stop it."""
        with self.engine.begin() as db:
            db.execute(jobs.update().where(jobs.c.id == job_id).values(cancel_requested=True))

    def lose_expired(self, held_span_s: float) -> list[Job]:
        """Fail with JOB_LOST every running job whose lease ran out (its process stopped), and
        every job whose submission its process never finished.

        A job held for review keeps its developer's share until `held_span_s` after its start,
        as it would have had it run to every limit: when a share frees says nothing.

        Expiry is judged by the database's clock, in the statement that ends the job: a process
        whose own clock is ahead fails no live job, one whose clock is behind keeps none."""
        now = _db_now(self.engine.dialect)
        running = sa.and_(jobs.c.status == JobStatus.RUNNING.value, jobs.c.lease_until <= now)
        submitting = sa.and_(
            jobs.c.status == JobStatus.QUEUED.value,
            jobs.c.lease_owner == SUBMITTING,
            jobs.c.queued_at <= now - SUBMISSION_LOST_S,
        )
        expired = sa.or_(running, submitting)
        lost = []
        with self.engine.begin() as db:
            for row in db.execute(sa.select(jobs).where(expired)).all():
                job = _job(row)
                until = None
                if job.held and job.started is not None:
                    until = job.started.timestamp() + held_span_s
                done = db.execute(
                    jobs.update()
                    .where(jobs.c.id == job.id, expired)
                    .values(status=JobStatus.FAILED.value, finished_at=_db_stamp(db.dialect),
                            error=json.dumps({"code": JOB_LOST, "violations": []}),
                            lease_until=until, lease_owner=None if until is None else "lost")
                )  # fmt: skip
                if done.rowcount == 1:
                    lost.append(job.id)
        return [self.get(job_id) for job_id in lost]

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
# The PostgreSQL transaction lock that serialises claims (any fixed number, Veil's alone).
_CLAIM_LOCK = 0x7E11_0B5
# The Julian day of 1970-01-01T00:00:00Z, SQLite's way to Unix time.
_UNIX_EPOCH_JULIAN_DAY = 2440587.5


def _db_now(dialect: sa.Dialect) -> sa.ColumnElement[float]:
    """The database server's time (Unix seconds) as the statement it is part of runs: one
    clock for every process, whichever host it runs on and however its own clock is set."""
    if dialect.name == "postgresql":
        # The statement's start: now() is its transaction's, which may have waited on a lock.
        return sa.cast(sa.extract("epoch", sa.func.statement_timestamp()), sa.Float)
    if dialect.name == "sqlite":
        # 'now' is one value throughout a statement; to the millisecond.
        days = sa.func.julianday(sa.literal_column("'now'")) - _UNIX_EPOCH_JULIAN_DAY
        return sa.cast(days * 86400.0, sa.Float)
    raise ControlError(f"no database clock for {dialect.name}")


def _db_stamp(dialect: sa.Dialect) -> sa.ColumnElement[str]:
    """The database server's time as utc_now() stamps, from the same reading as _db_now."""
    if dialect.name == "postgresql":
        utc = sa.func.timezone("UTC", sa.func.statement_timestamp())
        return sa.func.to_char(utc, sa.literal_column('\'YYYY-MM-DD"T"HH24:MI:SS"Z"\''))
    if dialect.name == "sqlite":
        return sa.func.strftime(sa.literal_column(f"'{STAMP}'"), sa.literal_column("'now'"))
    raise ControlError(f"no database clock for {dialect.name}")


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
