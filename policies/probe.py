"""Compiles Rego modules in a child process: rego-cpp aborts its process on some modules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# rego-cpp 1.5.2 aborts (SIGSEGV or an uncaught C++ exception) while compiling a rule that uses
# `with input as …` over rules calling built-ins; compiled in the gateway, that would kill it.
PROBE_TIMEOUT_S = 60


def compiles_in_child(modules: list[tuple[str, str]], entrypoint: str) -> bool:
    """False when compiling the modules kills the child or takes too long."""
    try:
        child = subprocess.run(
            [sys.executable, str(Path(__file__).resolve())],
            input=json.dumps({"modules": modules, "entrypoint": entrypoint}),
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    # A plain compile error (exit 1) is reported by the in-process compile with its detail.
    return child.returncode in (0, 1)


def _main() -> int:
    from regopy import Interpreter, RegoError

    job = json.load(sys.stdin)
    interpreter = Interpreter()
    try:
        for name, source in job["modules"]:
            interpreter.add_module(name, source)
        return 0 if interpreter.build(None, [job["entrypoint"]]).ok() else 1
    except RegoError:
        return 1


if __name__ == "__main__":
    sys.exit(_main())
