"""OPA server engine: the same Rego modules, evaluated by an OPA sidecar over its Data API."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlparse

import httpx
from opa_client.opa import OpaClient

from .engine import POLICY_ERROR, Decision, PolicyError, PolicySet, parse_decision, with_decision_id

log = logging.getLogger(__name__)

PACKAGE = "veil.authz"
RULE = "decision"


class OpaEngine:
    """Asks a running OPA server for `data.veil.authz.decision`; any failure is a deny."""

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        self._url, self._timeout_s = url.rstrip("/"), timeout_s
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

    def loaded(self) -> PolicySet:
        """The modules OPA holds now, from its Policy API."""
        try:
            response = httpx.get(f"{self._url}/v1/policies", timeout=self._timeout_s)
            response.raise_for_status()
            modules = [(p["id"], p["raw"]) for p in response.json()["result"]]
        except Exception as exc:  # noqa: BLE001 - any failure means we cannot say
            log.exception("cannot list OPA's policies")
            raise PolicyError("the OPA server cannot list its policies") from exc
        return PolicySet.of(modules)

    def reload(self) -> PolicySet:
        """OPA reloads its own files (`--watch`) or bundles; this reports what it now holds."""
        return self.loaded()
