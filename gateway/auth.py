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


def _admitted(found: Principal | None) -> Principal:
    if found is None or found.status == "revoked":
        raise ApiError(401, "UNAUTHENTICATED", "the API key is not valid")
    # A suspended principal still reaches the policy, which denies it and has that recorded.
    if found.status not in ("active", "suspended"):
        raise ApiError(403, "POLICY_DENIED", "this principal is not active")
    return found


def _authenticated(request: Request, api_key: str) -> tuple[bool, Principal | None]:
    """Whether the request gate has read `api_key`'s principal for this request, and which."""
    key, found = request.scope.get("state", {}).get(AUTHENTICATED, (None, None))
    return key == api_key, found


async def principal(request: Request) -> Principal:
    api_key = _bearer(request)
    read, found = _authenticated(request, api_key)
    if not read:
        veil: Services = request.app.state.services
        found = await to_thread.run_sync(authenticate, veil, request.scope, api_key)
    return _admitted(found)


class Bearer:
    """A request's API key, authenticated later on the thread that does the route's work (one
    hand-off from the event loop instead of two): `caller(veil)` there."""

    def __init__(self, request: Request) -> None:
        self.api_key = _bearer(request)
        self._scope = request.scope
        self._read, self._found = _authenticated(request, self.api_key)

    def caller(self, veil: Services) -> Principal:
        """The principal holding the key now (blocking, unless the gate has just read it)."""
        found = self._found if self._read else authenticate(veil, self._scope, self.api_key)
        return _admitted(found)


async def bearer(request: Request) -> Bearer:
    return Bearer(request)


Caller = Annotated[Principal, Depends(principal)]
# For a route that authenticates on its own worker thread, in the same hand-off as its work.
LateCaller = Annotated[Bearer, Depends(bearer)]
Veil = Annotated[Services, Depends(services)]


async def scraper(request: Request) -> None:
    """Admit Prometheus: the metrics token, not any principal's key (metrics count everyone)."""
    token = _bearer(request)
    if not hmac.compare_digest(token.encode(), request.app.state.services.metrics_token.encode()):
        raise ApiError(401, "UNAUTHENTICATED", "/metrics takes the metrics token")


Scraper = Depends(scraper)
