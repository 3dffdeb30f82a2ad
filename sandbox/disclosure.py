"""The disclosure gate for query results: thresholds, an uninformative suppression count, caps."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Released:
    columns: list[str]
    rows: list[list]
    suppressed_rows: int
    notes: list[str] = field(default_factory=list)


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
    """Drop every row backed by fewer than `min_units` distinct units.

    Nothing about the dropped rows may depend on whether one person exists: withholding an
    extra row "to protect" them, or reporting how many there were, would answer exactly the
    question a narrow WHERE asks. So the count is rounded down to a multiple of `min_units`,
    which is zero for the handful of rows a targeted query leaves, and notes never vary with it.
    """
    position = columns.index(units_column)
    kept = [row for row in rows if _units(row[position]) >= min_units]
    dropped = len(rows) - len(kept)
    notes = [f"rows backed by fewer than {min_units} distinct units are never released"]
    if truncated:
        notes.append("the result was cut at the enclave's row limit before suppression")
    end = None if limit is None else offset + limit
    paged = kept[offset:end]
    if len(paged) > max_rows:
        paged = paged[:max_rows]
        notes.append(f"the result was cut to the policy's maximum of {max_rows} rows")
    out_columns = [name for name in columns if name != units_column]
    out_rows = [[v for i, v in enumerate(row) if i != position] for row in paged]
    return Released(out_columns, out_rows, dropped // min_units * min_units, notes)


def _units(value: object) -> float:
    return value if isinstance(value, int | float) and not math.isnan(value) else 0
