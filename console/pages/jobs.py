"""Jobs in the console: a developer submits Python and follows it to its released outputs;
the providers of its assets (or an operator) release or reject what is held for review."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from console.refusals import REFUSED, Refusal, explain
from console.render import page, refused
from console.visitors import Poster, Standing, Veil, Viewer, Visitor, in_standing
from governance import GrantStatus
from governance.job_records import Job
from sandbox.jobs.gate import MAX_CODE_CHARS
from services.authorisation import authorise
from services.jobs import JobRequest, decide_release, job_view, submit, visible_jobs

router = APIRouter(prefix="/console/jobs")

EXAMPLE = (
    'answer = sql("SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district")\n'
    'publish("by_district", [["district", "label"], ["visits", "count"]], answer["rows"])\n'
)


@router.get("")
def listing(request: Request, visitor: Viewer, veil: Veil, review: str | None = None) -> Response:
    """The jobs this principal may see; with `review`, those waiting for its decision."""
    try:
        authorise(veil, caller=visitor.principal, scope="job:read", resource={})
        jobs = visible_jobs(veil, caller=visitor.principal, status=None)
    except REFUSED as exc:
        return refused(request, visitor, exc)
    if review:
        every = veil.job_records.listing(developer=None, status=None)
        waiting = {job.id for job in every if _reviews(visitor, job)}
        jobs = [job for job in jobs if job["id"] in waiting]
    return page(request, "jobs.html", visitor, jobs=jobs, review=bool(review))


@router.get("/new")
def submit_form(request: Request, visitor: Standing, veil: Veil) -> Response:
    return _form(request, visitor, veil, {"code": EXAMPLE, "grant_id": ""})


@router.post("/new")
def submitted(
    request: Request,
    visitor: Poster,
    veil: Veil,
    code: Annotated[str, Form(max_length=MAX_CODE_CHARS)] = "",
    grant_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    typed = {"code": code, "grant_id": grant_id}
    if not code.strip():
        refusal = Refusal(422, "BAD_REQUEST", "write the job's code",
                          [{"rule": "invalid_field", "column": "code"}])  # fmt: skip
        return _form(request, visitor, veil, typed, refusal)
    try:
        with veil.submissions.hold(visitor.principal.id):
            job = submit(veil, caller=visitor.principal,
                         request=JobRequest(code, grant_id or None))  # fmt: skip
    except REFUSED as exc:
        return _form(request, visitor, veil, typed, explain(exc))
    return RedirectResponse(f"/console/jobs/{job.id}", status_code=303)


@router.get("/{job_id}")
def detail(job_id: str, request: Request, visitor: Viewer, veil: Veil) -> Response:
    try:
        job = veil.job_records.get(job_id)
        shown = job_view(veil, caller=visitor.principal, job=job)
        authorise(veil, caller=visitor.principal, scope="job:read", resource=_resource(job, shown))
    except REFUSED as exc:
        return refused(request, visitor, exc)
    reviewer = _reviews(visitor, job)
    return page(request, "job.html", visitor, job=shown, reviewer=reviewer)


@router.post("/{job_id}/review")
def review(
    job_id: str,
    request: Request,
    visitor: Poster,
    veil: Veil,
    decision: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    if decision not in ("approve", "reject") or not reason.strip():
        refusal = Refusal(422, "BAD_REQUEST", "choose a decision and give a reason",
                          [{"rule": "invalid_field", "column": "reason"}])  # fmt: skip
        return refused(request, visitor, refusal)
    try:
        job = veil.job_records.get(job_id)
        shown = job_view(veil, caller=visitor.principal, job=job)
        authorise(veil, caller=visitor.principal, scope="job:release",
                  resource=_resource(job, shown))  # fmt: skip
        decide_release(veil, reviewer=visitor.principal, job=job,
                       approve=decision == "approve", reason=reason.strip())  # fmt: skip
    except REFUSED as exc:
        return refused(request, visitor, exc)
    return RedirectResponse(f"/console/jobs/{job_id}", status_code=303)


def _resource(job: Job, shown: dict) -> dict:
    """The job as the policy sees it, with the status its reader is shown (as the API does)."""
    return {"job": {"id": job.id, "developer": job.developer, "reviewers": job.reviewers,
                    "status": shown["status"]}}  # fmt: skip


def _reviews(visitor: Visitor, job: Job) -> bool:
    principal = visitor.principal
    return (
        job.held
        and job.decided_by is None
        and (principal.id in job.reviewers or principal.has("operator"))
    )


def _form(
    request: Request, visitor: Visitor, veil: Veil, typed: dict, refusal: Refusal | None = None
) -> Response:
    in_standing(veil, visitor)
    grants = [
        grant
        for grant in veil.control.grants_of(visitor.principal.id)
        if grant.status is GrantStatus.ACTIVE and "job" in grant.methods
    ]
    status = refusal.status if refusal else 200
    return page(request, "job_new.html", visitor, status, typed=typed, grants=grants,
                refusal=refusal)  # fmt: skip


def _refused(request: Request, visitor: Visitor, exc: Exception) -> Response:
    return refused(request, visitor, exc)
