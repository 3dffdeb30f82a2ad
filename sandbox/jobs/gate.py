"""The compile gate: job code becomes RestrictedPython bytecode run with every guard in place.

Jobs see only the builtins below, a few standard modules through read-only proxies of their
public names, and the plain functions the enclave hands in (`sql`, `publish`, helpers). No
module, frame, class or host object is reachable. This is the first wall; the OS seal
around the process running a job is the second.
"""

from __future__ import annotations

import ast
import builtins as python_builtins
import collections
import decimal
import fractions
import itertools
import math
import operator
import statistics
from collections.abc import Callable
from types import CodeType, ModuleType, SimpleNamespace
from typing import Any

from RestrictedPython import compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
    safer_getattr,
)

from sandbox.errors import JobRejected, Violation

MAX_CODE_CHARS = 100_000
FILENAME = "<job>"

# Only their public API, as listed by the module itself: `statistics.sys` and the like stay out.
MODULES: dict[str, ModuleType] = {
    module.__name__: module
    for module in (math, statistics, decimal, fractions, itertools, collections)
}

# RestrictedPython's safe builtins, less those a job has no use for: classes (which need
# `__build_class__`), attribute setters, and identities of host objects.
REMOVED_BUILTINS = frozenset({"__build_class__", "setattr", "delattr", "id", "hash"})
EXTRA_BUILTINS: dict[str, Any] = {
    name: getattr(python_builtins, name)
    for name in (
        "all", "any", "dict", "enumerate", "filter", "frozenset", "list", "map", "max", "min",
        "reversed", "set", "sorted", "sum", "tuple", "zip",
    )
}  # fmt: skip

INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
    "<<=": operator.ilshift, ">>=": operator.irshift, "&=": operator.iand,
    "|=": operator.ior, "^=": operator.ixor,
}  # fmt: skip


def compile_job(code: str) -> CodeType:
    """Compile under RestrictedPython or raise JobRejected naming the lines at fault."""
    if not isinstance(code, str) or not code.strip():
        raise JobRejected("a job needs code", [Violation("empty_code")])
    if len(code) > MAX_CODE_CHARS:
        raise JobRejected(f"a job is at most {MAX_CODE_CHARS} characters", [Violation("too_long")])
    try:
        result = compile_restricted_exec(code, filename=FILENAME)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise JobRejected("the job could not be compiled", [Violation("syntax")]) from exc
    if result.errors or result.code is None:
        violations = [Violation("restricted", _line_of(error)) for error in result.errors]
        raise JobRejected(
            "the job uses Python outside the allowed subset", violations or [Violation("syntax")]
        )
    return result.code


def string_literals(code: str) -> frozenset[str]:
    """Every string constant written in the code (none if it does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    return frozenset(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def job_globals(functions: dict[str, Callable[..., Any]]) -> dict[str, Any]:
    """Fresh globals for one job: guarded builtins, hooks, and the enclave's functions."""
    builtins = {k: v for k, v in safe_builtins.items() if k not in REMOVED_BUILTINS}
    builtins.update(EXTRA_BUILTINS)
    builtins["__import__"] = _importer()
    return {
        # A dict of its own per job (CPython needs a real dict here); jobs cannot name it.
        "__builtins__": builtins,
        "__name__": "job",
        "_getattr_": safer_getattr,
        "_getitem_": operator.getitem,
        "_getiter_": iter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": full_write_guard,
        "_inplacevar_": _inplace,
        "_print_": _Discard,
        # No `_apply_`: calls with *args or **kwargs fail rather than pass through a hook.
        **functions,
    }


def _importer() -> Callable[..., SimpleNamespace]:
    proxies: dict[str, SimpleNamespace] = {}

    def guarded_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> SimpleNamespace:
        if level != 0 or name not in MODULES:
            raise ImportError(f"module {name!r} is not available to jobs")
        if name not in proxies:
            proxies[name] = SimpleNamespace(**_public(MODULES[name]))
        return proxies[name]

    return guarded_import


def _public(module: ModuleType) -> dict[str, Any]:
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    return {name: getattr(module, name) for name in names if not name.startswith("_")}


def _inplace(op: str, target: Any, value: Any) -> Any:
    if op not in INPLACE:
        raise SyntaxError(f"operator {op} is not supported")
    return INPLACE[op](target, value)


class _Discard:
    """`print` in a job: what it prints goes nowhere, so stdout can carry nothing out."""

    def __init__(self, _getattr_: Any = None) -> None:
        pass

    def _call_print(self, *objects: Any, **options: Any) -> None:
        pass


def _line_of(error: str) -> str | None:
    head = error.split(":", 1)[0]
    return head.lower() if head.startswith("Line ") else None
