"""The sandbox's errors: one root, each with a stable code and safe violations."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One broken rule; names a rule and maybe where it broke, never a data value.

    `column`, `table` and `name` are names as the client wrote them (a SQL column or table, a
    Python import, name or attribute); `line` and `col` are positions in the client's text.
    """

    rule: str
    column: str | None = None
    table: str | None = None
    name: str | None = None
    line: int | None = None
    col: int | None = None

    def as_dict(self) -> dict[str, str | int]:
        fields = {"column": self.column, "table": self.table, "name": self.name,
                  "line": self.line, "col": self.col}  # fmt: skip
        return {"rule": self.rule, **{k: v for k, v in fields.items() if v is not None}}


class SandboxError(Exception):
    """Root of every error the enclave raises; `message` is safe to show a client."""

    code = "SANDBOX_ERROR"
    status = 500

    def __init__(self, message: str, violations: list[Violation] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.violations = violations or []


class CardInvalid(SandboxError):
    code = "CARD_INVALID"
    status = 422


class FileInvalid(SandboxError):
    code = "FILE_INVALID"
    status = 422


class AssetExists(SandboxError):
    code = "CONFLICT"
    status = 409


class AssetNotFound(SandboxError):
    code = "NOT_FOUND"
    status = 404


class AssetGone(SandboxError):
    """The asset was destroyed: its data can never be read again."""

    code = "ASSET_DESTROYED"
    status = 410


class QueryRejected(SandboxError):
    code = "QUERY_REJECTED"
    status = 422


class ExecutionFailed(SandboxError):
    """The engine failed; its own text stays in the worker."""

    code = "EXECUTION_FAILED"
    status = 422


class ExecutionTimeout(SandboxError):
    code = "QUERY_TIMEOUT"
    status = 408


class Cancelled(SandboxError):
    """The work was stopped from outside: its grant was revoked, or something was suspended."""

    code = "CANCELLED"
    status = 409


class JobRejected(SandboxError):
    """The job's code is outside what jobs may run; refused before it runs."""

    code = "JOB_REJECTED"
    status = 422


class StorageFull(SandboxError):
    """The volume holding the assets has no room for what was asked: nothing of it was kept."""

    code = "STORAGE_FULL"
    status = 507


class EnclaveUnavailable(SandboxError):
    code = "ENCLAVE_UNAVAILABLE"
    status = 503
