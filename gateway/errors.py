"""The one error body, and the mapping from every package's errors onto it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from console.security import CONSOLE
from console.security import HEADERS as CONSOLE_HEADERS
from governance import ControlError
from ledger import LedgerError
from policies import PolicyError
from sandbox.errors import SandboxError
from services import errors as refusals

log = logging.getLogger(__name__)

BUSY_RETRY_AFTER_S = 1
# The control store's database out of reach: nothing was done, and asking again may succeed.
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
STORE_UNREACHABLE = "the control store could not be reached; nothing was released"
HTTP_CODES = {
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "BAD_REQUEST",
    429: "RATE_LIMITED",
}
BODY_INVALID = "the request body is not valid"
# How a message names where a parameter is sent.
PLACES = {"query": "query parameter", "path": "path parameter", "header": "header"}


class ApiError(Exception):
    """An HTTP-only refusal (authentication, upload size), already in client-safe words."""

    def __init__(
        self, status: int, code: str, message: str, violations: list[dict] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.violations = violations or []


def invalid_request(problems: Sequence[Any]) -> tuple[str, list[dict]]:
    """The message and violations for parameters or a body that are not valid: each names the
    parameter, the body field, or the body as a whole (not JSON, or not the media type the
    route reads), never the value sent."""
    messages: dict[str, None] = {}
    violations: dict[tuple[str, str], None] = {}
    for problem in problems:
        place, *path = problem["loc"]
        if place == "body":
            messages[BODY_INVALID] = None
            if problem["type"] == "json_invalid":
                violations["invalid_json", "body"] = None
            elif not path:
                violations["invalid_body", "body"] = None
            else:
                violations["invalid_field", ".".join(map(str, path))] = None
            continue
        name = str(path[0]) if path else place
        messages[f"the {PLACES.get(place, place)} '{name}' is not valid"] = None
        violations["invalid_parameter", name] = None
    listed = [{"rule": rule, "column": column} for rule, column in violations]
    return "; ".join(messages), listed


def store_unreachable(exc: Exception) -> bool:
    """Whether `exc` is the control store's database being out of reach (down, restarting, a
    connection it dropped, no connection free), which passes, rather than a fault of Veil's."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def error_body(code: str, message: str, violations: list[dict] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "violations": violations or []}}


def _respond(status: int, code: str, message: str, violations: list[dict] | None = None):
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, message, violations), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError):
        return _respond(exc.status, exc.code, exc.message, exc.violations)

    @app.exception_handler(SandboxError)
    async def _sandbox(_: Request, exc: SandboxError):
        return _respond(exc.status, exc.code, exc.message, [v.as_dict() for v in exc.violations])

    @app.exception_handler(refusals.ServiceError)
    async def _refused(_: Request, exc: refusals.ServiceError):
        response = _respond(refusals.http_status(exc), exc.code, exc.message, exc.violations)
        if isinstance(exc, refusals.Busy):
            # The caller's own work in flight ends within a query's time: worth a retry soon.
            # A spent budget or quota (Exhausted) does not come back by waiting, so no header.
            response.headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
        return response

    @app.exception_handler(ControlError)
    async def _control(_: Request, exc: ControlError):
        return _respond(refusals.http_status(exc), exc.code, exc.message)

    @app.exception_handler(LedgerError)
    async def _ledger(_: Request, exc: LedgerError):
        if exc.status < 500:
            return _respond(exc.status, exc.code, exc.message)
        log.error("ledger failure: %s", type(exc).__name__)
        return _respond(503, "LEDGER_UNAVAILABLE", "the ledger could not record this request")

    @app.exception_handler(PolicyError)
    async def _policy(_: Request, exc: PolicyError):
        log.error("policy engine failure: %s", type(exc).__name__)
        return _respond(503, "POLICY_UNAVAILABLE", "the policy engine could not decide")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        return _respond(422, "BAD_REQUEST", *invalid_request(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:
            # Raised by the framework alone, for a body it cannot parse (broken multipart): a
            # body that is not valid, like malformed JSON.
            violations = [{"rule": "invalid_body", "column": "body"}]
            return _respond(422, "BAD_REQUEST", BODY_INVALID, violations)
        code = HTTP_CODES.get(exc.status_code, "ERROR")
        message = exc.detail if isinstance(exc.detail, str) else code.lower()
        return _respond(exc.status_code, code, message)

    # Also what the request gate raises, outside the routes: Starlette hands every error that
    # reaches the top to the handler of Exception, and to no other.
    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        if store_unreachable(exc):
            log.error("control store failure: %s", type(exc).__name__)
            response = _respond(503, STORE_UNAVAILABLE, STORE_UNREACHABLE)
        else:
            log.exception("unexpected error")
            response = _respond(500, "INTERNAL", "an internal error occurred; nothing was released")
        if request.url.path.startswith(CONSOLE):
            # Answered outside the console's own middleware: its headers are added here.
            for name, value in CONSOLE_HEADERS.items():
                response.headers[name.decode()] = value.decode()
            response.headers["cache-control"] = "no-store"
        return response
