"""The disclosure gate for query results: thresholds, complementary suppression, row caps."""

from __future__ import annotations

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
    """Drop rows backed by fewer than `min_units` units, so that no difference can recover them.

    When some rows are suppressed, the suppressed set must itself hold at least `min_units`
    units; otherwise a total minus the visible rows would reveal it. The smallest released
    row is then withheld too: it alone holds `min_units` units, so the union does.
    """
    position = columns.index(units_column)
    kept = [row for row in rows if (row[position] or 0) >= min_units]
    suppressed = [row for row in rows if (row[position] or 0) < min_units]
    notes: list[str] = []
    if suppressed and kept:
        smallest = min(kept, key=lambda row: row[position])
        kept = [row for row in kept if row is not smallest]
        suppressed.append(smallest)
        notes.append("one more row was withheld so the suppressed rows cannot be derived")
    if suppressed:
        notes.append(
            f"{len(suppressed)} row(s) backed by fewer than {min_units} distinct units "
            "were suppressed"
        )
    if truncated:
        notes.append("the result was cut at the enclave's row limit before suppression")
    end = None if limit is None else offset + limit
    paged = kept[offset:end]
    if len(paged) > max_rows:
        paged = paged[:max_rows]
        notes.append(f"the result was cut to the policy's maximum of {max_rows} rows")
    out_columns = [name for name in columns if name != units_column]
    out_rows = [[v for i, v in enumerate(row) if i != position] for row in paged]
    return Released(out_columns, out_rows, len(suppressed), notes)
