"""The disclosure gate on its own: thresholds, an uninformative count, paging and caps."""

from __future__ import annotations

from sandbox.disclosure import release

COLUMNS = ["group", "n", "veil_units"]


def _release(rows, **options):
    defaults = {"units_column": "veil_units", "min_units": 10, "max_rows": 100}
    return release(COLUMNS, rows, **(defaults | options))


def test_rows_below_threshold_are_dropped() -> None:
    rows = [["a", 50, 50], ["b", 20, 20], ["c", 10, 10], ["tiny", 2, 9]]
    released = _release(rows)
    assert released.columns == ["group", "n"]
    assert released.rows == [["a", 50], ["b", 20], ["c", 10]]


def test_the_count_never_reveals_a_few_small_rows() -> None:
    honest = _release([["a", 50, 50]])
    with_victim = _release([["a", 50, 50], ["victim", 1, 1]])
    assert honest == with_victim
    many = _release([["a", 50, 50]] + [[f"s{i}", 1, 1] for i in range(23)])
    assert many.suppressed_rows == 20


def test_single_small_global_row() -> None:
    released = _release([["all", 3, 3]])
    assert released.rows == [] and released.suppressed_rows == 0


def test_null_and_nan_unit_counts_are_suppressed() -> None:
    assert _release([["x", 0, None], ["y", 0, float("nan")]]).rows == []


def test_paging_after_suppression_and_row_cap() -> None:
    rows = [[f"g{i}", i, 100] for i in range(10)] + [["tiny", 1, 1]]
    released = _release(rows, limit=3, offset=2, max_rows=2)
    assert [row[0] for row in released.rows] == ["g2", "g3"]
    assert any("maximum" in note for note in released.notes)
