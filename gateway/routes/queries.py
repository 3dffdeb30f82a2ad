"""Queries: a developer's aggregate SQL, answered with checked rows and a ledger receipt."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import Bearer, LateCaller, Veil
from gateway.authorisation import scoped
from gateway.routes.dry_run_models import DryRun
from gateway.routes.query_models import QueryResult
from gateway.schemas import AUTHORISED, WITH_BODY, errors, example
from sandbox.guard.syntax import MAX_SQL_CHARS
from services.dry_run import dry_run_query
from services.queries import SCOPE, QueryRequest, authorise_query, run_query
from services.runtime import Services

router = APIRouter(prefix="/v1/queries", tags=["queries"])


class QueryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: Annotated[str, Field(min_length=1, max_length=MAX_SQL_CHARS)]
    purpose: Annotated[str | None, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")] = None
    grant_id: Annotated[str | None, Field(max_length=64)] = None
    dry_run: bool = Field(False, description="Decide, price and quote ε without running")


IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$"),
]


@router.post(
    "",
    responses=errors(
        *AUTHORISED,
        *WITH_BODY,
        404,
        408,
        409,
        410,
        429,
        examples={
            404: example("NOT_FOUND", "no such grant"),
            409: example(
                "CANCELLED", "the query was stopped: its authorisation ended while it ran"
            ),
            422: example(
                "QUERY_REJECTED",
                "the query uses a column outside its role",
                ("identifier_used", "patient_name"),
            ),
            429: example(
                "BUDGET_EXHAUSTED",
                "the privacy budget for this period is spent",
                ("budget_exhausted", "hospital.visits"),
            ),
        },
    ),
    # The answer's own shape: the privacy block says only what its mode has.
    response_model_exclude_unset=True,
)
# The route decides its own scope (in _answer, before anything runs), and is a coroutine: a
# query is authenticated, decided and run on one worker thread, one hand-off from the event
# loop, and its answer, validated there, is not handed to another thread to be validated again.
@scoped(SCOPE)
async def query(
    body: QueryBody,
    bearer: LateCaller,
    veil: Veil,
    connection: Request,
    idempotency_key: IdempotencyKey = None,
) -> QueryResult | DryRun:
    request = QueryRequest(body.sql, body.purpose, body.grant_id, idempotency_key)
    gone = threading.Event()
    watching = asyncio.ensure_future(_went_away(connection, veil, gone))
    try:
        return await to_thread.run_sync(_answer, veil, bearer, request, body.dry_run, gone)
    finally:
        watching.cancel()


async def _went_away(connection: Request, veil: Services, gone: threading.Event) -> None:
    """Tell the query queue when the client disconnects: a query still waiting for its turn
    gives its place up, rather than hold it, unanswerable, until its deadline."""
    while (await connection.receive())["type"] != "http.disconnect":
        pass
    veil.queries.went_away(gone)


def _answer(
    veil: Services, bearer: Bearer, request: QueryRequest, dry_run: bool, gone: threading.Event
) -> BaseModel:
    """With an Idempotency-Key, a retried query is answered from its first release's record.
    A dry run is decided, priced and recorded, never run."""
    caller = bearer.caller(veil)
    if dry_run:
        return DryRun.model_validate(dry_run_query(veil, caller=caller, request=request))
    authorised = authorise_query(veil, caller=caller, request=request)  # query:run decided
    return QueryResult.model_validate(run_query(veil, query=authorised, gone=gone))
