"""Liveness, readiness and the Prometheus endpoint."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from gateway.auth import Scraper, Veil
from gateway.schemas import errors, example
from services.runtime import Services

router = APIRouter(tags=["operations"])

METRICS_TOKEN = example("UNAUTHENTICATED", "/metrics takes the metrics token")


class Health(BaseModel):
    status: Literal["ok"]


class JobSeal(BaseModel):
    """Whether jobs can run here, and which OS layers seal a job process."""

    ready: bool
    seal: dict[str, bool]


class Ready(BaseModel):
    status: Literal["ready"]
    jobs: JobSeal


class Unready(BaseModel):
    status: Literal["unavailable"]


@router.get("/healthz")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Ready,
    responses={503: {"model": Unready, "description": "The ledger, store or policy cannot serve"}},
)
def readyz(veil: Veil) -> Ready | JSONResponse:
    try:
        veil.ledger.checkpoint()
        veil.control.has_principals()
        if not veil.policy.ready():
            raise RuntimeError("the policy engine cannot decide")
    except Exception:  # noqa: BLE001 - readiness only says yes or no
        return JSONResponse({"status": "unavailable"}, 503)
    return Ready(status="ready", jobs=_job_seal(veil))


def _job_seal(veil: Services) -> JobSeal:
    """Which OS layers seal a job process here; jobs run only when they suffice."""
    try:
        report = veil.jobs.runner.seal_report()
    except Exception:  # noqa: BLE001 - the runner could not start: no job can run
        return JobSeal(ready=False, seal={})
    return JobSeal(ready=report.sufficient, seal=report.layers)


@router.get(
    "/metrics",
    dependencies=[Scraper],
    # Response, not PlainTextResponse: the errors stay application/json in the document.
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **errors(401, examples={401: METRICS_TOKEN}),
    },
)
def metrics(veil: Veil) -> Response:
    return Response(veil.metrics.render(), media_type="text/plain; version=0.0.4")
