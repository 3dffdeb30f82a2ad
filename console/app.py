"""The console's place in the app: its pages, its static files, and what guards them."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from console.pages import (
    account,
    catalogue,
    disclosure,
    grants,
    jobs,
    money,
    oversight,
    price_caps,
    principals,
    products,
    registration,
    registrations,
    reports,
    revision,
    usage,
    watch,
    workbench,
)
from console.refusals import Refusal
from console.render import refused as refused_page
from console.security import ConsoleHeaders
from console.visitors import CsrfRefused, SignInRequired, StandingRefused

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Serve the console under /console, its vendored assets under /console/static."""
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    # Registration before the catalogue: /console/assets/new is not an asset id.
    pages = [account, registration, revision, catalogue, grants, workbench, jobs, oversight]
    for module in [*pages, principals, usage, money, watch, disclosure, price_caps]:
        app.include_router(module.router, include_in_schema=False)
    app.include_router(products.router, include_in_schema=False)
    app.include_router(registrations.router, include_in_schema=False)
    app.include_router(reports.router, include_in_schema=False)
    app.add_middleware(ConsoleHeaders)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: SignInRequired) -> Response:
        return RedirectResponse("/console/sign-in", status_code=303)

    @app.exception_handler(StandingRefused)
    async def _standing(request: Request, stop: StandingRefused) -> Response:
        return refused_page(request, stop.visitor, stop.cause)

    @app.exception_handler(CsrfRefused)
    async def _forged(request: Request, _: CsrfRefused) -> Response:
        refusal = Refusal(403, "CSRF_REFUSED", "the form did not come from this session")
        return refused_page(request, None, refusal)
