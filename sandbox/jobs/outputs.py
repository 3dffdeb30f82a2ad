"""The disclosure gate on what a job publishes: typed tables, checked against what it was told.

Defaults follow SACRO/ACRO and OpenSAFELY: counts below 10 are suppressed (ACRO's threshold,
stricter than OpenSAFELY's 7) and the rest rounded to 5; when suppressed cells in a column add
up to less than the threshold, the next smallest is suppressed too, so a margin cannot give
them back; other statistics keep four significant figures; minimum and maximum are never
released; labels must be values the enclave itself released to the job; table and column
names must be string literals of the job's code; and every row must stand on at least the
threshold of distinct units, counted by the enclave for the answer rows its labels came from.
Sums, means and other statistics fall under the dominance rules ((n, k) = (2, 0.9) and
p% = 10%): the enclave withholds them from any answer row that fails, so a job never holds
such a value; a published statistic whose labels lead back to such a row is suppressed as
well, since the job could only have rebuilt it from what surrounds it (a total less the other
groups). The policy's obligations can only make these stricter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sandbox.errors import SandboxError, Violation
from sandbox.jobs.runner import Answer, Published

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
KINDS = ("label", "count", "sum", "mean", "statistic", "min", "max")
REDACTED_KINDS = ("min", "max")
MAGNITUDE_KINDS = ("sum", "mean")
# A job declares its own kinds, so a sum called a statistic is judged like a sum.
DOMINANCE_KINDS = ("sum", "mean", "statistic")
MAX_LABEL_CHARS = 200


@dataclass(frozen=True)
class OutputRules:
    """Thresholds of the gate; `tightened` applies a policy's obligations."""

    min_count: int = 10
    round_base: int = 5
    significant_figures: int = 4
    max_rows: int = 5000
    max_columns: int = 100
    # Column names a table may never carry: the assets' privacy units and identifiers.
    forbidden_names: frozenset[str] = frozenset()
    # The names tables and columns may take: the job's string literals, so no name is built
    # from a value (a count spelled into a column name would pass its rounding). None: any.
    literal_names: frozenset[str] | None = None

    def tightened(self, min_units: int, max_rows: int) -> OutputRules:
        return replace(
            self, min_count=max(self.min_count, min_units), max_rows=min(self.max_rows, max_rows)
        )

    def allows_name(self, name: Any) -> bool:
        return (
            isinstance(name, str)
            and NAME.match(name) is not None
            and (self.literal_names is None or name in self.literal_names)
        )


@dataclass
class CheckedTable:
    columns: list[str]
    kinds: list[str]
    rows: list[list]
    suppressed_cells: int = 0
    notes: list[str] = field(default_factory=list)

    def as_output(self) -> dict:
        return {"columns": self.columns, "rows": self.rows}

    def as_record(self) -> dict:
        """What the gate did, for the job's record and the ledger: no cell value."""
        return {"kinds": self.kinds, "rows": len(self.rows),
                "suppressed_cells": self.suppressed_cells, "notes": self.notes}  # fmt: skip


@dataclass
class CheckedOutputs:
    tables: dict[str, CheckedTable]
    # Why a human must look before release; empty when the gate alone may release.
    review: list[str]


class OutputRejected(SandboxError):
    """A published table is not something the gate can release in any form."""

    code = "OUTPUT_REJECTED"
    status = 422


def check_outputs(
    tables: Sequence[Published], answers: Sequence[Answer], rules: OutputRules
) -> CheckedOutputs:
    released = _Released(answers)
    checked, review = {}, set()
    for table in tables:
        checked[table.name], reasons = _check_table(table, released, rules)
        review.update(reasons)
    return CheckedOutputs(checked, sorted(review))


class _Released:
    """The values, unit counts and dominance of every answer row the enclave gave the job."""

    def __init__(self, answers: Sequence[Answer]) -> None:
        self.rows = [
            (frozenset(_labels(row)), units, dominated)
            for answer in answers
            for row, units, dominated in zip(
                answer.rows, answer.units, answer.dominated, strict=True
            )
        ]
        self.vocabulary = frozenset().union(*(labels for labels, _, _ in self.rows))

    def units_behind(self, labels: frozenset) -> int:
        """The fewest units of any answer row carrying all these labels (0 if none does)."""
        return min((units for row, units, _ in self.rows if labels <= row), default=0)

    def dominated_behind(self, labels: frozenset) -> bool:
        """Whether any answer row carrying all these labels failed the dominance rules."""
        return any(dominated for row, _, dominated in self.rows if labels <= row)


def _labels(row: Sequence[Any]) -> set[tuple[type, Any]]:
    return {_label_key(value) for value in row if _is_label(value)}


def _is_label(value: Any) -> bool:
    return type(value) in (str, int, bool)


def _label_key(value: Any) -> tuple[type, Any]:
    # 1 and True and "1" are different labels: a job cannot pass one off as another.
    return (type(value), value)


