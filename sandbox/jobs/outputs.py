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

The gate's work is bounded per job: answer rows are indexed by label, each label set a table
uses is looked up once, starting from its rarest label, and every step is charged against a
budget of operations derived from the job's limits and against a deadline of the gate's own.
No index makes every shape linear (asking which of many label sets lie inside which of many
rows is the orthogonal-vectors problem), so shapes made to defeat it meet the budget instead:
out of operations or time, the job is refused with `gate_limit`. Refusals name a rule and
nothing else: no table or column name, since a job could pick which one fails by a value.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sandbox.errors import SandboxError, Violation
from sandbox.jobs.runner import Answer, JobLimits, Published

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
KINDS = ("label", "count", "sum", "mean", "statistic", "min", "max")
REDACTED_KINDS = ("min", "max")
MAGNITUDE_KINDS = ("sum", "mean")
# A job declares its own kinds, so a sum called a statistic is judged like a sum.
DOMINANCE_KINDS = ("sum", "mean", "statistic")
MAX_LABEL_CHARS = 200
# The largest integer a float, hence a JSON number, carries exactly.
MAX_EXACT_INT = 2**53
LABEL_TYPES = (str, int, bool)
# Operations the gate may spend per cell a job's limits let it hold or publish.
WORK_PER_CELL = 8
# The answer rows a job's queries may each return when no obligation says fewer.
MAX_ANSWER_ROWS = 10_000
# The gate's deadline when its caller sets none.
GATE_SECONDS = 30.0


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


@dataclass(frozen=True)
class GateBudget:
    """What the gate may spend on one job: operations, and seconds from its start."""

    operations: int
    seconds: float


def gate_budget(
    limits: JobLimits, rules: OutputRules, seconds: float, max_answer_rows: int = MAX_ANSWER_ROWS
) -> GateBudget:
    """A few operations per answer row and published cell the job's limits allow."""
    held = limits.max_queries * max_answer_rows
    published = limits.max_tables * rules.max_rows * rules.max_columns
    return GateBudget(WORK_PER_CELL * (held + published), seconds)


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
    tables: Sequence[Published],
    answers: Sequence[Answer],
    rules: OutputRules,
    budget: GateBudget | None = None,
) -> CheckedOutputs:
    """Check every table against the answers, or refuse them all with the first rule broken."""
    budget = budget or gate_budget(JobLimits(), rules, GATE_SECONDS)
    work = _Work(budget)
    released = _Released(answers, work)
    checked, review = {}, set()
    for table in tables:
        checked[table.name], reasons = _check_table(table, released, rules, work)
        review.update(reasons)
    return CheckedOutputs(checked, sorted(review))


def _refused(rule: str) -> OutputRejected:
    return OutputRejected("a published table cannot be released", [Violation(rule)])


class _Work:
    """The gate's allowance: operations left, and the moment it must stop."""

    def __init__(self, budget: GateBudget) -> None:
        self.left = budget.operations
        self.deadline = time.monotonic() + budget.seconds

    def spend(self, operations: int) -> None:
        """Charge work before it is done, so the gate never does more than it may."""
        self.left -= operations
        if self.left < 0 or time.monotonic() >= self.deadline:
            raise _refused("gate_limit")


class _Released:
    """The labels, unit counts and dominance of every answer row the enclave gave the job."""

    def __init__(self, answers: Sequence[Answer], work: _Work) -> None:
        self._work = work
        self._units: list[int] = []
        self._dominated: list[bool] = []
        # label -> the answer rows carrying it, in order; a set of them once one is needed
        self._rows: dict[tuple[type, Any], list[int]] = {}
        self._row_sets: dict[tuple[type, Any], set[int]] = {}
        self._behind: dict[frozenset, tuple[int, bool]] = {}
        rows_of = self._rows
        for answer in answers:
            work.spend(len(answer.rows) * (len(answer.columns) + 1))
            if not len(answer.rows) == len(answer.units) == len(answer.dominated):
                raise ValueError("an answer's rows, units and dominance do not line up")
            for at, row in enumerate(answer.rows, len(self._units)):
                for label in _labels(row):
                    rows_of.setdefault(label, []).append(at)
            self._units += answer.units
            self._dominated += answer.dominated
        self._behind[frozenset()] = (min(self._units, default=0), any(self._dominated))

    def knows(self, label: tuple[type, Any]) -> bool:
        """Whether some answer row carries this label."""
        return label in self._rows

    def behind(self, labels: frozenset) -> tuple[int, bool]:
        """The fewest units of any answer row carrying all these labels (0 if none does), and
        whether any such row failed the dominance rules."""
        known = self._behind.get(labels)
        if known is None:
            known = self._behind[labels] = self._look_up(labels)
        return known

    def _look_up(self, labels: frozenset) -> tuple[int, bool]:
        if any(label not in self._rows for label in labels):
            return 0, False
        # From the rarest label: no step walks more rows than could still match.
        ordered = sorted(labels, key=lambda label: len(self._rows[label]))
        rows = self._rows[ordered[0]]
        for label in ordered[1:]:
            if not rows:
                break
            self._work.spend(len(rows))
            among = self._row_set(label)
            rows = [at for at in rows if at in among]
        self._work.spend(len(rows))
        return (
            min((self._units[at] for at in rows), default=0),
            any(self._dominated[at] for at in rows),
        )

    def _row_set(self, label: tuple[type, Any]) -> set[int]:
        found = self._row_sets.get(label)
        if found is None:
            self._work.spend(len(self._rows[label]))
            found = self._row_sets[label] = set(self._rows[label])
        return found


