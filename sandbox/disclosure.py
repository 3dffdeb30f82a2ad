"""The disclosure gate for query results: thresholds, paging and row caps."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Released:
    columns: list[str]
    rows: list[list]
    suppressed_rows: int
    notes: list[str] = field(default_factory=list)
    # Distinct units behind each released row: never shown, but a job's outputs are checked
    # against them.
    units: list[int] = field(default_factory=list)


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
) -> Released:
    """Release rows backed by at least `min_units` distinct units, paged and capped.

    The compiled SQL already drops smaller groups inside DuckDB: nothing about them may reach
    this point, because whether one person's group exists is exactly what a narrow WHERE asks.
    This gate checks again and counts anything it still had to drop (normally zero).
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
    out_columns = [name for name in columns if name != units_column]
    out_rows = [[v for i, v in enumerate(row) if i != position] for row in paged]
    units = [int(_units(row[position])) for row in paged]
    return Released(out_columns, out_rows, len(rows) - len(kept), notes, units)


def _units(value: object) -> float:
    return value if isinstance(value, int | float) and not math.isnan(value) else 0
