"""Refusals the services raise: client-safe words, a stable code, and the rules that apply.

Each kind names what went wrong, not a transport; the gateway maps kinds to HTTP statuses."""

from __future__ import annotations

from governance import ControlError, NotFound


class ServiceError(Exception):
    """An operation refused; `code` is stable, `violations` name the rules (and columns)."""

    code = "CONFLICT"

    def __init__(
        self, message: str, violations: list[dict] | None = None, *, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.violations = violations or []
        if code is not None:
            self.code = code


class Denied(ServiceError):
    """The policy, or the caller's standing, does not allow it."""

    code = "POLICY_DENIED"


class Exhausted(ServiceError):
    """A quota or privacy budget has no room left for it."""

    code = "BUDGET_EXHAUSTED"


class Busy(ServiceError):
    """Too much of the caller's work is in flight; it may ask again later."""

    code = "RATE_LIMITED"


class Conflict(ServiceError):
    """The records' present state does not allow it."""

    code = "CONFLICT"


class Invalid(ServiceError):
    """The request breaks a stated rule."""

    code = "BAD_REQUEST"


class Missing(ServiceError):
    """What it names does not exist (or is not the caller's to see)."""

    code = "NOT_FOUND"


# The status each kind takes in an interface that speaks HTTP (the API, the console), most
# specific first; the services themselves never use it.
HTTP_STATUS: dict[type[Exception], int] = {
    Denied: 403,
    Missing: 404,
    Conflict: 409,
    Invalid: 422,
    Exhausted: 429,
    Busy: 429,
    ServiceError: 409,
    NotFound: 404,
    ControlError: 409,
}


def http_status(exc: Exception) -> int:
    """The status of a refusal from the services or the governance domain."""
    return next(status for kind, status in HTTP_STATUS.items() if isinstance(exc, kind))