def _labels(row: Sequence[Any]) -> set[tuple[type, Any]]:
    # `_label_key` inlined: this runs once per answer cell.
    return {(type(value), value) for value in row if type(value) in LABEL_TYPES}


def _label_key(value: Any) -> tuple[type, Any]:
    # 1 and True and "1" are different labels: a job cannot pass one off as another.
    return (type(value), value)


def _check_table(
    table: Published, released: _Released, rules: OutputRules, work: _Work
) -> tuple[CheckedTable, set[str]]:
    if not rules.allows_name(table.name):
        raise _refused("table_name")
    names, declared = _columns(table.columns, rules)
    rows = table.rows
    if len(rows) > rules.max_rows:
        raise _refused("too_many_rows")
    # Each pass below is linear in the table's cells.
    work.spend(len(rows) * len(names))
    for row in rows:
        if not isinstance(row, list) or len(row) != len(names):
            raise _refused("row_shape")
        if not all(_cell_ok(value) for value in row):
            raise _refused("cell_type")
    kinds = [kind or _inferred(rows, i) for i, kind in enumerate(declared)]
    out = CheckedTable(names, kinds, [list(row) for row in rows])
    review: set[str] = set()
    label_at = [i for i, kind in enumerate(kinds) if kind == "label"]
    for i in label_at:
        for row in out.rows:
            if row[i] is not None and not released.knows(_label_key(row[i])):
                raise _refused("label_not_released")
    # Rows the enclave cannot vouch for lose every value but their labels; rows that lead
    # back to a dominated answer row lose their statistics.
    dominated_cells = 0
    for row in out.rows:
        labels = frozenset(_label_key(row[i]) for i in label_at if row[i] is not None)
        units, dominated = released.behind(labels)
        few = units < rules.min_count
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
            _counts(out, i, rules)
        elif kind in REDACTED_KINDS:
            _redact(out, i)
        elif kind != "label":
            if any(row[i] is not None and type(row[i]) not in (int, float) for row in out.rows):
                raise _refused("statistic_not_number")
            if kind in MAGNITUDE_KINDS and any(_negative(row[i]) for row in out.rows):
                review.add("negative_magnitude")  # dominance cannot be judged: ACRO's rule
            _precision(out, i, rules)
    if out.suppressed_cells > dominated_cells:
        out.notes.append(f"cells from fewer than {rules.min_count} units were suppressed")
    if dominated_cells:
        out.notes.append("statistics resting on one or two units were suppressed (dominance)")
    return out, review


def _columns(columns: Any, rules: OutputRules) -> tuple[list[str], list[str | None]]:
    if not isinstance(columns, list) or not 0 < len(columns) <= rules.max_columns:
        raise _refused("columns")
    names: list[str] = []
    kinds: list[str | None] = []
    for column in columns:
        name, kind = (column, None) if isinstance(column, str) else _pair(column)
        if not rules.allows_name(name) or name in names:
            raise _refused("column_name")
        if name in rules.forbidden_names or name.startswith("veil_"):
            raise _refused("column_forbidden")
        if kind is not None and kind not in KINDS:
            raise _refused("column_kind")
        names.append(name)
        kinds.append(kind)
    return names, kinds


def _pair(column: Any) -> tuple[Any, Any]:
    if isinstance(column, list) and len(column) == 2:
        return column[0], column[1]
    return None, None


def _cell_ok(value: Any) -> bool:
    if value is None or type(value) is bool:
        return True
    if type(value) is int:  # JSON readers take integers exactly only this far
        return abs(value) <= MAX_EXACT_INT
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


def _counts(out: CheckedTable, i: int, rules: OutputRules) -> None:
    for row in out.rows:
        if row[i] is not None and (type(row[i]) is not int or row[i] < 0):
            raise _refused("count_not_whole")
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
