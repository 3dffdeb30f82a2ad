"""Authentication: a bearer API key becomes a principal (authorisation.py decides the rest)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.control import Principal
from gateway.errors import ApiError
from gateway.services import Services

MAX_KEY_CHARS = 200


def services(request: Request) -> Services:
    return request.app.state.services


def principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, api_key = header.partition(" ")
    api_key = api_key.strip()
    if scheme.lower() != "bearer" or not api_key or len(api_key) > MAX_KEY_CHARS:
        raise ApiError(401, "UNAUTHENTICATED", "send an API key as 'Authorization: Bearer <key>'")
    veil = services(request)
    with veil.metrics.stage("authentication"):
        found = veil.control.authenticate(api_key)
    if found is None or found.status == "revoked":
        raise ApiError(401, "UNAUTHENTICATED", "the API key is not valid")
    # A suspended principal still reaches the policy, which denies it and has that recorded.
    if found.status not in ("active", "suspended"):
        raise ApiError(403, "POLICY_DENIED", "this principal is not active")
    return found


Caller = Annotated[Principal, Depends(principal)]
Veil = Annotated[Services, Depends(services)]
