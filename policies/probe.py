"""Compiles and tries Rego modules in a child process: rego-cpp aborts its process on some."""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

# rego-cpp 1.5.2 aborts (SIGSEGV, double free or an uncaught C++ exception) while compiling a
# rule that uses `with input as …` over rules calling built-ins, and, next to DuckDB, while
# evaluating some built-ins (time.clock with a time zone); in the gateway that would kill it.
PROBE_TIMEOUT_S = 60
CLASSIFICATIONS = ("L1", "L2", "L3", "L4", "L5")
PURPOSES = ("public_welfare", "commercial", None)
TIMES = ("2026-01-01T03:00:00Z", "2026-07-01T15:30:00Z")


def trial_inputs(base: dict[str, Any]) -> list[dict[str, Any]]:
    """Variations of base over every scope the modules name: for each, every pair of level,
    purpose and time of day appears (levels by purposes, the time alternating across both),
    half the full product, which each gateway start pays for every scope."""
    scopes = sorted(set(base.get("trial_scopes", [])) | {base["scope"]})
    pairs = [
        (level, purpose, TIMES[(i + j) % len(TIMES)])
        for (i, level), (j, purpose) in itertools.product(
            enumerate(CLASSIFICATIONS), enumerate(PURPOSES)
        )
    ]
    variants = []
    for scope, (level, purpose, now) in itertools.product(scopes, pairs):
        doc = copy.deepcopy({k: v for k, v in base.items() if k != "trial_scopes"})
        doc.update(scope=scope, now=now)
        doc["resource"]["assets"][0]["classification"] = level
        doc["request"]["purpose"] = purpose
        variants.append(doc)
    return variants


def survives_in_child(modules: list[tuple[str, str]], entrypoint: str, base: dict) -> bool:
    """False when compiling the modules, or deciding trial inputs with them, kills the child.
    The same modules are probed once per process (`veil demo` sets up, then serves)."""
    key = json.dumps([modules, entrypoint, base], sort_keys=True)
    if key not in _VERDICTS:
        _VERDICTS[key] = _probe(modules, entrypoint, base)
    return _VERDICTS[key]


_VERDICTS: dict[str, bool] = {}


def _probe(modules: list[tuple[str, str]], entrypoint: str, base: dict) -> bool:
    try:
        child = subprocess.run(
            [sys.executable, str(Path(__file__).resolve())],
            input=json.dumps({"modules": modules, "entrypoint": entrypoint, "base": base}),
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
            # Out of the terminal's process group: a Ctrl-C meant for the gateway must not kill
            # the probe and so pass for a crash of the engine.
            process_group=0,
        )
    except subprocess.TimeoutExpired:
        return False
    # A plain compile error (exit 1) is reported by the in-process compile with its detail.
    return child.returncode in (0, 1)


def _main() -> int:
    # The gateway holds DuckDB and rego-cpp in one process, and some built-ins crash only then
    # (time.clock with a time zone: both libraries carry time-zone code), so the child does too.
    import duckdb  # noqa: F401, I001
    from regopy import Interpreter, RegoError

    job = json.load(sys.stdin)
    interpreter = Interpreter()
    try:
        for name, source in job["modules"]:
            interpreter.add_module(name, source)
        bundle = interpreter.build(None, [job["entrypoint"]])
        if not bundle.ok():
            return 1
        scopes = interpreter.query("data.veil.authz.scopes")
        base = dict(job["base"])
        if scopes.ok() and len(scopes) == 1:
            found = scopes[0].expressions[0]
            base["trial_scopes"] = [s for s in found if isinstance(s, str)]
        for doc in trial_inputs(base):
            interpreter.set_input_term(json.dumps(doc))
            interpreter.query_bundle_entrypoint(bundle, job["entrypoint"])
        return 0
    except RegoError:
        return 1


if __name__ == "__main__":
    sys.exit(_main())
