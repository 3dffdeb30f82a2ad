"""The FastAPI application factory and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
    principals,
    queries,
    settlements,
    twins,
)
from services.job_runs import write_overdue_runs
from services.metrics import Metrics
from services.runtime import open_services
from services.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; its services open at start-up and close at shutdown."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = open_services(settings, metrics)
        app.state.services.start_background()
        write_overdue_runs(app.state.services)
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
    )
    # A multipart upload carries the card and framing besides the file itself.
    app.add_middleware(RequestGate, max_upload_bytes=settings.max_upload_bytes + 1024 * 1024)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    errors.install(app)
    modules = [health, principals, assets, grants, queries, jobs, emergency]
    modules += [ledger, settlements, budgets, disclosure, policies, twins]
    for module in modules:
        app.include_router(module.router)
    app.include_router(assets.catalog_router)
    install_console(app)
    docs.install(app)
    return app
