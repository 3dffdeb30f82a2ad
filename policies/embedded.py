"""In-process policy engine: data.veil.authz.decision evaluated by regopy (rego-cpp)."""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from regopy import Interpreter, Node, Output, RegoError
from regopy.rego_shared import rego_node_value

from .engine import (
    POLICY_ERROR,
    Decision,
    PolicyInvalid,
    PolicySet,
    parse_decision,
    validate_decision,
    with_decision_id,
)
from .modules import DECISION_ENTRYPOINT, Module, policy_modules
from .probe import survives_in_child

log = logging.getLogger(__name__)

DECISION_CACHE_SIZE = 1024

# Evaluated once at start-up, so modules that cannot produce a valid decision fail loudly then.
TRIAL_INPUT: dict[str, Any] = {
    "scope": "query:run",
    "principal": {"id": "trial", "roles": ["developer"], "org": "trial", "status": "active"},
    "resource": {
        "assets": [
            {
                "id": "trial.asset",
                "classification": "L3",
                "provider": "trial",
                "domain": "trial",
                "status": "active",
            }
        ],
        "columns": {"trial.asset": ["value"]},
    },
    "request": {"method": "sql", "purpose": None, "grant_id": None},
    "grants": [
        {
            "id": "g_trial",
            "developer": "trial",
            "assets": ["trial.asset"],
            "columns": None,
            "purpose": "trial",
            "scenario": "start-up check",
            "methods": ["sql"],
            "valid_from": "2000-01-01T00:00:00Z",
            "valid_until": "2100-01-01T00:00:00Z",
            "status": "active",
        }
    ],
    "now": "2026-01-01T00:00:00Z",
}


class _EvaluationFailed(RuntimeError):
    pass


class _Compiled:
    """One interpreter with the modules built into a bundle for the decision entrypoint."""

    def __init__(self, modules: list[Module]) -> None:
        if not survives_in_child(modules, DECISION_ENTRYPOINT, TRIAL_INPUT):
            raise PolicyInvalid("the policy modules crash the Rego engine")
        self.interpreter = Interpreter()
        try:
            for name, source in modules:
                self.interpreter.add_module(name, source)
            self.bundle = self.interpreter.build(None, [DECISION_ENTRYPOINT])
        except RegoError as exc:
            log.error("policy modules do not compile: %s", exc)
            raise PolicyInvalid("the policy modules do not compile") from exc
        if not self.bundle.ok():
            raise PolicyInvalid("the policy modules do not compile")
        self.policy_set = PolicySet.of(modules)
        try:
            validate_decision(self.evaluate(TRIAL_INPUT))
        except Exception as exc:
            log.error("policy modules cannot decide: %s", exc)
            raise PolicyInvalid("the policy modules cannot produce a decision") from exc

    def evaluate(self, input: dict[str, Any]) -> object | None:
        self.interpreter.set_input_term(json.dumps(input, allow_nan=False))
        output = self.interpreter.query_bundle_entrypoint(self.bundle, DECISION_ENTRYPOINT)
        return raw_decision(output)


class EmbeddedEngine:
    """Evaluates the shipped modules plus an operator's extra_dir in this process."""

    def __init__(self, extra_dir: Path | None = None) -> None:
        self._extra_dir = extra_dir
        # One interpreter serves every call under a lock: rego-cpp is not known to be thread-safe,
        # and reusing it took ~2 ms a decision where a fresh interpreter per call took ~4.5 ms.
        self._lock = threading.Lock()
        self._compiled = _Compiled(policy_modules(extra_dir))
        # Decisions by exact input under the current modules; emptied when they change.
        self._decided: OrderedDict[str, Decision] = OrderedDict()

    def decide(self, input: dict[str, Any]) -> Decision:
        """The decision for `input`. An input seen before under the same modules gets the same
        decision again without evaluating: it carries `now` to the second, so it repeats only
        within that second, and the shipped modules read nothing but their input. A module
        that called `time.now_ns` or `rand` would see its answer repeat within the second."""
        try:
            key = json.dumps(input, sort_keys=True, allow_nan=False)
            with self._lock:
                compiled = self._compiled
                decided = self._decided.get(key)
                if decided is None:
                    decided = parse_decision(compiled.evaluate(input))
                    self._decided[key] = decided
                    if len(self._decided) > DECISION_CACHE_SIZE:
                        self._decided.popitem(last=False)
        except Exception:
            # Engine text can quote input values, so it goes to the log and never the decision.
            log.exception("policy evaluation failed")
            return with_decision_id(Decision.deny(POLICY_ERROR))
        return with_decision_id(decided)

    def ready(self) -> bool:
        """Compiled at construction, so an embedded engine that exists can decide."""
        return True

    def loaded(self) -> PolicySet:
        return self._compiled.policy_set

    def reload(self) -> PolicySet:
        """Compile the modules on disk again and swap them in only if they can decide."""
        return self.load(self.modules())

    def modules(self) -> list[Module]:
        """The modules on disk now, as `reload` would read them."""
        return policy_modules(self._extra_dir)

    def load(self, modules: list[Module]) -> PolicySet:
        """Compile exactly `modules` and swap them in only if they can decide."""
        compiled = _Compiled(modules)
        with self._lock:
            self._compiled = compiled
            self._decided.clear()
        return compiled.policy_set


def raw_decision(output: Output) -> object | None:
    """The decision document in a query output, or None when it is undefined."""
    if not output.ok():
        raise _EvaluationFailed("; ".join(_error_text(output.node())) or "rego error")
    if len(output) == 0 or not output[0].expressions:
        return None
    if len(output) > 1 or len(output[0].expressions) > 1:
        raise _EvaluationFailed("the decision query gave several results")
    return output[0].expressions[0]


def _error_text(node: Node) -> list[str]:
    """The messages inside a rego-cpp error tree (str() of an error output is just '<error>')."""
    try:
        text = rego_node_value(node._impl) if len(node) == 0 else ""
    except Exception:
        text = ""
    parts = [text] if text else []
    for index in range(len(node)):
        parts += _error_text(node.at(index))
    return parts
