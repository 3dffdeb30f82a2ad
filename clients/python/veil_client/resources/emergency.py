"""`veil.emergency`: supervisors and operators stop a principal, grant or asset at once."""

from __future__ import annotations

from veil_client.models import Suspension, parsed
from veil_client.transport import Transport


class Emergency:
    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def suspend(
        self,
        *,
        reason: str,
        principal: str | None = None,
        grant: str | None = None,
        asset: str | None = None,
    ) -> Suspension:
        """Stop exactly one target from the next request on; work running under it ends."""
        return self._send("suspend", reason, principal, grant, asset)

    def resume(
        self,
        *,
        reason: str,
        principal: str | None = None,
        grant: str | None = None,
        asset: str | None = None,
    ) -> Suspension:
        """Lift a suspension."""
        return self._send("resume", reason, principal, grant, asset)

    def _send(
        self, action: str, reason: str, principal: str | None, grant: str | None, asset: str | None
    ) -> Suspension:
        targets = {"principal": principal, "grant": grant, "asset": asset}
        named = {kind: target for kind, target in targets.items() if target is not None}
        if len(named) != 1:
            raise ValueError("name exactly one of principal, grant or asset")
        answer = self._http.post(f"/v1/emergency/{action}", {**named, "reason": reason})
        return parsed(Suspension, answer)
