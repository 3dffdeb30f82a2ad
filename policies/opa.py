"""OPA server engine: the same Rego modules, evaluated by an OPA sidecar over its Data API."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlparse

from opa_client.opa import OpaClient

from .engine import POLICY_ERROR, Decision, parse_decision, with_decision_id

log = logging.getLogger(__name__)

PACKAGE = "veil.authz"
RULE = "decision"


class OpaEngine:
    """Asks a running OPA server for `data.veil.authz.decision`; any failure is a deny."""

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        parsed = urlparse(url)
        self._client = OpaClient(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 8181,
            ssl=parsed.scheme == "https",
            timeout=timeout_s,
            retries=0,
        )

    def decide(self, input: dict[str, Any]) -> Decision:
        try:
            body = self._client.query_rule(input_data=input, package_path=PACKAGE, rule_name=RULE)
        except Exception:  # noqa: BLE001 - unreachable, timed out or refused: fail closed
            log.exception("OPA could not decide")
            return with_decision_id(Decision.deny(POLICY_ERROR))
        if not isinstance(body, dict):
            return with_decision_id(parse_decision(None))
        return with_decision_id(parse_decision(body.get("result")), body.get("decision_id"))

    def ready(self) -> bool:
        try:
            self._client.check_connection()
        except Exception:  # noqa: BLE001 - readiness is a yes or a no
            return False
        return True
