"""Governance errors, each with a stable code the interfaces show."""

from __future__ import annotations


class ControlError(Exception):
    """A change the records do not allow in their present state."""

    code = "CONFLICT"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ControlError):
    code = "NOT_FOUND"
