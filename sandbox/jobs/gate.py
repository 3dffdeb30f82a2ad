"""The compile gate: job code becomes RestrictedPython bytecode run with every guard in place.

Jobs see only the builtins below, the module proxies of `modules.py`, and the plain functions
the enclave hands in (`sql`, `publish`, helpers). Every attribute read goes through the
allow-list of `attributes.py`; every exception a job catches is replaced by a blank one of
the same type, so nothing the host put in it (an object, a name, arguments, a traceback)
reaches the job. This is the first wall; the OS seal around the process is the second.
"""

from __future__ import annotations

import ast
import builtins as python_builtins
import collections
import operator
from collections.abc import Callable
from types import CodeType
from typing import Any

from RestrictedPython import RestrictingNodeTransformer, compile_restricted_exec
from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
)

from sandbox.errors import JobRejected, Violation
from sandbox.jobs.attributes import read_attribute
from sandbox.jobs.checks import message, parsed, static_violations
from sandbox.jobs.modules import importer
from sandbox.jobs.sets import SET_OPERATORS, FrozenSet, Set, checked, operate, operate_in_place
from sandbox.jobs.text import Text, formatted, shown, text_repr

MAX_CODE_CHARS = 100_000
FILENAME = "<job>"

# RestrictedPython's safe builtins, less those a job has no use for: classes (which need
# `__build_class__`), attribute setters, and identities of host objects.
REMOVED_BUILTINS = frozenset({"__build_class__", "_getattr_", "setattr", "delattr", "id", "hash"})
EXTRA_BUILTINS: dict[str, Any] = {
    name: getattr(python_builtins, name)
    for name in (
        "all", "any", "dict", "enumerate", "filter", "list", "map", "max", "min", "reversed",
        "sorted", "sum", "tuple", "zip",
    )
}  # fmt: skip

INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
    "<<=": operator.ilshift, ">>=": operator.irshift, "&=": operator.iand,
    "|=": operator.ior, "^=": operator.ixor,
}  # fmt: skip


def compile_job(code: str) -> CodeType:
    """Compile under RestrictedPython or raise JobRejected naming each import, name,
    attribute or line at fault (`checks.py`): nothing is run or charged for it."""
    if not isinstance(code, str) or not code.strip():
        raise JobRejected("a job needs code", [Violation("empty_code")])
    if len(code) > MAX_CODE_CHARS:
        raise JobRejected(f"a job is at most {MAX_CODE_CHARS} characters", [Violation("too_long")])
    tree = parsed(code)
    if isinstance(tree, Violation):
        raise JobRejected(message([tree]), [tree])
    violations = static_violations(tree, GIVEN_NAMES)
    try:
        result = compile_restricted_exec(code, filename=FILENAME, policy=_JobTransformer)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        line = getattr(exc, "lineno", None)
        violations.append(Violation("syntax", line=line if isinstance(line, int) else None))
    else:
        # The compiler's own refusals, where the checks above named nothing on their line.
        named = {violation.line for violation in violations}
        lines = [_line_of(error) for error in result.errors]
        violations += [Violation("restricted", line=line) for line in dict.fromkeys(lines)
                       if line is None or line not in named]  # fmt: skip
        if result.code is None and not violations:
            violations.append(Violation("syntax"))
    if violations:
        raise JobRejected(message(violations), violations)
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


def job_builtins() -> dict[str, Any]:
    """A fresh set of the builtins a job sees: RestrictedPython's safe ones, guarded."""
    builtins = {k: v for k, v in safe_builtins.items() if k not in REMOVED_BUILTINS}
    builtins.update(EXTRA_BUILTINS)
    builtins.update(
        {"__import__": importer(), "repr": text_repr, "str": Text, "set": Set,
         "frozenset": FrozenSet}
    )  # fmt: skip
    return builtins


def job_globals(functions: dict[str, Callable[..., Any]]) -> dict[str, Any]:
    """Fresh globals for one job: guarded builtins, hooks, and the enclave's functions."""
    return {
        # A dict of its own per job (CPython needs a real dict here); jobs cannot name it.
        "__builtins__": job_builtins(),
        "__name__": "job",
        "_getattr_": read_attribute,
        "_getitem_": operator.getitem,
        "_getiter_": iter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": _writable,
        "_inplacevar_": _inplace,
        "_print_": _Discard,
        EXCEPTION_HOOK: blank_exception,
        SHOWN_HOOK: shown,
        FORMAT_HOOK: formatted,
        SET_HOOK: checked,
        OPERATOR_HOOK: operate,
        # No `_apply_`: calls with *args or **kwargs fail rather than pass through a hook.
        **functions,
    }


