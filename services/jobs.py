"""Jobs: submitted, compiled and decided, queued to run (services/job_runs.py), cancelled by
their owners, and released or rejected by reviewers.

A job's `sql()` calls are answered by the query path itself (services/queries.py) under the
job's scope and grant, so each is guarded, noised or thresholded, metered and recorded like a
query.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from governance import Grant, GrantStatus, Principal, utc_now
from governance.job_records import DECIDABLE, RELEASE_REJECTED, Job, JobStatus
from policies import Decision
from sandbox.cards import AssetCard
from sandbox.errors import JobRejected
from sandbox.jobs.gate import compile_job
from services.authorisation import asset_inputs, decide, refuse
from services.errors import Conflict, Invalid, Missing
from services.job_queue import Place
from services.job_runs import POLICY_REVIEW, SCOPE, record_release
from services.job_views import shown
from services.runtime import Services


@dataclass(frozen=True)
class JobRequest:
    code: str
    grant_id: str | None


@dataclass(frozen=True)
class DecidedJob:
    """The grant a job would run under, its assets' cards, and the policy's decision."""

    grant: Grant
    cards: list[AssetCard]
    resource: dict
    decision: Decision


def submit(veil: Services, *, caller: Principal, request: JobRequest) -> Job:
    """Compile, decide and queue; a refusal is recorded before it is raised. A job the queue
    has no room for is refused first (Busy), before anything is compiled or recorded."""
    with veil.jobs.place(caller.id) as place:
        return _submit(veil, caller, request, place)


def _submit(veil: Services, caller: Principal, request: JobRequest, place: Place) -> Job:
    code_sha256 = check_code(veil, caller=caller, code=request.code)
    decided = decide_job(veil, caller=caller, grant_id=request.grant_id)
    grant, cards, decision = decided.grant, decided.cards, decided.decision
    if not decision.allow:
        refuse(veil, caller, SCOPE, decision, decided.resource)
    job = veil.job_records.create(
        caller.id,
        grant.id,
        request.code,
        reviewers=sorted({card.provider for card in cards}),
        review=[POLICY_REVIEW] if decision.obligations.review != "auto" else [],
        price_plan=decision.obligations.price_plan,
    )
    veil.ledger.append(
        {
            "type": "job_submitted",
            "job_id": job.id,
            "principal": caller.id,
            "grant_id": grant.id,
            "assets": grant.assets,
            "code_sha256": code_sha256,
            "decision": {
                "allow": True,
                "reasons": list(decision.reasons),
                "decision_id": decision.decision_id,
            },
            "obligations": {
                "min_distinct_units": decision.obligations.min_distinct_units,
                "max_rows": decision.obligations.max_rows,
                "review": decision.obligations.review,
            },
            "at": utc_now(),
        },  # fmt: skip
        idempotency_key=f"job:{job.id}:submitted",
    )
    veil.metrics.jobs.labels("queued").inc()
    place.enqueue(job.id)
    return job


def check_code(veil: Services, *, caller: Principal, code: str) -> str:
    """Compile under the restricted compiler; a rejection is recorded, then raised. Returns
    the code's SHA-256."""
    code_sha256 = hashlib.sha256(code.encode()).hexdigest()
    try:
        compile_job(code)
    except JobRejected as exc:
        rules = sorted({v.rule for v in exc.violations})
        entry = {"type": "job_submitted", "principal": caller.id, "scope": SCOPE,
                 "code_sha256": code_sha256, "outcome": "rejected", "rules": rules,
                 "at": utc_now()}  # fmt: skip
        # Every refused submission is its own entry (even the same code twice in a second),
        # until its principal is past its rate: then counted into a summary.
        veil.refused(
            caller.id, "rejected", rules, entry=entry, key="job:rejected:" + uuid.uuid4().hex
        )
        raise
    return code_sha256


