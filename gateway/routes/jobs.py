"""Jobs: developers submit Python that runs sealed beside the data; reviewers release outputs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Caller, Veil
from gateway.authorisation import Allowed, scoped
from gateway.routes.dry_run_models import DryRun
from gateway.routes.job_models import JobAccepted, JobList, JobView
from gateway.schemas import AUTHORISED, WITH_BODY, errors, example
from governance.job_records import Job, JobStatus
from sandbox.jobs.gate import MAX_CODE_CHARS
from services.dry_run import dry_run_job
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
UNKNOWN = {404: example("NOT_FOUND", "no such job")}


class JobBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=MAX_CODE_CHARS)]
    grant_id: Annotated[str | None, Field(pattern=r"^g_[0-9a-f]{16}$")] = None
    dry_run: bool = Field(False, description="Compile, decide and price without queueing: 200")


class ReleaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reason: Annotated[str, Field(min_length=1, max_length=500)]


@scoped(SCOPE)
def submitted_job(body: JobBody, caller: Caller, veil: Veil) -> Job | DryRun:
    """Compiled and decided in `submit`, which records a refusal before raising it; one at a
    time per principal, since compiling costs the gateway up to a second of CPU. A dry run
    is compiled and decided alike, and never queued."""
    request = JobRequest(body.code, body.grant_id)
    with veil.submissions.hold(caller.id):
        if body.dry_run:
            return DryRun.model_validate(dry_run_job(veil, caller=caller, request=request))
        return submit(veil, caller=caller, request=request)


@router.post(
    "",
    status_code=202,
    responses={
        200: {"model": DryRun, "description": "A dry run: what a submission would meet"},
        **errors(
            *AUTHORISED,
            *WITH_BODY,
            404,
            429,
            examples={
                404: example("NOT_FOUND", "no such grant"),
                422: example("JOB_REJECTED", "the job is not allowed", ("forbidden_import", None)),
                429: example(
                    "RATE_LIMITED",
                    "at most 16 jobs of one principal may wait at once; try again once one has "
                    "started",
                ),
            },
        ),
    },
)
def create(
    job: Annotated[Job | DryRun, Depends(submitted_job)], response: Response
) -> JobAccepted | DryRun:
    if isinstance(job, DryRun):
        response.status_code = 200
        return job
    return JobAccepted(id=job.id, status=job.status)


def job_resource(job_id: Annotated[str, Path(pattern=JOB_ID)], caller: Caller, veil: Veil) -> dict:
    job = veil.job_records.get(job_id)  # 404 for an unknown job
    # The status the caller is shown: a refusal records this, and the caller reads its record.
    status = job_view(veil, caller=caller, job=job)["status"]
    return {"job": {"id": job.id, "developer": job.developer, "reviewers": job.reviewers,
                    "status": status}}  # fmt: skip


# Job routes leave unset fields out: a developer's job errors name rules only.
@router.get("", responses=errors(*AUTHORISED, 422), response_model_exclude_unset=True)
def listing(
    permit: Allowed("job:read"),
    veil: Veil,
    status: Annotated[JobStatus | None, Query()] = None,
) -> JobList:
    """Developers see their own jobs, providers those on their assets, the others all."""
    return JobList.model_validate(
        {"items": visible_jobs(veil, caller=permit.caller, status=status)}
    )


@router.get(
    "/{job_id}",
    responses=errors(*AUTHORISED, 404, 422, examples=UNKNOWN),
    response_model_exclude_unset=True,
)
def read(job_id: str, permit: Allowed("job:read", job_resource), veil: Veil) -> JobView:
    return JobView.model_validate(
        job_view(veil, caller=permit.caller, job=veil.job_records.get(job_id))
    )


@router.post(
    "/{job_id}/cancel",
    responses=errors(
        *AUTHORISED,
        404,
        409,
        422,
        examples={**UNKNOWN, 409: example("CONFLICT", "a succeeded job cannot be cancelled")},
    ),
    response_model_exclude_unset=True,
)
def stop(job_id: str, permit: Allowed("job:cancel", job_resource), veil: Veil) -> JobView:
    cancelled = cancel(veil, caller=permit.caller, job=veil.job_records.get(job_id))
    return JobView.model_validate(job_view(veil, caller=permit.caller, job=cancelled))


@router.post(
    "/{job_id}/review",
    responses=errors(
        *AUTHORISED,
        *WITH_BODY,
        404,
        409,
        examples={**UNKNOWN, 409: example("CONFLICT", "a running job has no release to decide")},
    ),
    response_model_exclude_unset=True,
)
def review(
    job_id: str, body: ReleaseBody, permit: Allowed("job:release", job_resource), veil: Veil
) -> JobView:
    """A provider of the job's assets, or an operator, releases or rejects held outputs."""
    job = veil.job_records.get(job_id)
    decided = decide_release(
        veil,
        reviewer=permit.caller,
        job=job,
        approve=body.decision == "approve",
        reason=body.reason,
    )
    return JobView.model_validate(job_view(veil, caller=permit.caller, job=decided))
