"""A compiled query: the checked, rewritten tree, and the SQL the enclave runs for a threshold."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from sandbox.guard.dominance import DOMINANCE_COLUMNS, add_dominance
from sandbox.guard.syntax import DIALECT

# The hidden column every released select carries: its count of distinct privacy units.
UNITS_COLUMN = "veil_units"
# Marks a released select whose rows come from one asset checked to hold at most this many
# rows of any unit (`sandbox.store`).
ROWS_PER_UNIT = "veil_rows_per_unit"
# Marks a released select whose unit counts at only these positions can differ (the others'
# units are held equal to one of them on every row): its threshold counts only those.
DISTINCT_UNITS = "veil_distinct_units"
# The most unit values a group keeps to decide its threshold; beyond, every unit is counted.
MOST_KEPT = 65_536


@dataclass(frozen=True)
class CompiledQuery:
    """The checked and rewritten tree, and the paging applied after suppression."""

    tree: exp.Query
    limit: int | None
    offset: int
    # Per released column: whether it is computed from a SUM or AVG (dominance applies).
    magnitudes: tuple[bool, ...] = ()
    # Set where the query releases one group (no GROUP BY) of one asset checked to hold at
    # most this many rows of any unit: its threshold may be decided from its rows first.
    rows_per_unit: int | None = None
    _generated: dict[tuple[int, int | None, bool], str] = field(
        default_factory=dict, compare=False, repr=False
    )

    def sql(self, min_units: int, dominance_top: int | None = None, by_rows: bool = False) -> str:
        """The SQL to run. Rows below the threshold are dropped inside DuckDB, so no cap, order
        or count applied later can depend on them. With `dominance_top`, every row also
        carries its dominance shares for that many largest units (see `guard.dominance`).

        With `by_rows` (only where `rows_per_unit` is set), the group passes on its rows alone
        and no unit is read: it returns the group only if it has more than `min_units` times
        `rows_per_unit` rows, which guarantees that many units (`_from_rows`). Without the
        group, the SQL without `by_rows` decides it exactly."""
        key = (min_units, dominance_top, by_rows)
        if key not in self._generated:
            self._generated[key] = self._generate(min_units, dominance_top, by_rows)
        return self._generated[key]

    def _generate(self, min_units: int, dominance_top: int | None, by_rows: bool) -> str:
        by_rows_per_unit = self.rows_per_unit if by_rows else None
        if by_rows and (by_rows_per_unit is None or dominance_top is not None):
            raise ValueError("only one group of a checked asset is decided by rows")
        tree = self.tree.copy()
        hidden = 1
        for select, units in released_selects(tree):
            checked = select.meta.get(ROWS_PER_UNIT)
            if by_rows_per_unit is not None:
                units = _from_rows(units, by_rows_per_unit)
            elif checked is not None and dominance_top is None and min_units * checked <= MOST_KEPT:
                units = _at_least(units, min_units * checked)
            distinct = select.meta.get(DISTINCT_UNITS)
            if distinct is not None and dominance_top is None and by_rows_per_unit is None:
                units = _only(units, distinct)
            enough = exp.GTE(this=units.copy(), expression=exp.Literal.number(min_units))
            select.having(enough, copy=False)
            if dominance_top is not None:
                add_dominance(select, units, dominance_top)
                hidden = 1 + len(DOMINANCE_COLUMNS)
        # Rows come out in an order set by their values alone: left to DuckDB, groups and ties
        # would come out in the order their first rows were read, which is one person's data.
        released = range(1, len(tree.selects) + 1 - hidden)
        tree.order_by(*(exp.Literal.number(i) for i in released), copy=False)
        return tree.sql(dialect=DIALECT, identify=True, copy=False)


def _at_least(units: exp.Expression, smallest: int) -> exp.Expression:
    """The distinct units among a group's `smallest` smallest unit values, in place of the
    count of all of them. Where no unit has more than `smallest / k` rows this is the exact
    count below k and at least k from k on: whether a group passes is decided exactly, without
    a set of every unit of every large group (a top-n heap instead)."""
    if not isinstance(units, exp.Count) or not isinstance(units.this, exp.Distinct):
        return units
    (unit,) = units.this.expressions
    lowest = exp.func("MIN", unit.copy(), exp.Literal.number(smallest))
    counted = exp.func("LEN", exp.func("LIST_DISTINCT", lowest))
    units.replace(counted)
    return counted


def _from_rows(units: exp.Expression, rows_per_unit: int) -> exp.Expression:
    """A lower bound on the group's distinct units from its row count n alone, in place of
    counting them: (n - 1) // R where no unit has more than R rows. At most R rows have no
    unit (they were checked as one unit's), and each unit has at most R rows, so the other
    n - R rows or more have at least ceil((n - R) / R) = ceil(n / R) - 1 units; for n >= 1
    that is (n - 1) // R (for n = 0, -1 // R is 0 or -1). The bound reaches k only for more
    than k x R rows, where the group has at least k units however its rows fall."""
    rows = exp.Sub(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1))
    bound = exp.IntDiv(this=exp.Paren(this=rows), expression=exp.Literal.number(rows_per_unit))
    units.replace(bound)
    return bound


def one_checked_group(tree: exp.Query) -> int | None:
    """The checked rows per unit of the one asset behind a query that releases exactly one
    group: the whole query is one released select, without GROUP BY, over one asset whose
    data was checked against its card's `privacy.max_rows_per_unit` (`ROWS_PER_UNIT`)."""
    released = released_selects(tree)
    if len(released) != 1:
        return None
    select, _ = released[0]
    if select is not tree or select.args.get("group") is not None:
        return None
    return select.meta.get(ROWS_PER_UNIT)


def _only(units: exp.Expression, positions: tuple[int, ...]) -> exp.Expression:
    """The least of the unit counts at `positions` alone, in place of the least of all."""
    if not isinstance(units, exp.Least):
        return units
    counts = [units.this, *units.expressions]
    kept = [counts[i].copy() for i in positions]
    fewer = kept[0] if len(kept) == 1 else exp.Least(this=kept[0], expressions=kept[1:])
    units.replace(fewer)
    return fewer


def released_selects(tree: exp.Query) -> list[tuple[exp.Select, exp.Expression]]:
    """Each select that releases rows, with its distinct-unit count."""
    found = []
    for select in tree.find_all(exp.Select):
        units = next((p for p in select.expressions if p.alias == UNITS_COLUMN), None)
        if units is not None:
            found.append((select, units.this))
    return found
