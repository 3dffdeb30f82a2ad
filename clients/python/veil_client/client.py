"""`Veil`, the client: one server, one API key, and a namespace per kind of thing."""

from __future__ import annotations

from types import TracebackType

import httpx

from veil_client.models import Budgets, Settlement, Usage, parsed
from veil_client.resources.assets import Assets
from veil_client.resources.emergency import Emergency
from veil_client.resources.grants import Grants
from veil_client.resources.jobs import Jobs
from veil_client.resources.ledger import Ledger
from veil_client.resources.queries import Queries
from veil_client.transport import DEFAULT_URL, Transport


class Veil:
    """A connection to one Veil as one principal.

    GETs are retried on connection failures and on 502, 503 and 504 with exponential
    backoff; queries also on 429 with Retry-After, under one Idempotency-Key per call; any
    other change only when it provably never reached the server."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = Transport(
            url,
            api_key,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_retry_after=max_retry_after,
            transport=transport,
        )
        self.assets = Assets(self._http)
        self.grants = Grants(self._http)
        self.queries = Queries(self._http)
        self.jobs = Jobs(self._http)
        self.emergency = Emergency(self._http)
        self.ledger = Ledger(self._http)

    @property
    def url(self) -> str:
        return self._http.url

    def budgets(self, period: str | None = None) -> Budgets:
        """Privacy budget spent and left per asset this month (or `period`, YYYY-MM)."""
        return parsed(Budgets, self._http.get("/v1/budgets", {"period": period}))

    def usage(self, period: str | None = None, limit: int = 100) -> Usage:
        """Metered requests in a month: a developer's own, a provider's assets', or all."""
        return parsed(Usage, self._http.get("/v1/usage", {"period": period, "limit": limit}))

    def settlements(self, period: str | None = None, currency: str | None = None) -> Settlement:
        """What was charged in a month and what each party is owed, from the ledger."""
        answer = self._http.get("/v1/settlements", {"period": period, "currency": currency})
        return parsed(Settlement, answer)

    def settlement_postings(self, period: str | None = None, currency: str | None = None) -> str:
        """Every posting of the month as CSV, for finance."""
        params = {"period": period, "currency": currency, "format": "csv"}
        return self._http.get_text("/v1/settlements", params)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Veil:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
