"""Prometheus metrics: request counts and latencies by route, and query outcomes."""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "veil_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "veil_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route", "method"],
            registry=self.registry,
        )
        self.queries = Counter(
            "veil_queries",
            "Queries by outcome (released, denied, rejected, failed)",
            ["outcome"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "veil_policy_decisions",
            "Policy decisions by scope and result (allow, deny)",
            ["scope", "result"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "veil_jobs",
            "Job status changes (queued, succeeded, review, failed, timeout, cancelled, ...)",
            ["status"],
            registry=self.registry,
        )
        self.suppressed_rows = Counter(
            "veil_suppressed_rows",
            "Result rows withheld by the disclosure gate",
            registry=self.registry,
        )

    def render(self) -> bytes:
        """This process's counts, or every gateway process's summed when several serve (the
        client library keeps them in files under PROMETHEUS_MULTIPROC_DIR)."""
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)


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
        finally:
            method = scope["method"]
            route = _route_template(scope)
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - started)
            self.metrics.requests.labels(route, method, str(status["code"])).inc()


def _route_template(scope: Scope) -> str:
    """The matched route's path template; the router records it in the shared scope."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
