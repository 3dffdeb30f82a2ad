"""`veil.grants`: a developer asks, every provider and a supervisor approve, any may revoke."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from veil_client.models import Grant, parsed
from veil_client.transport import Transport


class Grants:
    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def request(
        self,
        *,
        assets: Sequence[str],
        purpose: str,
        scenario: str,
        valid_until: datetime | str,
        methods: Sequence[str] = ("sql",),
        valid_from: datetime | str | None = None,
        columns: Mapping[str, Sequence[str]] | None = None,
        quotas: Mapping[str, int] | None = None,
    ) -> Grant:
        """Ask for a grant; it is `pending` until every required party approves."""
        body: dict[str, Any] = {
            "assets": list(assets),
            "purpose": purpose,
            "scenario": scenario,
            "methods": list(methods),
            "valid_until": _instant(valid_until),
        }
        if valid_from is not None:
            body["valid_from"] = _instant(valid_from)
        if columns is not None:
            body["columns"] = {asset: list(names) for asset, names in columns.items()}
        if quotas is not None:
            body["quotas"] = dict(quotas)
        return parsed(Grant, self._http.post("/v1/grants", body))

    def list(self, status: str | None = None) -> list[Grant]:
        """The grants the caller may see, oldest first."""
        return parsed(list[Grant], self._http.get("/v1/grants", {"status": status})["items"])

    def get(self, grant_id: str) -> Grant:
        """One grant with its history."""
        return parsed(Grant, self._http.get(f"/v1/grants/{grant_id}"))

    def approve(self, grant_id: str) -> Grant:
        return parsed(Grant, self._http.post(f"/v1/grants/{grant_id}/approve"))

    def reject(self, grant_id: str, reason: str) -> Grant:
        return parsed(Grant, self._http.post(f"/v1/grants/{grant_id}/reject", {"reason": reason}))

    def revoke(self, grant_id: str, reason: str | None = None) -> Grant:
        body = {"reason": reason} if reason else None
        return parsed(Grant, self._http.post(f"/v1/grants/{grant_id}/revoke", body))


def _instant(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else value
