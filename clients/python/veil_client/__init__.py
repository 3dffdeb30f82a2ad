"""Veil's Python client: typed models, safe retries, and receipts verified on this side."""

from veil_client.client import Veil
from veil_client.errors import (
    BudgetExhausted,
    Conflict,
    ConnectionFailed,
    Denied,
    Destroyed,
    NotFound,
    RateLimited,
    ReceiptInvalid,
    Rejected,
    TimedOut,
    Unauthenticated,
    Unavailable,
    UnexpectedResponse,
    VeilError,
    Violation,
)
from veil_client.receipts import DEFAULT_ORIGIN
from veil_client.resources.jobs import Job
from veil_client.results import Result

__all__ = [
    "DEFAULT_ORIGIN",
    "BudgetExhausted",
    "Conflict",
    "ConnectionFailed",
    "Denied",
    "Destroyed",
    "Job",
    "NotFound",
    "RateLimited",
    "ReceiptInvalid",
    "Rejected",
    "Result",
    "TimedOut",
    "Unauthenticated",
    "Unavailable",
    "UnexpectedResponse",
    "Veil",
    "VeilError",
    "Violation",
]
