"""`veil.queries`: aggregate SQL, sent with an Idempotency-Key so a retry is never a second
charge."""

from __future__ import annotations

import uuid

from veil_client.models import parsed
from veil_client.results import Result
from veil_client.transport import Retry, Transport


class Queries:
    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def run(
        self,
        sql: str,
        *,
        purpose: str | None = None,
        grant_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Result:
        """Run one query. Every attempt of this call carries the same Idempotency-Key
        (`idempotency_key`, or a fresh one), so a retried query is answered from its first
        release: the same receipt, charged once."""
        body = {"sql": sql, "purpose": purpose, "grant_id": grant_id}
        key = idempotency_key or f"veil-client:{uuid.uuid4().hex}"
        answer = self._http.post(
            "/v1/queries",
            {name: value for name, value in body.items() if value is not None},
            retry=Retry.KEYED,
            headers={"Idempotency-Key": key},
        )
        return parsed(Result, answer)
