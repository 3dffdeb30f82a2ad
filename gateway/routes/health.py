"""Liveness, readiness and the Prometheus endpoint."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from gateway.auth import Scraper, Veil
from services.runtime import Services

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(veil: Veil) -> Response:
    try:
        veil.ledger.checkpoint()
        veil.control.has_principals()
        if not veil.policy.ready():
            raise RuntimeError("the policy engine cannot decide")
    except Exception:  # noqa: BLE001 - readiness only says yes or no
        return JSONResponse({"status": "unavailable"}, 503)
    return JSONResponse({"status": "ready", "jobs": _job_seal(veil)})


def _job_seal(veil: Services) -> dict:
    """Which OS layers seal a job process here; jobs run only when they suffice."""
    try:
        report = veil.jobs.runner.seal_report()
    except Exception:  # noqa: BLE001 - the runner could not start: no job can run
        return {"ready": False, "seal": {}}
    return {"ready": report.sufficient, "seal": report.layers}


@router.get("/metrics", dependencies=[Scraper])
def metrics(veil: Veil) -> Response:
    return Response(veil.metrics.render(), media_type="text/plain; version=0.0.4")
