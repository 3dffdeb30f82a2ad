"""The disclosure gate for query results: thresholds, dominance, paging and row caps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from sandbox.guard.dominance import LEAD_COLUMN, SHARE_COLUMN


@dataclass(frozen=True)
class Dominance:
    """The (n, k) and p% rules on sums and means, with SACRO/ACRO's defaults: a cell fails
    when its n largest units make up more than k of it, or when what is left after the two
    largest is less than p of the largest. At these defaults p% adds nothing to (2, 0.9);
    it bites when a policy loosens k or raises p."""

    n: int = 2
    k: float = 0.9
    p: float = 0.10

    def dominated(self, share: object, lead: object) -> bool:
        """Whether a row's cells fail either rule; shares the enclave could not compute do."""
        if not all(type(v) in (int, float) and math.isfinite(v) for v in (share, lead)):
            return True
        return share > self.k or lead > 1 / (1 + self.p)  # type: ignore[operator]

    def note(self) -> str:
        return (
            f"sums and means are withheld where the {self.n} largest units make up more than "
            f"{self.k:.0%}, or the rest is under {self.p:.0%} of the largest"
        )


@dataclass(frozen=True)
class Released:
    columns: list[str]
    rows: list[list]
    suppressed_rows: int
    notes: list[str] = field(default_factory=list)
    # Distinct units behind each released row: never shown, but a job's outputs are checked
    # against them.
    units: list[int] = field(default_factory=list)
    # Whether each released row failed the dominance rules (its sums and means withheld).
    dominated: list[bool] = field(default_factory=list)
    withheld_cells: int = 0


def release(
    columns: list[str],
    rows: list[list],
    *,
    units_column: str,
    min_units: int,
    max_rows: int,
    limit: int | None = None,
    offset: int = 0,
    truncated: bool = False,
    dominance: Dominance | None = None,
    magnitudes: Sequence[bool] = (),
) -> Released:
    """Release rows backed by at least `min_units` distinct units, paged and capped.

    The compiled SQL already drops smaller groups inside DuckDB: nothing about them may reach
    this point, because whether one person's group exists is exactly what a narrow WHERE asks.
    This gate checks again and counts anything it still had to drop (normally zero).

    With `dominance`, the SQL carried each row's dominance shares; a row that fails loses
    its sum and mean cells (`magnitudes` marks those columns) before anything sees them.
    """
    position = columns.index(units_column)
    kept = [row for row in rows if _units(row[position]) >= min_units]
    notes = [
        f"rows backed by fewer than {min_units} distinct units are neither released nor counted"
    ]
    if truncated:
        notes.append("the result was cut at the enclave's row limit")
    end = None if limit is None else offset + limit
    paged = kept[offset:end]
    if len(paged) > max_rows:
        paged = paged[:max_rows]
        notes.append(f"the result was cut to the policy's maximum of {max_rows} rows")
    hidden = {units_column, SHARE_COLUMN, LEAD_COLUMN}
    shown = [i for i, name in enumerate(columns) if name not in hidden]
    out_columns = [columns[i] for i in shown]
    out_rows = [[row[i] for i in shown] for row in paged]
    units = [int(_units(row[position])) for row in paged]
    if dominance is None:
        dominated = [False] * len(out_rows)
        return Released(out_columns, out_rows, len(rows) - len(kept), notes, units, dominated)
    share, lead = columns.index(SHARE_COLUMN), columns.index(LEAD_COLUMN)
    dominated = [dominance.dominated(row[share], row[lead]) for row in paged]
    withheld = 0
    for row, failed in zip(out_rows, dominated, strict=True):
        for i, magnitude in enumerate(magnitudes):
            if failed and magnitude and row[i] is not None:
                row[i] = None
                withheld += 1
    if withheld:
        notes.append(dominance.note())
    # The engine ordered rows by every column, withheld sums too; the released values alone
    # decide the order now, so where a row stands says nothing about what it lost.
    ordered = sorted(zip(out_rows, units, dominated, strict=True), key=lambda r: _order(r[0]))
    return Released(
        out_columns,
        [row for row, _, _ in ordered],
        len(rows) - len(kept),
        notes,
        [count for _, count, _ in ordered],
        [failed for _, _, failed in ordered],
        withheld,
    )


def _order(row: list) -> tuple:
    return tuple((value is not None, type(value).__name__, value) for value in row)


def _units(value: object) -> float:
    return value if isinstance(value, int | float) and not math.isnan(value) else 0
