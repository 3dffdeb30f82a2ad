"""The ledger's errors: one root with a stable code, subclasses per kind of failure."""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error the ledger raises; `message` is safe to show a client."""

    code = "LEDGER_ERROR"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LedgerUnavailable(LedgerError):
    """The store could not be read or written; callers must fail closed."""

    code = "LEDGER_UNAVAILABLE"
    status = 503


class InvalidEntry(LedgerError):
    code = "LEDGER_INVALID_ENTRY"
    status = 422


class InvalidRange(LedgerError):
    """An index, tree size or page bound outside the log."""

    code = "LEDGER_INVALID_RANGE"
    status = 422


class InvalidKey(LedgerError):
    code = "LEDGER_KEY_INVALID"
    status = 500


class CheckpointInvalid(LedgerError):
    code = "CHECKPOINT_INVALID"
    status = 422


class PricingInvalid(LedgerError):
    code = "PRICING_INVALID"
    status = 422


class LedgerCorrupt(LedgerError):
    """The stored log cannot be sequenced (gaps, malformed hashes); run verify."""

    code = "LEDGER_CORRUPT"
    status = 500
