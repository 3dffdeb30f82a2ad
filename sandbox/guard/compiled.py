"""A compiled query: the checked, rewritten tree, and the SQL the enclave runs for a threshold."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from sandbox.guard.dominance import DOMINANCE_COLUMNS, add_dominance
from sandbox.guard.syntax import DIALECT

# The hidden column every released select carries: its count of distinct privacy units.
UNITS_COLUMN = "veil_units"


@dataclass(frozen=True)
class CompiledQuery:
    """The checked and rewritten tree, and the paging applied after suppression."""

    tree: exp.Query
    limit: int | None
    offset: int
    # Per released column: whether it is computed from a SUM or AVG (dominance applies).
    magnitudes: tuple[bool, ...] = ()
    _generated: dict[tuple[int, int | None], str] = field(
        default_factory=dict, compare=False, repr=False
    )

    def sql(self, min_units: int, dominance_top: int | None = None) -> str:
        """The SQL to run. Rows below the threshold are dropped inside DuckDB, so no cap, order
        or count applied later can depend on them. With `dominance_top`, every row also
        carries its dominance shares for that many largest units (see `guard.dominance`)."""
        key = (min_units, dominance_top)
        if key not in self._generated:
            self._generated[key] = self._generate(min_units, dominance_top)
        return self._generated[key]

    def _generate(self, min_units: int, dominance_top: int | None) -> str:
        tree = self.tree.copy()
        hidden = 1
        for select, units in released_selects(tree):
            enough = exp.GTE(this=units.copy(), expression=exp.Literal.number(min_units))
            select.having(enough, copy=False)
            if dominance_top is not None:
                add_dominance(select, units, dominance_top)
                hidden = 1 + len(DOMINANCE_COLUMNS)
        # Rows come out in an order set by their values alone: left to DuckDB, groups and ties
        # would come out in the order their first rows were read, which is one person's data.
        released = range(1, len(tree.selects) + 1 - hidden)
        tree.order_by(*(exp.Literal.number(i) for i in released), copy=False)
        return tree.sql(dialect=DIALECT, identify=True)


def released_selects(tree: exp.Query) -> list[tuple[exp.Select, exp.Expression]]:
    """Each select that releases rows, with its distinct-unit count."""
    found = []
    for select in tree.find_all(exp.Select):
        units = next((p for p in select.expressions if p.alias == UNITS_COLUMN), None)
        if units is not None:
            found.append((select, units.this))
    return found
