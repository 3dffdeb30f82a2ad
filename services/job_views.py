"""What each reader sees of a job: reviewers all of it, its developer only what is released.

Until a job has ended and its outputs may be released, its developer sees its status and
nothing else: sizes, names, counts, CPU time and error details are chosen by what the job read.
A job held for review looks the same to its developer however it ended (it could end on
purpose), and turns from running to review when its wall-clock limit is over, not when it
really ended, so the moment says nothing either.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from governance import Principal
from governance.job_records import Job, JobStatus

# What a developer may always see: what it sent, and the job's place in the queue.
ALWAYS_SHOWN = ("id", "status", "developer", "grant_id", "code_sha256", "submitted_at")
UNRELEASED = frozenset({JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.REVIEW})


def shown(job: Job, caller: Principal, wall_s: float) -> dict:
    """The job as `caller` may see it; `wall_s` is the job's wall-clock limit."""
    if caller.id != job.developer:
        if job.status is JobStatus.REVIEW:
            reviewer = caller.id in job.reviewers or caller.has("operator")
            return job.as_dict(with_outputs=reviewer)
        return job.as_dict(with_outputs=job.status is JobStatus.SUCCEEDED)
    status = developer_status(job, wall_s, datetime.now(UTC))
    if job.held or job.status in UNRELEASED:
        view = dict.fromkeys(job.as_dict(with_outputs=False))
        view.update({name: getattr(job, name) for name in ALWAYS_SHOWN}, status=status)
        if status in ("cancelled", "rejected"):  # a stop or a reviewer's no: nothing of the run
            view.update(error=job.error, decided_by=job.decided_by)
        return view
    view = job.as_dict(with_outputs=job.status is JobStatus.SUCCEEDED)
    if job.error is not None:
        # Rules only: a name in a violation may have been picked by a value the job read.
        violations = job.error.get("violations") or []
        view["error"] = dict(job.error, violations=[{"rule": v["rule"]} for v in violations])
    return view


def developer_status(job: Job, wall_s: float, now: datetime) -> str:
    """The status its developer sees: a held job is running, then in review, until decided.

    A held job stopped after it started looks like any other ending too: its developer can
    time a stop (a grant's term runs out when it said), and whether the stop still found the
    job running would say when it ended.
    """
    unstarted = job.started is None and job.status is JobStatus.CANCELLED
    if not job.held or job.status is JobStatus.QUEUED or unstarted:
        return job.status.value
    if job.decided_by is not None:
        return JobStatus.REJECTED.value  # held after a decision only when rejected
    if job.started is None:
        return JobStatus.REVIEW.value
    if now < job.started + timedelta(seconds=wall_s):
        return JobStatus.RUNNING.value
    return JobStatus.REVIEW.value
