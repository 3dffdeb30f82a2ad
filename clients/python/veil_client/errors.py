"""Veil's error body as exceptions: one class per kind of refusal, keyed by code and status."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class Violation(BaseModel):
    """One broken rule, naming the column where there is one (never a data value)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    rule: str
    column: str | None = None


class ErrorBody(BaseModel):
    """`{"error": {...}}`, the body of every refusal."""

    model_config = ConfigDict(extra="allow", frozen=True)

    code: str
    message: str
    violations: list[Violation] = []


class VeilError(Exception):
    """A request Veil refused or could not answer; `status` is 0 when no answer came."""

    def __init__(
        self, status: int, code: str, message: str, violations: list[Violation] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.violations = violations or []

    def body(self) -> dict:
        """The error as the API writes it."""
        return ErrorBody(
            code=self.code, message=self.message, violations=self.violations
        ).model_dump(mode="json", exclude_none=True)


class Unauthenticated(VeilError):
    """401: no API key, or one Veil does not know."""


class Denied(VeilError):
    """403: the policy refused the request."""


class NotFound(VeilError):
    """404: no such asset, grant, job or principal (or the caller may not know of it)."""


class Destroyed(NotFound):
    """410: the asset was crypto-shredded."""


class TimedOut(VeilError):
    """408: the query ran past its time limit (it is charged)."""


class Conflict(VeilError):
    """409: the state forbids it now, or the request was cancelled by a stop."""


class Rejected(VeilError):
    """400, 413 or 422: the request or its SQL, card, file or job breaks a rule."""


class RateLimited(VeilError):
    """429: too many requests now."""


class BudgetExhausted(RateLimited):
    """429 BUDGET_EXHAUSTED: a privacy budget or a grant's quota is spent."""


class Unavailable(VeilError):
    """5xx: a part of Veil could not answer; nothing was released."""


class ConnectionFailed(VeilError):
    """No answer from the server at all (status 0)."""


class UnexpectedResponse(VeilError):
    """The server answered with something that is not Veil's documented shape."""


class ReceiptInvalid(VeilError):
    """A receipt, checkpoint or proof did not verify under the pinned key."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "RECEIPT_INVALID", message)


_BY_CODE: dict[str, type[VeilError]] = {
    "BUDGET_EXHAUSTED": BudgetExhausted,
    "ASSET_DESTROYED": Destroyed,
}
_BY_STATUS: dict[int, type[VeilError]] = {
    400: Rejected,
    401: Unauthenticated,
    403: Denied,
    404: NotFound,
    408: TimedOut,
    409: Conflict,
    410: Destroyed,
    413: Rejected,
    422: Rejected,
    429: RateLimited,
}


def error_from(status: int, payload: object, reason: str) -> VeilError:
    """The exception for an error answer; a body not in Veil's shape keeps only the status."""
    try:
        body = ErrorBody.model_validate(payload["error"])  # type: ignore[index]
    except (TypeError, KeyError, ValidationError):
        body = ErrorBody(code=f"HTTP_{status}", message=reason or "the server refused")
    kind = _BY_CODE.get(body.code) or _BY_STATUS.get(status)
    if kind is None:
        kind = Unavailable if status >= 500 else VeilError
    return kind(status, body.code, body.message, list(body.violations))
