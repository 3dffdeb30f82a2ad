"""Jobs: developers submit Python that runs sealed beside the data; reviewers release outputs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Caller, Veil
from gateway.authorisation import Allowed, scoped
from governance.job_records import Job, JobStatus
from sandbox.jobs.gate import MAX_CODE_CHARS
from services.jobs import (
    SCOPE,
    JobRequest,
    cancel,
    decide_release,
    job_view,
    submit,
    visible_jobs,
)

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
        return submit(veil, caller=caller, request=JobRequest(body.code, body.grant_id))


@router.post("", status_code=202)
def create(job: Annotated[Job, Depends(submitted_job)]) -> dict:
    return {"id": job.id, "status": job.status.value}


def job_resource(job_id: Annotated[str, Path(pattern=JOB_ID)], caller: Caller, veil: Veil) -> dict:
    job = veil.job_records.get(job_id)  # 404 for an unknown job
    # The status the caller is shown: a refusal records this, and the caller reads its record.
    status = job_view(veil, caller=caller, job=job)["status"]
    return {"job": {"id": job.id, "developer": job.developer, "reviewers": job.reviewers,
                    "status": status}}  # fmt: skip


@router.get("")
def listing(
    permit: Allowed("job:read"),
    veil: Veil,
    status: Annotated[JobStatus | None, Query()] = None,
) -> dict:
    """Developers see their own jobs, providers those on their assets, the others all."""
    return {"items": visible_jobs(veil, caller=permit.caller, status=status)}


@router.get("/{job_id}")
def read(job_id: str, permit: Allowed("job:read", job_resource), veil: Veil) -> dict:
    return job_view(veil, caller=permit.caller, job=veil.job_records.get(job_id))


@router.post("/{job_id}/cancel")
def stop(job_id: str, permit: Allowed("job:cancel", job_resource), veil: Veil) -> dict:
    cancelled = cancel(veil, caller=permit.caller, job=veil.job_records.get(job_id))
    return job_view(veil, caller=permit.caller, job=cancelled)


@router.post("/{job_id}/review")
def review(
    job_id: str, body: ReleaseBody, permit: Allowed("job:release", job_resource), veil: Veil
) -> dict:
    """A provider of the job's assets, or an operator, releases or rejects held outputs."""
    job = veil.job_records.get(job_id)
    decided = decide_release(
        veil,
        reviewer=permit.caller,
        job=job,
        approve=body.decision == "approve",
        reason=body.reason,
    )
    return job_view(veil, caller=permit.caller, job=decided)
