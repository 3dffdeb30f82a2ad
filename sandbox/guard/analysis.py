"""What the guard learns of a query: its tree, the assets and columns it touches, which scopes
release rows, and (once compiled) what the enclave runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from sandbox.guard.compiled import CompiledQuery
from sandbox.guard.syntax import AGGREGATES


class Kind(StrEnum):
    """Aggregate scopes release rows; row scopes only feed them."""

    AGGREGATE = "aggregate"
    ROW = "row"


@dataclass
class Analysis:
    """A parsed, qualified, role-checked query and what it touches."""

    tree: exp.Query
    assets: list[str]
    columns: dict[str, list[str]]
    kinds: dict[int, Kind] = field(default_factory=dict)
    compiled: CompiledQuery | None = None
    # Its differentially private plans, by their contribution bounds (`sandbox.enclave`).
    private: dict[object, object] = field(default_factory=dict, compare=False, repr=False)


def asset_id(table: exp.Table) -> str:
    """The asset a table names; SQL names are case-insensitive, asset ids lowercase."""
    return f"{table.db}.{table.name}".lower()


def single_asset(scope: Scope) -> str | None:
    """The one asset a scope's rows come from, each at most once (no join, and through
    subqueries that only filter and compute per row), or None."""
    select = scope.expression
    if (
        not isinstance(select, exp.Select)
        or select.args.get("joins")
        or select.args.get("laterals")
    ):
        return None
    sources = list(scope.selected_sources.values())
    if len(sources) != 1:
        return None
    _, source = sources[0]
    if isinstance(source, exp.Table):
        return asset_id(source)
    inner = source.expression if isinstance(source, Scope) else None
    if not isinstance(inner, exp.Select) or inner.args.get("group") or inner.find(*AGGREGATES):
        return None
    return single_asset(source)
