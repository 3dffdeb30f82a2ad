"""Request metrics: every request counted and timed under its route template."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import store_unreachable
from services.metrics import Metrics


class MetricsMiddleware:
    """Counts every request under its route template, so ids never become label values."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def recording_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, recording_send)
        except Exception as exc:
            # Answered above this middleware (errors.py's handler of Exception): the same
            # status it will send, so a database out of reach counts as 503, not 500.
            if store_unreachable(exc):
                status["code"] = 503
            raise
        finally:
            method = scope["method"]
            route = _route_template(scope)
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - started)
            self.metrics.requests.labels(route, method, str(status["code"])).inc()


def _route_template(scope: Scope) -> str:
    """The matched route's path template; the router records it in the shared scope."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