def _check_table(
    table: Published, released: _Released, rules: OutputRules
) -> tuple[CheckedTable, set[str]]:
    def reject(rule: str, column: str | None = None) -> OutputRejected:
        return OutputRejected(
            f"table {table.name if rules.allows_name(table.name) else ''} cannot be released",
            [Violation(rule, column)],
        )

    if not rules.allows_name(table.name):
        raise reject("table_name")
    names, declared = _columns(table.columns, rules, reject)
    rows = table.rows
    if len(rows) > rules.max_rows:
        raise reject("too_many_rows")
    for row in rows:
        if not isinstance(row, list) or len(row) != len(names):
            raise reject("row_shape")
        for name, value in zip(names, row, strict=True):
            if not _cell_ok(value):
                raise reject("cell_type", name)
    kinds = [kind or _inferred(rows, i) for i, kind in enumerate(declared)]
    out = CheckedTable(names, kinds, [list(row) for row in rows])
    review: set[str] = set()
    label_at = [i for i, kind in enumerate(kinds) if kind == "label"]
    for i in label_at:
        for row in out.rows:
            if row[i] is not None and _label_key(row[i]) not in released.vocabulary:
                raise reject("label_not_released", names[i])
    # Rows the enclave cannot vouch for lose every value but their labels; rows that lead
    # back to a dominated answer row lose their statistics.
    dominated_cells = 0
    for row in out.rows:
        labels = frozenset(_label_key(row[i]) for i in label_at if row[i] is not None)
        few = released.units_behind(labels) < rules.min_count
        dominated = released.dominated_behind(labels)
        for i, kind in enumerate(kinds):
            if row[i] is None or kind == "label":
                continue
            if few or (dominated and kind in DOMINANCE_KINDS):
                row[i] = None
                out.suppressed_cells += 1
                if not few:
                    dominated_cells += 1
    for i, kind in enumerate(kinds):
        if kind == "count":
            _counts(out, i, rules, reject)
        elif kind in REDACTED_KINDS:
            _redact(out, i)
        elif kind != "label":
            if any(row[i] is not None and type(row[i]) not in (int, float) for row in out.rows):
                raise reject("statistic_not_number", names[i])
            if kind in MAGNITUDE_KINDS and any(_negative(row[i]) for row in out.rows):
                review.add("negative_magnitude")  # dominance cannot be judged: ACRO's rule
            _precision(out, i, rules)
    if out.suppressed_cells > dominated_cells:
        out.notes.append(f"cells from fewer than {rules.min_count} units were suppressed")
    if dominated_cells:
        out.notes.append("statistics resting on one or two units were suppressed (dominance)")
    return out, review


def _columns(columns: Any, rules: OutputRules, reject: Any) -> tuple[list[str], list[str | None]]:
    if not isinstance(columns, list) or not 0 < len(columns) <= rules.max_columns:
        raise reject("columns")
    names: list[str] = []
    kinds: list[str | None] = []
    for column in columns:
        name, kind = (column, None) if isinstance(column, str) else _pair(column)
        if not rules.allows_name(name) or name in names:
            raise reject("column_name")
        if name in rules.forbidden_names or name.startswith("veil_"):
            raise reject("column_forbidden", name)
        if kind is not None and kind not in KINDS:
            raise reject("column_kind", name)
        names.append(name)
        kinds.append(kind)
    return names, kinds


def _pair(column: Any) -> tuple[Any, Any]:
    if isinstance(column, list) and len(column) == 2:
        return column[0], column[1]
    return None, None


def _cell_ok(value: Any) -> bool:
    if value is None or type(value) in (bool, int):
        return True
    if type(value) is float:
        return math.isfinite(value)
    return type(value) is str and len(value) <= MAX_LABEL_CHARS


def _inferred(rows: list[list], i: int) -> str:
    """A column named without a kind: text is a label, whole numbers counts, the rest statistics."""
    values = [row[i] for row in rows if row[i] is not None]
    if all(type(v) in (str, bool) for v in values):
        return "label"
    if all(type(v) is int for v in values):
        return "count"
    return "statistic"


def _counts(out: CheckedTable, i: int, rules: OutputRules, reject: Any) -> None:
    for row in out.rows:
        if row[i] is not None and (type(row[i]) is not int or row[i] < 0):
            raise reject("count_not_whole", out.columns[i])
    small = [row for row in out.rows if row[i] is not None and row[i] < rules.min_count]
    hidden = sum(row[i] for row in small)
    for row in small:
        row[i] = None
    out.suppressed_cells += len(small)
    # Secondary suppression: a lone small cell, or several adding up to little, could be
    # recovered from a total; take the next smallest with them.
    if small and hidden < rules.min_count:
        rest = [row for row in out.rows if row[i] is not None]
        if rest:
            min(rest, key=lambda row: row[i])[i] = None
            out.suppressed_cells += 1
    for row in out.rows:
        if row[i] is not None:
            row[i] = _round_to(row[i], rules.round_base)


def _redact(out: CheckedTable, i: int) -> None:
    if any(row[i] is not None for row in out.rows):
        out.notes.append(f"{out.columns[i]}: minimum and maximum are never released")
    for row in out.rows:
        row[i] = None


def _precision(out: CheckedTable, i: int, rules: OutputRules) -> None:
    for row in out.rows:
        if row[i] is not None:
            row[i] = _significant(row[i], rules.significant_figures)


def _round_to(value: int, base: int) -> int:
    return int(math.floor(value / base + 0.5)) * base


def _significant(value: float, figures: int) -> float | int:
    if value == 0:
        return 0
    digits = figures - int(math.floor(math.log10(abs(value)))) - 1
    rounded = round(value, digits)
    return int(rounded) if type(value) is int else float(rounded)


def _negative(value: Any) -> bool:
    return type(value) in (int, float) and value < 0
