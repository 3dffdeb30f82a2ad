"""Authentication: a bearer API key becomes a principal (authorisation.py decides the rest)."""

from __future__ import annotations

import hmac
from typing import Annotated

from anyio import to_thread
from fastapi import Depends, Request
from starlette.types import Scope

from gateway.errors import ApiError
from governance import Principal
from services.runtime import Services

MAX_KEY_CHARS = 200
# Where a request keeps the key it authenticated and the principal read for it, so the request
# gate's lookup (made before the body is read) serves the route too: one read per request.
AUTHENTICATED = "veil_authenticated"


# Dependencies that do no I/O are coroutines: FastAPI runs a plain function on a worker thread.
async def services(request: Request) -> Services:
    return request.app.state.services


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_KEY_CHARS:
        raise ApiError(401, "UNAUTHENTICATED", "send an API key as 'Authorization: Bearer <key>'")
    return token


def authenticate(veil: Services, scope: Scope, api_key: str) -> Principal | None:
    """The principal holding `api_key` now, read from the control store (blocking), and kept
    in the request's scope for the rest of this request."""
    with veil.metrics.stage("authentication"):
        found = veil.control.authenticate(api_key)
    scope.setdefault("state", {})[AUTHENTICATED] = (api_key, found)
    return found


async def principal(request: Request) -> Principal:
    api_key = _bearer(request)
    veil: Services = request.app.state.services
    key, found = request.scope.get("state", {}).get(AUTHENTICATED, (None, None))
    if key != api_key:
        found = await to_thread.run_sync(authenticate, veil, request.scope, api_key)
    if found is None or found.status == "revoked":
        raise ApiError(401, "UNAUTHENTICATED", "the API key is not valid")
    # A suspended principal still reaches the policy, which denies it and has that recorded.
    if found.status not in ("active", "suspended"):
        raise ApiError(403, "POLICY_DENIED", "this principal is not active")
    return found


Caller = Annotated[Principal, Depends(principal)]
Veil = Annotated[Services, Depends(services)]


async def scraper(request: Request) -> None:
    """Admit Prometheus: the metrics token, not any principal's key (metrics count everyone)."""
    token = _bearer(request)
    if not hmac.compare_digest(token.encode(), request.app.state.services.metrics_token.encode()):
        raise ApiError(401, "UNAUTHENTICATED", "/metrics takes the metrics token")


Scraper = Depends(scraper)
