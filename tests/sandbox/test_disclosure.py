"""The disclosure gate on its own: thresholds, complementary suppression, paging and caps."""

from __future__ import annotations

from sandbox.disclosure import release

COLUMNS = ["group", "n", "veil_units"]


def _release(rows, **options):
    defaults = {"units_column": "veil_units", "min_units": 10, "max_rows": 100}
    return release(COLUMNS, rows, **(defaults | options))


def test_rows_below_threshold_are_dropped_with_one_more() -> None:
    rows = [["a", 50, 50], ["b", 20, 20], ["c", 30, 30], ["tiny", 2, 2]]
    released = _release(rows)
    assert released.columns == ["group", "n"]
    assert released.rows == [["a", 50], ["c", 30]]
    assert released.suppressed_rows == 2
    assert len(released.notes) == 2


def test_total_minus_visible_never_isolates_a_small_cell() -> None:
    rows = [["a", 50, 50], ["b", 20, 20], ["tiny", 2, 2]]
    total = sum(row[1] for row in rows)
    visible = sum(row[1] for row in _release(rows).rows)
    assert total - visible != 2


def test_nothing_suppressed_keeps_everything() -> None:
    rows = [["a", 50, 50], ["b", 20, 20]]
    released = _release(rows)
    assert released.rows == [["a", 50], ["b", 20]] and released.suppressed_rows == 0
    assert released.notes == []


def test_single_small_global_row() -> None:
    released = _release([["all", 3, 3]])
    assert released.rows == [] and released.suppressed_rows == 1


def test_null_unit_counts_are_suppressed() -> None:
    assert _release([["x", 0, None]]).rows == []


def test_paging_after_suppression_and_row_cap() -> None:
    rows = [[f"g{i}", i, 100] for i in range(10)] + [["tiny", 1, 1]]
    released = _release(rows, limit=3, offset=2, max_rows=2)
    assert [row[0] for row in released.rows] == ["g3", "g4"]
    assert any("maximum" in note for note in released.notes)
