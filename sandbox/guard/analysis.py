"""What the guard learns of a query: its tree, the assets and columns it touches, which scopes
release rows, and (once compiled) what the enclave runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlglot import exp

from sandbox.guard.compiled import CompiledQuery


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


def asset_id(table: exp.Table) -> str:
    """The asset a table names; SQL names are case-insensitive, asset ids lowercase."""
    return f"{table.db}.{table.name}".lower()
