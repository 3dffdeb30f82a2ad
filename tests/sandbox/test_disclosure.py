"""The disclosure gate on its own: the second threshold check, paging and caps."""

from __future__ import annotations

from sandbox.disclosure import release

COLUMNS = ["group", "n", "veil_units"]


def _release(rows, **options):
    defaults = {"units_column": "veil_units", "min_units": 10, "max_rows": 100}
    return release(COLUMNS, rows, **(defaults | options))


def test_rows_below_threshold_never_pass() -> None:
    rows = [["a", 50, 50], ["b", 20, 20], ["c", 10, 10], ["tiny", 2, 9]]
    released = _release(rows)
    assert released.columns == ["group", "n"]
    assert released.rows == [["a", 50], ["b", 20], ["c", 10]]
    assert released.suppressed_rows == 1


def test_notes_do_not_depend_on_small_rows() -> None:
    assert _release([["a", 50, 50]]).notes == _release([["a", 50, 50], ["x", 1, 1]]).notes


def test_null_and_nan_unit_counts_are_dropped() -> None:
    assert _release([["x", 0, None], ["y", 0, float("nan")]]).rows == []


def test_paging_and_row_cap() -> None:
    rows = [[f"g{i}", i, 100] for i in range(10)]
    released = _release(rows, limit=3, offset=2, max_rows=2)
    assert [row[0] for row in released.rows] == ["g2", "g3"]
    assert any("maximum" in note for note in released.notes)
