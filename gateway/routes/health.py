"""Liveness, readiness and the Prometheus endpoint."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from gateway.auth import Veil

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
        return Response('{"status": "unavailable"}', 503, media_type="application/json")
    return Response('{"status": "ready"}', 200, media_type="application/json")


@router.get("/metrics")
def metrics(veil: Veil) -> Response:
    return Response(veil.metrics.render(), media_type="text/plain; version=0.0.4")
