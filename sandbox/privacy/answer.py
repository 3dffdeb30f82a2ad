"""Answering a private query: exact aggregates in, OpenDP noise and partition selection, finish."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from sandbox.disclosure import Released
from sandbox.errors import QueryRejected, Violation
from sandbox.privacy import mechanisms
from sandbox.privacy.mechanisms import ALPHA
from sandbox.privacy.plan import Branch, PrivateQuery
from sandbox.privacy.terms import GROUP_ID, UNITS_COLUMN, Component, Measure, Output

RunSql = Callable[[str], tuple[list[str], list[list], bool]]
DOUBLE = exp.DataType.Type.DOUBLE


@dataclass(frozen=True)
class Budget:
    """What one answer may spend: ε across all its mechanisms, δ across its partition
    selections (none is needed where every group is public)."""

    epsilon: float
    delta: float


@dataclass(frozen=True)
class PrivateAnswer:
    released: Released
    privacy: dict
    epsilon: float
    delta: float


def cost(query: PrivateQuery, budget: Budget) -> tuple[float, float]:
    """The (ε, δ) an answer to `query` spends, known before it runs (worked out once per
    budget: OpenDP's privacy maps are not free)."""
    known = query.costs.get((budget.epsilon, budget.delta))
    if known is None:
        known = query.costs[(budget.epsilon, budget.delta)] = _cost(query, budget)
    return known


def _cost(query: PrivateQuery, budget: Budget) -> tuple[float, float]:
    losses: list[tuple[float, float]] = []
    epsilon, delta = _split(query, budget)
    for branch in query.branches:
        if not branch.public:
            losses.append(mechanisms.selection_loss(branch.contribution.max_groups, epsilon, delta))
        for component in branch.components:
            if _from_selection(branch, component):
                continue  # released by the selection above
            if component.measure is Measure.QUANTILE:
                losses += [
                    _quantile_loss(branch, component, epsilon)
                ] * branch.contribution.max_groups
                continue
            integer = component.measure is not Measure.SUM
            sensitivity = component.sensitivity(branch.contribution)
            scale = mechanisms._laplace_scale(1, sensitivity, epsilon, integer)
            losses.append((mechanisms.loss(1, sensitivity, scale, integer), 0.0))
    return mechanisms.composed(losses)


def _quantile_loss(branch: Branch, component: Component, epsilon: float) -> tuple[float, float]:
    """One group's quantile; a unit is in at most max_groups groups, each spending this."""
    per_group = epsilon / branch.contribution.max_groups
    rows = branch.contribution.max_rows
    loss = mechanisms.quantile_loss(component.candidates, component.fraction, rows, per_group)
    return loss, 0.0


def _from_selection(branch: Branch, component: Component) -> bool:
    """Whether a component is the distinct-unit count partition selection releases anyway."""
    return not branch.public and component.measure is Measure.UNITS


def _shares(query: PrivateQuery) -> int:
    """Mechanisms that split the query's ε: a selection per branch that needs one, and each
    component that selection does not already release."""
    return sum(
        (0 if b.public else 1) + sum(not _from_selection(b, c) for c in b.components)
        for b in query.branches
    )


def _split(query: PrivateQuery, budget: Budget) -> tuple[float, float]:
    shares = max(_shares(query), 1)
    selections = sum(1 for b in query.branches if not b.public)
    return budget.epsilon / shares, (budget.delta / selections if selections else 0.0)


def answer(query: PrivateQuery, budget: Budget, run: RunSql) -> PrivateAnswer:
    """Run each branch's bounded aggregation, release its groups and values through OpenDP,
    and finish over the noisy values only."""
    epsilon, delta = _split(query, budget)
    tables, accuracy = [], []
    for branch in query.branches:
        columns, rows, truncated = run(branch.sql)
        if truncated:
            raise _too_many_groups()
        table, described = _noisy_table(branch, columns, rows, epsilon, delta, run)
        tables.append(table)
        accuracy.append(described)
    columns, rows, _ = run(query.finish_sql(tables))
    end = None if query.limit is None else query.offset + query.limit
    rows = rows[query.offset : end]
    spent_epsilon, spent_delta = cost(query, budget)
    contribution: dict[str, int] = {
        "max_groups_per_unit": query.contribution.max_groups,
        "max_rows_per_group": query.contribution.max_rows,
    }
    checked = [b.contribution.rows_per_unit for b in query.branches]
    if any(rows is not None for rows in checked):
        contribution["max_rows_per_unit"] = max(rows or 0 for rows in checked)
    privacy = {
        "mode": "dp",
        "epsilon": spent_epsilon,
        "delta": spent_delta,
        "contribution": contribution,
        "columns": _column_accuracy(query, accuracy),
    }
    notes = [
        "values are differentially private: each carries noise whose 95% interval is in privacy",
        "groups are released only where a public domain lists them or noisy selection keeps them",
    ]
    released = released_under_dp(columns, rows, notes)
    return PrivateAnswer(released, privacy, spent_epsilon, spent_delta)


# Rows released under differential privacy need no count of units behind them: whatever is
# computed from them is post-processing, so a job's outputs built on them are not suppressed.
UNDER_DP = sys.maxsize


def released_under_dp(columns: list[str], rows: list[list], notes: list[str]) -> Released:
    return Released(columns, rows, 0, notes, [UNDER_DP] * len(rows), [False] * len(rows))


def _too_many_groups() -> Exception:
    return QueryRejected(
        "the query has more groups than the enclave returns", [Violation("too_many_groups")]
    )


def _noisy_table(
    branch: Branch,
    columns: list[str],
    rows: list[list],
    epsilon: float,
    delta: float,
    run: RunSql,
) -> tuple[exp.Expression, list[dict]]:
    units, group = columns.index(UNITS_COLUMN), columns.index(GROUP_ID)
    if not branch.public:
        counts = {row[group]: row[units] for row in rows}
        kept = mechanisms.select_partitions(counts, branch.contribution.max_groups, epsilon, delta)
        rows = [row for row in rows if row[group] in kept]
    first = branch.keys + branch.extras
    released_columns = [row[branch.keys : first] for row in rows]
    described = []
    for index, component in enumerate(branch.components):
        if _from_selection(branch, component):
            scale = mechanisms.selection_scale(branch.contribution.max_groups, epsilon, delta)
            values, entry = [kept[row[group]] for row in rows], {
                "mechanism": "laplace (partition selection)", "scale": scale,
                "half_width_95": mechanisms.half_width(scale),
            }  # fmt: skip
        elif component.measure is Measure.QUANTILE:
            released = _quantiles(branch, index, component, [r[group] for r in rows], epsilon, run)
            values, entry = released.values, {
                "mechanism": "exponential", "scale": released.scale,
                "rank_error_95": released.rank_error,
                "resolution": component.candidates[1] - component.candidates[0],
            }  # fmt: skip
        else:
            integer = component.measure is not Measure.SUM
            exact = [row[first + index] or 0 for row in rows]
            noisy = mechanisms.laplace(
                exact, component.sensitivity(branch.contribution), epsilon, integer
            )
            values, entry = noisy.values, {
                "mechanism": noisy.mechanism, "scale": noisy.scale,
                "half_width_95": noisy.half_width,
            }  # fmt: skip
        for released_row, value in zip(released_columns, values, strict=True):
            released_row.append(value)
        described.append(entry)
    return _values(branch, released_columns), described


def _quantiles(
    branch: Branch,
    index: int,
    component: Component,
    keys: list[str],
    epsilon: float,
    run: RunSql,
) -> mechanisms.QuantileRelease:
    """Each released group's quantile, from its bounded values snapped to the candidates."""
    columns, rows, truncated = run(branch.histograms[index])
    if truncated:
        raise _too_many_groups()
    candidates = component.candidates
    values: dict[str, list[float]] = {key: [] for key in keys}
    for key, bin_index, count in rows:
        if key in values:
            values[key] += [candidates[bin_index]] * count
    return mechanisms.quantiles(
        [values[key] for key in keys],
        candidates,
        component.fraction,
        branch.contribution.max_rows,
        epsilon / branch.contribution.max_groups,
    )


def _values(branch: Branch, rows: list[list]) -> exp.Expression:
    names = [*branch.noisy_columns, "veil_one"]
    if not rows:
        nulls = [exp.alias_(exp.Null(), name) for name in names]
        return exp.select(*nulls).where(exp.false())
    tuples = [tuple(_literal(v) for v in [*row, 1]) for row in rows]
    return exp.select(exp.Star()).from_(exp.values(tuples, alias="veil_v", columns=names))


def _literal(value: object) -> exp.Expression:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float) and math.isfinite(value):
        # With an exponent DuckDB reads the literal as the DOUBLE it spells, exactly (sqlglot's
        # Literal.number would respell a negative one without it: a DECIMAL).
        spelled = repr(abs(value))
        literal = exp.Literal(this=spelled if "e" in spelled else f"{spelled}e0", is_string=False)
        return exp.Neg(this=literal) if math.copysign(1.0, value) < 0 else literal
    if isinstance(value, float):
        return exp.TryCast(this=exp.Literal.string(repr(value)), to=exp.DataType(this=DOUBLE))
    return exp.Literal.string(str(value))


