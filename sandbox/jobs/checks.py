"""What a job's code is refused for before it runs, each named with its line: syntax, imports
outside the allow-list, names and builtins jobs are not given, and hidden attributes.

RestrictedPython's compiler stays the authority on what compiles; these checks run on the
parsed code beside it so that a refusal can say what and where in the developer's own terms.
Everything they report comes from the submitted text alone.
"""

from __future__ import annotations

import ast
import builtins as python_builtins

from RestrictedPython.transformer import FORBIDDEN_FUNC_NAMES, INSPECT_ATTRIBUTES

from sandbox.errors import Violation
from sandbox.jobs.modules import OFFERED

# Longest name echoed back; a longer one is cut, so an error stays readable.
MAX_ECHOED = 80
# Violations one message lists at most; the rest are counted.
MAX_LISTED = 5

RULES: dict[str, tuple[str, str]] = {
    "empty_code": ("the job has no code", "send the job's Python source"),
    "too_long": ("the job is longer than jobs may be", "shorten it"),
    "syntax": ("the job is not valid Python", "correct its syntax"),
    "import_not_allowed": (
        "importing {name} is not allowed",
        "jobs import math, statistics, decimal, fractions, itertools and collections, "
        "vetted names only",
    ),
    "name_not_allowed": (
        "{name} is not available to jobs",
        "names starting with _ and builtins such as getattr, type, open or eval are not given",
    ),
    "attribute_not_allowed": (
        "attribute {name} is not allowed",
        "attributes starting with _, and those of frames and code, are never readable",
    ),
    "restricted": (
        "this is Python outside the allowed subset",
        "docs/jobs.md lists what a job may use",
    ),
}


def parsed(code: str) -> ast.Module | Violation:
    """The code's syntax tree, or the syntax violation with where Python stopped."""
    try:
        return ast.parse(code)
    except SyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) else None
        col = exc.offset if isinstance(exc.offset, int) and line else None
        return Violation("syntax", line=line, col=col)
    except (ValueError, RecursionError, MemoryError):
        return Violation("syntax")


def static_violations(tree: ast.Module, given: frozenset[str]) -> list[Violation]:
    """Imports outside the allow-list, names outside `given` (the job's builtins and functions)
    that Python would look up among its own builtins, and hidden names and attributes."""
    python_names = {name for name in dir(python_builtins) if not name.startswith("_")}
    # RestrictedPython turns print into a discarding hook, so it is given in effect.
    unavailable = python_names - given - _bound_names(tree) - {"print"}
    found: list[Violation] = []
    for node in ast.walk(tree):
        found += _node_violations(node, unavailable)
    return sorted(dict.fromkeys(found), key=lambda v: (v.line or 0, v.rule, v.name or ""))


def message(violations: list[Violation]) -> str:
    """What is wrong where, in words; what to do when there is one kind of problem."""
    parts = []
    for violation in violations[:MAX_LISTED]:
        meaning = RULES.get(violation.rule, (violation.rule.replace("_", " "), ""))[0]
        text = meaning.format(name=f'"{violation.name}"')
        where = f"line {violation.line}" if violation.line else ""
        if where and violation.col:
            where += f", column {violation.col}"
        parts.append(f"{where}: {text}" if where else text)
    if len(violations) > MAX_LISTED:
        parts.append(f"and {len(violations) - MAX_LISTED} more")
    text = "; ".join(parts)
    rules = {violation.rule for violation in violations}
    if len(rules) == 1 and (rule := rules.pop()) in RULES:
        text += f" ({RULES[rule][1]})"
    return text


def _node_violations(node: ast.AST, unavailable: set[str]) -> list[Violation]:
    line = getattr(node, "lineno", None)
    if isinstance(node, ast.Import):
        return [
            Violation("import_not_allowed", name=_echoed(alias.name), line=line)
            for alias in node.names
            if alias.name not in OFFERED
        ]
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        if node.level or module not in OFFERED:
            return [Violation("import_not_allowed", name=_echoed("." * node.level + module),
                              line=line)]  # fmt: skip
        return [
            Violation("import_not_allowed", name=_echoed(f"{module}.{alias.name}"), line=line)
            for alias in node.names
            if alias.name not in OFFERED[module]
        ]
    if isinstance(node, ast.Name) and (_hidden(node.id) or node.id in unavailable):
        return [Violation("name_not_allowed", name=_echoed(node.id), line=line)]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and _hidden(
        node.name
    ):
        return [Violation("name_not_allowed", name=_echoed(node.name), line=line)]
    if isinstance(node, ast.arg) and _hidden(node.arg):
        return [Violation("name_not_allowed", name=_echoed(node.arg), line=line)]
    if isinstance(node, ast.Attribute) and (_hidden(node.attr) or node.attr in INSPECT_ATTRIBUTES):
        return [Violation("attribute_not_allowed", name=_echoed(node.attr), line=line)]
    return []


def _hidden(name: str) -> bool:
    """Names RestrictedPython refuses: underscored, role names, and its reserved ones."""
    return (
        (name.startswith("_") and name != "_")
        or name.endswith("__roles__")
        or (name in FORBIDDEN_FUNC_NAMES and name != "print")
    )


def _bound_names(tree: ast.Module) -> set[str]:
    """Every name the code itself binds anywhere, so its own `input = …` is not a builtin."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return bound


def _echoed(name: str) -> str:
    return name if len(name) <= MAX_ECHOED else name[: MAX_ECHOED - 1] + "…"
