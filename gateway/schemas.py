"""The API's shared response models: the one error body, receipts, and each route's error list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field


class Violation(BaseModel):
    """One broken rule, and the column, field or parameter it concerns; never a data value."""

    rule: str
    column: str | None = Field(None, description="A column, field or parameter as written")
    table: str | None = Field(None, description="A table (asset) as the query wrote it")
    name: str | None = Field(None, description="A job's import, name or attribute as written")
    line: int | None = Field(None, description="1-based line in the client's SQL or code")
    col: int | None = Field(None, description="1-based column in that line")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable: BAD_REQUEST, POLICY_DENIED, NOT_FOUND, ...")
    message: str = Field(description="Client-safe words; never engine text or a data value")
    violations: list[Violation]


class ErrorBody(BaseModel):
    """Every error Veil answers, whatever the status."""

    error: ErrorDetail


class Receipt(BaseModel):
    """Where the request's ledger entry sits: check it against a signed checkpoint."""

    ledger_index: int
    leaf_hash: str


# Per status: what it means on any route, and the error an example shows unless a route says.
MEANING: dict[int, tuple[str, ErrorDetail]] = {
    401: (
        "No API key, or one that is not valid (UNAUTHENTICATED)",
        ErrorDetail(code="UNAUTHENTICATED", message="the API key is not valid", violations=[]),
    ),
    403: (
        "The policy denies it, or the principal is not active (POLICY_DENIED)",
        ErrorDetail(
            code="POLICY_DENIED",
            message="the policy does not allow catalog:read",
            violations=[Violation(rule="role_not_permitted")],
        ),
    ),
    404: (
        "What the request names does not exist, or is not the caller's to see (NOT_FOUND)",
        ErrorDetail(code="NOT_FOUND", message="no such record", violations=[]),
    ),
    408: (
        "The query ran past its time limit (QUERY_TIMEOUT); it is charged",
        ErrorDetail(code="QUERY_TIMEOUT", message="the query took too long", violations=[]),
    ),
    409: (
        "The records' present state does not allow it (CONFLICT, CANCELLED)",
        ErrorDetail(
            code="CONFLICT", message="the request conflicts with the records", violations=[]
        ),
    ),
    410: (
        "The asset was destroyed (ASSET_DESTROYED)",
        ErrorDetail(code="ASSET_DESTROYED", message="the asset was destroyed", violations=[]),
    ),
    413: (
        "The body is larger than the route takes (PAYLOAD_TOO_LARGE)",
        ErrorDetail(
            code="PAYLOAD_TOO_LARGE", message="this route takes 1048576 bytes", violations=[]
        ),
    ),
    422: (
        "A parameter or the body is not valid (BAD_REQUEST, naming each in violations), or the "
        "request breaks a stated rule (its own code)",
        ErrorDetail(
            code="BAD_REQUEST",
            message="the query parameter 'period' is not valid",
            violations=[Violation(rule="invalid_parameter", column="period")],
        ),
    ),
    429: (
        "A quota, budget or the caller's share of the workers is used up "
        "(BUDGET_EXHAUSTED, RATE_LIMITED)",
        ErrorDetail(code="RATE_LIMITED", message="too much work in flight", violations=[]),
    ),
    500: (
        "An unexpected failure; nothing was released (INTERNAL)",
        ErrorDetail(
            code="INTERNAL",
            message="an internal error occurred; nothing was released",
            violations=[],
        ),
    ),
    503: (
        "The policy engine, control store, ledger, enclave or job runner cannot serve it now "
        "(POLICY_UNAVAILABLE, STORE_UNAVAILABLE, LEDGER_UNAVAILABLE, ...)",
        ErrorDetail(
            code="POLICY_UNAVAILABLE", message="the policy engine could not decide", violations=[]
        ),
    ),
    507: (
        "The asset storage has no room for the file (STORAGE_FULL); nothing of it was kept",
        ErrorDetail(
            code="STORAGE_FULL",
            message="there is no room to store this file; nothing of it was kept",
            violations=[],
        ),
    ),
}

# What every route the policy authorises can answer besides its own.
AUTHORISED = (401, 403, 503)
# And every route that takes a body.
WITH_BODY = (413, 422)


def example(code: str, message: str, *violations: tuple[str, str | None]) -> ErrorDetail:
    """A route's own example of an error."""
    return ErrorDetail(
        code=code,
        message=message,
        violations=[Violation(rule=rule, column=column) for rule, column in violations],
    )


def errors(
    *statuses: int, examples: Mapping[int, ErrorDetail] | None = None
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that answers `statuses` with the error body; its own
    `examples`, by status, replace the generic ones."""
    declared: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        meaning, generic = MEANING[status]
        shown = (examples or {}).get(status, generic)
        declared[status] = {
            "model": ErrorBody,
            "description": meaning,
            "content": {
                "application/json": {"example": {"error": shown.model_dump(exclude_none=True)}}
            },
        }
    return declared
