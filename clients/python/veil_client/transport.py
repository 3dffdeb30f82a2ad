"""The one HTTP layer: API key, error mapping, and retries only where a retry is safe."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import httpx

from veil_client.errors import ConnectionFailed, error_from

DEFAULT_URL = "http://127.0.0.1:8000"
# Gateways and proxies say these when the request may not have been served at all.
TRANSIENT_STATUSES = frozenset({502, 503, 504})
# An error raised before the request left: nothing reached the server.
UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class Retry(Enum):
    """When a request may be sent again."""

    UNSENT = "unsent"  # a change: only when it provably never reached the server
    READ = "read"  # a GET: on any connection failure and on 502, 503 and 504
    KEYED = "keyed"  # carries an Idempotency-Key: as READ, and on 429 with Retry-After


class Transport:
    """Sends requests to one Veil with one API key, and turns refusals into VeilErrors."""

    def __init__(
        self,
        url: str,
        api_key: str | None,
        *,
        timeout: float,
        retries: int,
        backoff: float,
        max_retry_after: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        self._retries, self._backoff, self._max_retry_after = retries, backoff, max_retry_after

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.send("GET", path, Retry.READ, params=_present(params or {})).json()

    def get_text(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        return self.send("GET", path, Retry.READ, params=_present(params or {})).text

    def get_bytes(self, path: str, params: Mapping[str, Any] | None = None) -> bytes:
        return self.send("GET", path, Retry.READ, params=_present(params or {})).content

    def post(
        self,
        path: str,
        json: Any = None,
        *,
        retry: Retry = Retry.UNSENT,
        headers: Mapping[str, str] | None = None,
        files: Callable[[], dict] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> Any:
        return self.send(
            "POST", path, retry, json=json, headers=headers, files=files, data=data
        ).json()

    def delete(self, path: str, json: Any) -> Any:
        return self.send("DELETE", path, Retry.UNSENT, json=json).json()

    def send(
        self,
        method: str,
        path: str,
        retry: Retry,
        *,
        files: Callable[[], dict] | None = None,
        **options: Any,
    ) -> httpx.Response:
        """Send, retrying as `retry` allows; the answer if it succeeded, else a VeilError.

        `files` makes the multipart parts afresh for each attempt, since a sent part is read.
        """
        attempt = 0
        while True:
            try:
                parts = files() if files else None
                response = self._http.request(method, path, files=parts, **options)
            except httpx.TransportError as error:
                if attempt < self._retries and _may_resend(error, retry):
                    time.sleep(self._backoff * 2**attempt)
                    attempt += 1
                    continue
                raise ConnectionFailed(
                    0, "CONNECTION_FAILED", f"no answer from {self.url} ({type(error).__name__})"
                ) from error
            wait = self._wait_before_retry(response, retry, attempt)
            if wait is None:
                return _checked(response)
            response.close()
            time.sleep(wait)
            attempt += 1

    def _wait_before_retry(
        self, response: httpx.Response, retry: Retry, attempt: int
    ) -> float | None:
        if attempt >= self._retries or retry is Retry.UNSENT:
            return None
        if response.status_code in TRANSIENT_STATUSES:
            told = _retry_after(response)
            return self._backoff * 2**attempt if told is None else min(told, self._max_retry_after)
        if response.status_code == 429 and retry is Retry.KEYED:
            told = _retry_after(response)
            return told if told is not None and told <= self._max_retry_after else None
        return None


def _may_resend(error: httpx.TransportError, retry: Retry) -> bool:
    return retry is not Retry.UNSENT or isinstance(error, UNSENT)


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds, as a number or an HTTP date; None if absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    try:
        payload: object = response.json()
    except ValueError:
        payload = None
    raise error_from(response.status_code, payload, response.reason_phrase)


def _present(params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}
