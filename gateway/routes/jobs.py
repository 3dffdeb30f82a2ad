"""Jobs: developers submit Python that runs sealed beside the data; reviewers release outputs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Caller, Veil
from gateway.authorisation import Allowed, scoped
from gateway.errors import ApiError
from governance import Principal
from governance.job_records import Job, JobStatus
from sandbox.jobs.gate import MAX_CODE_CHARS
from services.job_views import shown
from services.jobs import SCOPE, JobRequest, cancel, decide_release, submit
from services.runtime import Services

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

JOB_ID = r"^j_[0-9a-f]{32}$"


class JobBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=MAX_CODE_CHARS)]
    grant_id: Annotated[str | None, Field(pattern=r"^g_[0-9a-f]{16}$")] = None


class ReleaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reason: Annotated[str, Field(min_length=1, max_length=500)]


@scoped(SCOPE)
def submitted_job(body: JobBody, caller: Caller, veil: Veil) -> Job:
    """Compiled and decided in `submit`, which records a refusal before raising it; one at a
    time per principal, since compiling costs the gateway up to a second of CPU."""
    with veil.submissions.hold(caller.id):
        return submit(veil, caller, JobRequest(body.code, body.grant_id))


@router.post("", status_code=202)
def create(job: Annotated[Job, Depends(submitted_job)]) -> dict:
    return {"id": job.id, "status": job.status.value}


def job_resource(job_id: Annotated[str, Path(pattern=JOB_ID)], caller: Caller, veil: Veil) -> dict:
    job = veil.job_records.get(job_id)  # 404 for an unknown job
    # The status the caller is shown: a refusal records this, and the caller reads its record.
    status = _shown(job, caller, veil)["status"]
    return {"job": {"id": job.id, "developer": job.developer, "reviewers": job.reviewers,
                    "status": status}}  # fmt: skip


@router.get("")
def listing(
    permit: Allowed("job:read"),
    veil: Veil,
    status: Annotated[JobStatus | None, Query()] = None,
) -> dict:
    """Developers see their own jobs, providers those on their assets, the others all."""
    caller = permit.caller
    mine = caller.id if caller.roles == {"developer"} else None
    overseer = caller.has("operator", "supervisor", "admin")
    # A developer's own jobs are filtered by the status it is shown, never the real one.
    stored = status.value if status and (overseer or not caller.has("developer")) else None
    jobs = veil.job_records.listing(developer=mine, status=stored)
    if not overseer:
        jobs = [job for job in jobs if job.developer == caller.id or caller.id in job.reviewers]
    views = [_shown(job, caller, veil) for job in jobs]
    return {"items": [view for view in views if status is None or view["status"] == status]}


@router.get("/{job_id}")
def read(job_id: str, permit: Allowed("job:read", job_resource), veil: Veil) -> dict:
    return _shown(veil.job_records.get(job_id), permit.caller, veil)


@router.post("/{job_id}/cancel")
def stop(job_id: str, permit: Allowed("job:cancel", job_resource), veil: Veil) -> dict:
    job = veil.job_records.get(job_id)
    if job.held and job.status is not JobStatus.QUEUED and permit.caller.id == job.developer:
        # Whether a cancel still found it running would tell when it really ended.
        raise ApiError(409, "CONFLICT", "a job held for review cannot be cancelled once started")
    return _shown(cancel(veil, job), permit.caller, veil)


@router.post("/{job_id}/review")
def review(
    job_id: str, body: ReleaseBody, permit: Allowed("job:release", job_resource), veil: Veil
) -> dict:
    """A provider of the job's assets, or an operator, releases or rejects held outputs."""
    job = veil.job_records.get(job_id)
    decided = decide_release(veil, permit.caller, job, body.decision == "approve", body.reason)
    return _shown(decided, permit.caller, veil)


def _shown(job: Job, caller: Principal, veil: Services) -> dict:
    return shown(job, caller, veil.settings.job_timeout_s)