def decide_job(veil: Services, *, caller: Principal, grant_id: str | None) -> DecidedJob:
    """Decide job:submit under the grant named, or the caller's only job grant."""
    veil.expire_grants()
    grant = _job_grant(veil, caller, grant_id)
    cards = [veil.enclave.store.get(asset).card for asset in grant.assets]
    resource = {"assets": asset_inputs(veil, cards)}
    grants = [g.as_input() for g in veil.control.grants_of(caller.id)]
    policy_request = {"method": "job", "grant_id": grant.id, "purpose": None}
    decision = decide(veil, caller, SCOPE, resource, policy_request, grants)
    return DecidedJob(grant, cards, resource, decision)


def _job_grant(veil: Services, caller: Principal, grant_id: str | None) -> Grant:
    """The grant a job runs under: the one named, or the caller's only active job grant."""
    if grant_id is not None:
        grant = veil.control.grant(grant_id)  # NotFound for an unknown grant
        if grant.developer != caller.id:
            raise Missing("no such grant")
        return grant
    usable = [
        grant
        for grant in veil.control.grants_of(caller.id)
        if grant.status is GrantStatus.ACTIVE and "job" in grant.methods
    ]
    if len(usable) != 1:
        raise Invalid(
            "name the grant_id the job runs under"
            if usable
            else "no active grant allows jobs; request one with the method job",
            code="GRANT_REQUIRED",
        )
    return usable[0]


def decide_release(
    veil: Services, *, reviewer: Principal, job: Job, approve: bool, reason: str
) -> Job:
    """A reviewer's release decision on a held job; recorded before it takes effect.

    A job held at submission is decided however it ended, since it could end on purpose:
    approving shows its developer the real ending, rejecting shows a rejection and nothing more.
    """
    if not (job.held and job.decided_by is None and job.status.value in DECIDABLE):
        raise Conflict(f"a {job.status.value} job has no release to decide")
    decision = "released" if approve else "rejected"
    record_release(veil, job, decision, reviewer.id, [reason], None)
    values: dict = {"decided_by": reviewer.id, "decision_reason": reason}
    status = JobStatus.REJECTED
    if approve:
        status = JobStatus.SUCCEEDED if job.status is JobStatus.REVIEW else job.status
    else:
        values.update(outputs=None, error={"code": RELEASE_REJECTED, "violations": []})
    veil.metrics.jobs.labels(f"review_{decision}").inc()
    return veil.job_records.decide(job.id, status, **values)


def cancel(veil: Services, *, caller: Principal, job: Job) -> Job:
    """Stop a queued or running job at its owner's (or an overseer's) request."""
    if job.held and job.status is not JobStatus.QUEUED and caller.id == job.developer:
        # Whether a cancel still found it running would tell when it really ended.
        raise Conflict("a job held for review cannot be cancelled once started")
    if job.status is JobStatus.QUEUED:
        veil.jobs.cancel(job.id)
        return veil.job_records.move(job.id, JobStatus.CANCELLED,
                                     error={"code": "CANCELLED", "violations": []})  # fmt: skip
    if job.status is JobStatus.RUNNING:
        veil.jobs.cancel(job.id)
        return job
    raise Conflict(f"a {job.status.value} job cannot be cancelled")


def visible_jobs(veil: Services, *, caller: Principal, status: JobStatus | None) -> list[dict]:
    """Developers see their own jobs, providers those on their assets, the others all; each as
    its reader may see it, and a developer's filtered by the status it is shown."""
    mine = caller.id if caller.roles == {"developer"} else None
    overseer = caller.has("operator", "supervisor", "admin")
    stored = status.value if status and (overseer or not caller.has("developer")) else None
    jobs = veil.job_records.listing(developer=mine, status=stored)
    if not overseer:
        jobs = [job for job in jobs if job.developer == caller.id or caller.id in job.reviewers]
    views = [job_view(veil, caller=caller, job=job) for job in jobs]
    return [view for view in views if status is None or view["status"] == status]


def job_view(veil: Services, *, caller: Principal, job: Job) -> dict:
    """The job as `caller` may see it."""
    return shown(job, caller, veil.settings.job_timeout_s)
