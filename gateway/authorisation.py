"""Authorisation: each route names its scope, and the policy engine allows it before the handler."""

# No `from __future__ import annotations`: FastAPI reads the closure's Depends(resource) from
# its annotations, which must be objects, not strings naming a variable of the closure.
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends

from gateway.auth import Caller, Veil
from services.authorisation import Permit, authorise

# The dependency that decides each scope; tests walk the routes through it.
SCOPE_OF: dict[Callable[..., Any], str] = {}


def scoped(scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Marks a dependency as the one that decides `scope` for its routes."""

    def mark(dependency: Callable[..., Any]) -> Callable[..., Any]:
        SCOPE_OF[dependency] = scope
        return dependency

    return mark


def no_resource() -> dict:
    return {}


def Allowed(scope: str, resource: Callable[..., dict] = no_resource) -> Any:  # noqa: N802 - a type
    """`permit: Allowed("grant:approve", grant_resource)` admits only what the policy allows.

    `resource` is a dependency giving the policy's `input.resource` for this request.
    """

    @scoped(scope)
    def permit(caller: Caller, veil: Veil, found: Annotated[dict, Depends(resource)]) -> Permit:
        return authorise(veil, caller=caller, scope=scope, resource=found)

    return Annotated[Permit, Depends(permit)]
