"""The FastAPI application factory and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI

from console.app import install as install_console
from gateway import docs, errors, schemas
from gateway.limits import RequestGate
from gateway.metrics import MetricsMiddleware
from gateway.routes import (
    assets,
    budgets,
    disclosure,
    emergency,
    grants,
    health,
    jobs,
    ledger,
    policies,
    price_caps,
    principals,
    products,
    queries,
    registrations,
    reports,
    settlements,
    twins,
)
from services.job_runs import start_jobs
from services.metrics import Metrics
from services.runtime import Services, open_services
from services.settings import Settings

# Threads for every request that does not queue: anyio's own default for the whole pool.
UNQUEUED_THREADS = 40


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; its services open at start-up and close at shutdown."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = open_services(settings, metrics)
        _size_threadpool(app.state.services)
        app.state.services.start_background()
        start_jobs(app.state.services)
        try:
            yield
        finally:
            app.state.services.close()

    app = FastAPI(
        title="Veil",
        version="0.1.0",
        summary="Raw data never leaves the domain; data is usable but invisible.",
        lifespan=lifespan,
        # /docs is gateway/docs.py's: Swagger UI from Veil's own copy, not a CDN.
        docs_url=None,
        redoc_url=None,
        # Once for every route: an unexpected failure, which releases nothing.
        responses=schemas.errors(500),
        generate_unique_id_function=docs.operation_id,
        # Veil's metrics are its own (Prometheus); FastAPI's OpenTelemetry hooks would only
        # look for providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # A multipart upload carries the card and framing besides the file itself.
    app.add_middleware(RequestGate, max_upload_bytes=settings.max_upload_bytes + 1024 * 1024)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    errors.install(app)
    # Routes are matched in this order, one by one: the busiest route first.
    modules = [queries, health, principals, assets, grants, jobs, emergency]
    modules += [ledger, settlements, budgets, disclosure, policies, twins, price_caps]
    for module in modules:
        app.include_router(module.router)
    app.include_router(assets.catalog_router)
    app.include_router(products.router)
    app.include_router(registrations.router)
    app.include_router(registrations.certificates)
    app.include_router(reports.router)
    install_console(app)
    docs.install(app)
    return app


def _size_threadpool(veil: Services) -> None:
    """Sync routes run on anyio's threads, and a request queued for a slot holds its thread
    while it waits: the pool takes every thread the queues can hold on top of the rest, so
    full queues never starve health checks, the catalogue or the console."""
    queues = (veil.queries, veil.submissions, veil.twin_downloads)
    limiter = to_thread.current_default_thread_limiter()
    limiter.total_tokens = UNQUEUED_THREADS + sum(queue.threads_at_most for queue in queues)
