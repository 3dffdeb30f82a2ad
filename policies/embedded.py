"""The embedded policy engine: data.veil.authz.decision evaluated by regopy (rego-cpp), in an
evaluator process of the gateway's own that never loads DuckDB (policies/rego_worker.py)."""

from __future__ import annotations

import json
import logging
import select
import subprocess
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

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


# How long one decision may take before the evaluator is replaced and the decision fails
# closed, and how long compiling the modules in a new evaluator may take.
EVALUATION_TIMEOUT_S = 10.0
COMPILE_TIMEOUT_S = 60.0
# rego-cpp 1.5.2, as driven here, keeps about 90 KB of native memory per evaluation: an
# evaluator is replaced after this many, which bounds it to about 100 MB.
DECISIONS_PER_EVALUATOR = 1000
EVALUATOR = [sys.executable, "-m", "policies.rego_worker"]


class _EvaluationFailed(RuntimeError):
    pass


class _NotCompiled(RuntimeError):
    pass


class _Evaluator:
    """One evaluator process with the modules compiled in it."""

    def __init__(self, modules: list[Module]) -> None:
        self.process: subprocess.Popen | None = subprocess.Popen(
            EVALUATOR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            # Out of the terminal's process group: a Ctrl-C is the gateway's to handle.
            process_group=0,
        )
        self.decisions = 0
        compiled = self.ask({"modules": modules, "entrypoint": DECISION_ENTRYPOINT},
                            COMPILE_TIMEOUT_S)  # fmt: skip
        if not compiled.get("ok"):
            self.close()
            raise _NotCompiled(str(compiled.get("error")))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ask(self, message: dict, timeout_s: float) -> dict:
        """One line to the evaluator and its one line back; an evaluator that does not answer
        in time, or answers nothing, is ended."""
        process = self.process
        if process is None or process.stdin is None or process.stdout is None:
            raise _EvaluationFailed("the policy evaluator is closed")
        try:
            process.stdin.write(json.dumps(message, allow_nan=False) + "\n")
            process.stdin.flush()
            readable, _, _ = select.select([process.stdout], [], [], timeout_s)
            line = process.stdout.readline() if readable else ""
        except (OSError, ValueError) as exc:
            self.close()
            raise _EvaluationFailed("the policy evaluator stopped") from exc
        try:
            return json.loads(line)
        except ValueError as exc:  # nothing (it stopped, or took too long), or not a reply
            self.close()
            raise _EvaluationFailed("the policy evaluator stopped or did not answer") from exc

    def close(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


class _Compiled:
    """The modules, compiled for the decision entrypoint in an evaluator process. One that
    dies or hangs is replaced at the next decision, the one it was on failing closed; one that
    has made DECISIONS_PER_EVALUATOR decisions is replaced by a spare started beforehand."""

    def __init__(self, modules: list[Module]) -> None:
        if not survives_in_child(modules, DECISION_ENTRYPOINT, TRIAL_INPUT):
            raise PolicyInvalid("the policy modules crash the Rego engine")
        self.modules = modules
        self.policy_set = PolicySet.of(modules)
        self._spare: _Evaluator | None = None
        self._preparing = False
        self._evaluator: _Evaluator | None = self._new()
        try:
            validate_decision(self.evaluate(TRIAL_INPUT))
        except Exception as exc:
            self.close()
            log.error("policy modules cannot decide: %s", exc)
            raise PolicyInvalid("the policy modules cannot produce a decision") from exc

    def _new(self) -> _Evaluator:
        try:
            return _Evaluator(self.modules)
        except _NotCompiled as exc:
            log.error("policy modules do not compile: %s", exc)
            raise PolicyInvalid("the policy modules do not compile") from exc
        except _EvaluationFailed as exc:
            raise PolicyInvalid("the policy modules crash the Rego engine") from exc

    def evaluate(self, input: dict[str, Any]) -> object | None:
        evaluator = self._current()
        evaluator.decisions += 1
        reply = evaluator.ask({"input": input}, EVALUATION_TIMEOUT_S)
        if "error" in reply:
            raise _EvaluationFailed(reply["error"])
        return reply["result"]

    def _current(self) -> _Evaluator:
        evaluator = self._evaluator
        if evaluator is not None and evaluator.alive():
            if evaluator.decisions < DECISIONS_PER_EVALUATOR:
                if evaluator.decisions >= DECISIONS_PER_EVALUATOR * 4 // 5:
                    self._prepare_spare()
                return evaluator
            evaluator.close()
        spare, self._spare = self._spare, None
        self._evaluator = spare if spare is not None and spare.alive() else self._new()
        return self._evaluator

    def _prepare_spare(self) -> None:
        """Start the next evaluator beside the current one, so replacing it costs no wait."""
        if self._preparing or self._spare is not None:
            return
        self._preparing = True

        def prepare() -> None:
            try:
                self._spare = _Evaluator(self.modules)
            except Exception:  # noqa: BLE001 - the replacement is then made when it is due
                log.exception("a spare policy evaluator could not start")
            finally:
                self._preparing = False

        threading.Thread(target=prepare, name="policy-evaluator", daemon=True).start()

    def close(self) -> None:
        for evaluator in (self._evaluator, self._spare):
            if evaluator is not None:
                evaluator.close()
        self._evaluator = self._spare = None


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
            replaced, self._compiled = self._compiled, compiled
            self._decided.clear()
        replaced.close()
        return compiled.policy_set

    def close(self) -> None:
        with self._lock:
            self._compiled.close()
