"""Queries: a developer's aggregate SQL, answered with checked rows and a ledger receipt."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Caller, Veil
from gateway.authorisation import scoped
from sandbox.guard.syntax import MAX_SQL_CHARS
from services.queries import SCOPE, AuthorisedQuery, QueryRequest, authorise_query, run_query

router = APIRouter(prefix="/v1/queries", tags=["queries"])


class QueryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: Annotated[str, Field(min_length=1, max_length=MAX_SQL_CHARS)]
    purpose: Annotated[str | None, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")] = None
    grant_id: Annotated[str | None, Field(max_length=64)] = None


IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$"),
]


@scoped(SCOPE)
def authorised_query(
    body: QueryBody, caller: Caller, veil: Veil, idempotency_key: IdempotencyKey = None
) -> AuthorisedQuery:
    """With an Idempotency-Key, a retried query is answered from its first release's record."""
    request = QueryRequest(body.sql, body.purpose, body.grant_id, idempotency_key)
    return authorise_query(veil, caller=caller, request=request)


@router.post("")
def query(query: Annotated[AuthorisedQuery, Depends(authorised_query)], veil: Veil) -> dict:
    return run_query(veil, query=query)
