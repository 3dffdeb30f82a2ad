"""The terms of a private query: what one unit may contribute, and what is released with noise."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

UNITS_COLUMN = "veil_units"
GROUP_ID = "veil_group"
# Beyond this many combinations a public domain is not enumerated; partition selection is used.
MAX_PUBLIC_GROUPS = 10_000


class Measure(StrEnum):
    ROWS = "rows"  # COUNT(*) and COUNT(x)
    UNITS = "units"  # COUNT(DISTINCT privacy unit)
    SUM = "sum"
    QUANTILE = "quantile"  # MEDIAN and QUANTILE_CONT: from a histogram, not a per-unit total


# A quantile is chosen among this many values evenly spread over the measure's bounds.
QUANTILE_CANDIDATES = 201


@dataclass(frozen=True)
class Contribution:
    """Public bounds on one unit: groups of an answer its rows fall in, rows in each group;
    or, where the asset was checked to hold at most `rows_per_unit` rows of any unit, those
    rows, aggregated as they are (`max_rows` is then 1 and `max_groups` at most that many)."""

    max_groups: int = 1
    max_rows: int = 1
    rows_per_unit: int | None = None


@dataclass(frozen=True)
class Component:
    """One exact aggregate computed per group, then released with noise."""

    measure: Measure
    column: str | None = None
    # A sum's measure bounds: each unit's total in a group is clamped to them.
    bounds: tuple[float, float] = (0.0, 1.0)
    # The fraction a quantile asks for.
    fraction: float = 0.5
    # A centred sum adds each unit's clamped total less the bounds' midpoint; a unit without
    # a value adds 0 when `present_only`, else 0 clamped to the bounds, less the midpoint.
    centred: bool = False
    present_only: bool = False

    @property
    def candidates(self) -> list[float]:
        low, high = self.bounds
        steps = QUANTILE_CANDIDATES - 1
        return [low + (high - low) * i / steps for i in range(QUANTILE_CANDIDATES)]

    def sensitivity(self, contribution: Contribution) -> float:
        """How much one unit moves this aggregate across all groups (the L1 sensitivity): a
        count by one per group for units, by its rows for rows; a sum by its clamped total."""
        if self.measure is Measure.UNITS:
            return contribution.max_groups
        if contribution.rows_per_unit is not None:
            # Each of the unit's rows, wherever it falls, moves a count by one and a sum by
            # its clamped value.
            return contribution.rows_per_unit * self._row_bound
        if self.measure in (Measure.ROWS, Measure.QUANTILE):
            return contribution.max_groups * contribution.max_rows
        return contribution.max_groups * self._row_bound

    @property
    def _row_bound(self) -> float:
        """How much one row (or, bounded per unit, one unit's total in a group) moves this."""
        if self.measure in (Measure.ROWS, Measure.QUANTILE):
            return 1
        low, high = self.bounds
        if self.centred:
            return (high - low) / 2
        return max(abs(low), abs(high))


@dataclass(frozen=True)
class Output:
    """What one released column is, for its accuracy: one aggregate, a mean, or derived."""

    kind: str  # "count", "sum", "mean", "key", "derived"
    components: tuple[int, ...] = ()
    bounds: tuple[float, float] | None = None