# Containers a job builds itself; item assignment on anything else is refused.
WRITABLE = (list, dict, set, collections.Counter, collections.OrderedDict,
            collections.defaultdict, collections.deque)  # fmt: skip
CODED_EXCEPTIONS: list[type[BaseException]] = []


def blank_exception(caught: BaseException) -> BaseException:
    """What `except ... as name` binds: a new exception of the caught type, holding nothing.

    Exceptions the enclave raises to tell a job a stable code (`coded_exception`) keep it.
    """
    kind = type(caught)
    if kind in CODED_EXCEPTIONS and len(caught.args) == 1 and type(caught.args[0]) is str:
        return kind(caught.args[0])
    try:
        blank = kind.__new__(kind)
    except Exception:  # noqa: BLE001 - a type that cannot be made blank becomes a plain one
        return Exception()
    return blank if type(blank) is kind else Exception()


def coded_exception(kind: type[BaseException]) -> type[BaseException]:
    """Mark an exception type whose single string argument (a stable code) a job may read."""
    CODED_EXCEPTIONS.append(kind)
    return kind


def _writable(target: Any) -> Any:
    if type(target) in WRITABLE:
        return target
    raise TypeError("only lists, dicts and sets a job built can be written to")


EXCEPTION_HOOK = "_exception_"
SHOWN_HOOK = "_shown_"
FORMAT_HOOK = "_format_"
SET_HOOK = "_set_"
OPERATOR_HOOK = "_operate_"
SYMBOLS = {ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^", ast.Sub: "-"}


class _JobTransformer(RestrictingNodeTransformer):
    """RestrictedPython's checks; a blank exception bound in every named handler; every
    f-string field and `%` formatting through `text.py`; every set a job makes, and the
    operators that make sets, through `sets.py`; no keyword argument named `_…`."""

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:
        node = super().visit_FormattedValue(node)
        node.value = _hook_call(SHOWN_HOOK, [node.value], node.value)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = super().visit_BinOp(node)
        if isinstance(node.op, ast.Mod):
            return _hook_call(FORMAT_HOOK, [node.left, node.right], node)
        if type(node.op) in SYMBOLS:
            symbol = ast.Constant(SYMBOLS[type(node.op)])
            return _hook_call(OPERATOR_HOOK, [symbol, node.left, node.right], node)
        return node

    def visit_Set(self, node: ast.Set) -> Any:
        return _hook_call(SET_HOOK, [super().visit_Set(node)], node)

    def visit_SetComp(self, node: ast.SetComp) -> Any:
        return _hook_call(SET_HOOK, [super().visit_SetComp(node)], node)

    def visit_keyword(self, node: ast.keyword) -> Any:
        if node.arg is not None and node.arg.startswith("_"):
            self.error(node, f'"{node.arg}" is an invalid keyword argument name')
        return super().visit_keyword(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> Any:
        node = super().visit_ExceptHandler(node)
        if node.name:
            rebind = ast.Assign(
                targets=[ast.Name(node.name, ast.Store())],
                value=ast.Call(
                    ast.Name(EXCEPTION_HOOK, ast.Load()), [ast.Name(node.name, ast.Load())], []
                ),
            )
            node.body.insert(0, ast.copy_location(rebind, node))
            ast.fix_missing_locations(node)
        return node


def _hook_call(hook: str, arguments: list[ast.expr], where: ast.AST) -> ast.Call:
    call = ast.Call(ast.Name(hook, ast.Load()), arguments, [])
    return ast.fix_missing_locations(ast.copy_location(call, where))


def _inplace(op: str, target: Any, value: Any) -> Any:
    if op == "%=":
        return formatted(target, value)
    if op[:-1] in SET_OPERATORS:
        return operate_in_place(op[:-1], target, value)
    if op not in INPLACE:
        raise SyntaxError(f"operator {op} is not supported")
    return INPLACE[op](target, value)


class _Discard:
    """`print` in a job: what it prints goes nowhere, so stdout can carry nothing out."""

    def __init__(self, _getattr_: Any = None) -> None:
        pass

    def _call_print(self, *objects: Any, **options: Any) -> None:
        pass


def _line_of(error: str) -> int | None:
    """The line RestrictedPython's error text starts with ("Line 3: …"), if any."""
    head = error.split(":", 1)[0]
    number = head.removeprefix("Line ")
    return int(number) if head.startswith("Line ") and number.isdigit() else None


# What a job can name without defining it: its builtins. The enclave's functions (`sql`,
# `publish`, the helpers) are not Python builtins, so the checks never mistake them for one.
GIVEN_NAMES = frozenset(job_builtins())
