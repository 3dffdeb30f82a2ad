"""A refusal as a page shows it: the status, the stable code, the words and the rules broken;
never engine text, a stack trace or anything the visitor was not released."""

from __future__ import annotations

from dataclasses import dataclass, field

from governance import ControlError
from ledger import LedgerError
from policies import PolicyError
from sandbox.errors import SandboxError
from services.errors import ServiceError, http_status

REFUSED = (ServiceError, ControlError, SandboxError, LedgerError, PolicyError)


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str
    rules: list[dict] = field(default_factory=list)


def explain(exc: Exception) -> Refusal:
    if isinstance(exc, ServiceError):
        return Refusal(http_status(exc), exc.code, exc.message, exc.violations)
    if isinstance(exc, ControlError):
        return Refusal(http_status(exc), exc.code, exc.message)
    if isinstance(exc, SandboxError):
        rules = [violation.as_dict() for violation in exc.violations]
        return Refusal(exc.status, exc.code, exc.message, rules)
    if isinstance(exc, LedgerError) and exc.status < 500:
        return Refusal(exc.status, exc.code, exc.message)
    if isinstance(exc, LedgerError):
        return Refusal(503, "LEDGER_UNAVAILABLE", "the ledger could not record this request")
    return Refusal(503, "POLICY_UNAVAILABLE", "the policy engine could not decide")


def invalid_fields(message: str, checks: dict[str, bool]) -> Refusal | None:
    """A 422 naming every form field whose check failed, or None when all hold."""
    wrong = [{"rule": "invalid_field", "column": name} for name, fine in checks.items() if not fine]
    return Refusal(422, "BAD_REQUEST", message, wrong) if wrong else None