def _column_accuracy(query: PrivateQuery, accuracy: list[list[dict]]) -> dict[str, dict]:
    """Each released column's mechanism, scale and 95% half-width (the widest across branches)."""
    described: dict[str, dict] = {}
    for name, position in zip(query.columns, range(len(query.columns)), strict=True):
        widest: dict | None = None
        for branch, components in zip(query.branches, accuracy, strict=True):
            if position >= len(branch.outputs):
                continue
            output = branch.outputs[position]
            entry = _describe(output, components)
            if entry is None:
                continue
            if widest is None or entry.get("half_width_95", 0) > widest.get("half_width_95", 0):
                widest = entry
        if widest is not None:
            described[name] = widest
    return described


def _describe(output: Output, components: list[dict]) -> dict | None:
    parts = [components[i] for i in output.components]
    if output.kind == "sum" and len(parts) == 2:
        return {"statistic": "sum", **_centred_sum(output, *parts)}
    if output.kind in ("count", "sum", "quantile"):
        return {"statistic": output.kind, **parts[0]}
    if output.kind == "mean":
        total = _centred_sum(output, *parts[:2]) if len(parts) == 3 else parts[0]
        return {
            "statistic": "mean",
            "mechanism": "laplace",
            "sum": total,
            "count": parts[-1],
            "bounds": list(output.bounds or ()),
        }
    if output.kind == "derived":
        return {"statistic": "derived", "mechanism": "post-processing of noisy values"}
    return None


def _centred_sum(output: Output, centred: dict, units: dict) -> dict:
    """A sum released as its centred sum plus the midpoint times the noisy unit count: each
    part within its 97.5% half-width, the whole within their sum at least 95% of the time."""
    low, high = output.bounds or (0.0, 0.0)
    midpoint = (low + high) / 2
    width = mechanisms.half_width(centred["scale"], ALPHA / 2) + abs(
        midpoint
    ) * mechanisms.half_width(units["scale"], ALPHA / 2)
    return {
        "mechanism": "laplace",
        "scale": centred["scale"],
        "half_width_95": width,
        "centred_on": midpoint,
        "units": units,
    }
