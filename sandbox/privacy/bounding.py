"""The SQL of a branch's bounded aggregation: each unit's rows cut to its bounds, one row per unit
and group, exact aggregates per group; and the histograms quantiles are chosen from."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from sandbox.guard.syntax import DIALECT, data_type
from sandbox.privacy.terms import (
    GROUP_ID,
    QUANTILE_CANDIDATES,
    UNITS_COLUMN,
    Component,
    Contribution,
    Measure,
)


def _literal(value: object) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _as(node: exp.Expression, name: str) -> exp.Alias:
    """`node`, which nothing else holds, under `name`."""
    return exp.alias_(node, name, copy=False)


@dataclass(frozen=True)
class Codes:
    """Where a branch's keys have stored codes (`sandbox.codes`): each key's code column as
    its rows read it, and each group of the public domain's codes, in the domain's order."""

    columns: list[exp.Column]
    groups: list[tuple[int, ...]]


def number(value: float) -> exp.Expression:
    return exp.TryCast(this=exp.Literal.string(repr(float(value))), to=data_type("DOUBLE"))


def bounded_sql(
    select_c: exp.Select,
    columns: dict[tuple[str, str], str],
    components: list[Component],
    extras: list[exp.Expression],
    keys: list[exp.Expression],
    unit_columns: list[exp.Expression],
    contribution: Contribution,
    domain: list[tuple] | None,
    ctes: exp.With | None,
    clamped: frozenset[str] = frozenset(),
    codes: Codes | None = None,
) -> tuple[str, dict[int, str]]:
    """Rows with their unit, each unit cut to its bounds, then exact aggregates per group; and
    for each quantile, the bounded values of each group counted per candidate. With `codes`
    (one pass over a public domain only) groups are formed by the keys' stored codes."""
    rows = _rows_of(select_c)
    projections = [
        _as(exp.column(column, table=table), name) for (table, column), name in columns.items()
    ]
    if codes is not None:
        projections += [_as(code.copy(), f"veil_q{i}") for i, code in enumerate(codes.columns)]
    unit = (
        unit_columns[0]
        if len(unit_columns) == 1
        else exp.Coalesce(this=unit_columns[0], expressions=unit_columns[1:])
    )
    rows.set("expressions", [*projections, _as(unit.copy(), "veil_pu")])
    if contribution.rows_per_unit is not None:
        return _one_pass(rows, components, extras, keys, domain, ctes, clamped, codes), {}
    if not any(c.measure is Measure.QUANTILE for c in components):
        return _per_unit_first(rows, components, extras, keys, contribution, domain, ctes), {}
    unit_ref = exp.column("veil_pu")
    windows = [
        _as(
            exp.Window(
                this=exp.RowNumber(),
                partition_by=[unit_ref.copy(), *(k.copy() for k in keys)],
                order=exp.Order(expressions=[exp.Ordered(this=exp.Rand())]),
            ),
            "veil_r",
        )
    ]
    kept = exp.LTE(this=exp.column("veil_r"), expression=exp.Literal.number(contribution.max_rows))
    if keys:
        spread = exp.func("HASH", *(k.copy() for k in keys), unit_ref.copy())
        windows.append(
            _as(
                exp.Window(
                    this=exp.func("DENSE_RANK"),
                    partition_by=[unit_ref.copy()],
                    order=exp.Order(
                        expressions=[
                            exp.Ordered(this=e) for e in (spread, *(k.copy() for k in keys))
                        ]
                    ),
                ),
                "veil_g",
            )
        )
        kept = exp.and_(
            kept,
            exp.LTE(
                this=exp.column("veil_g"), expression=exp.Literal.number(contribution.max_groups)
            ),
        )
    ranked = exp.select(exp.Star(), *windows).from_(
        exp.Subquery(this=rows, alias="veil_rows"), copy=False
    )
    if domain is not None:
        _in_domain(ranked, keys, domain)
    bounded = (
        exp.select(exp.Star())
        .from_(exp.Subquery(this=ranked, alias="veil_ranked"), copy=False)
        .where(kept, copy=False)
    )
    # Each unit's rows in a group become one row: its counts, and its sums clamped to the
    # measure's bounds, so a sum moves by at most the bound per group whatever the rows.
    per_unit = exp.select(
        _as(unit_ref.copy(), "veil_pu"),
        *(_as(k.copy(), f"veil_k{i}") for i, k in enumerate(keys)),
        *(_as(_per_unit(c), f"veil_y{i}") for i, c in enumerate(components)),
    ).from_(exp.Subquery(this=bounded, alias="veil_bounded"), copy=False)
    per_unit.group_by(unit_ref.copy(), *(k.copy() for k in keys), copy=False)
    histograms = {
        index: _histogram_sql(bounded, keys, component, ctes)
        for index, component in enumerate(components)
        if component.measure is Measure.QUANTILE
    }
    return _per_group(per_unit, keys, extras, len(components), domain, ctes), histograms


def _per_unit_first(
    rows: exp.Select,
    components: list[Component],
    extras: list[exp.Expression],
    keys: list[exp.Expression],
    contribution: Contribution,
    domain: list[tuple] | None,
    ctes: exp.With | None,
) -> str:
    """Each unit's rows in a group gathered into one row first, its counts capped at the rows it
    may contribute and its sums scaled to that many rows, then clamped to the measure's bounds:
    what keeping at most that many of its rows would bound, without ranking every row. Then
    each unit keeps at most its number of groups (chosen by a hash of the group and unit, as
    the rows-first plan does)."""
    unit_ref = exp.column("veil_pu")
    per_unit = exp.select(
        _as(unit_ref.copy(), "veil_pu"),
        *(_as(k.copy(), f"veil_k{i}") for i, k in enumerate(keys)),
        *(_as(_per_unit(c, contribution.max_rows), f"veil_y{i}") for i, c in enumerate(components)),
    ).from_(exp.Subquery(this=rows, alias="veil_rows"), copy=False)
    if domain is not None:
        _in_domain(per_unit, keys, domain)
    per_unit.group_by(unit_ref.copy(), *(k.copy() for k in keys), copy=False)
    source = per_unit
    if keys:
        grouped = [exp.column(f"veil_k{i}") for i in range(len(keys))]
        spread = exp.func("HASH", *(k.copy() for k in grouped), unit_ref.copy())
        rank = exp.Window(
            this=exp.RowNumber(),
            partition_by=[unit_ref.copy()],
            order=exp.Order(expressions=[exp.Ordered(this=e) for e in (spread, *grouped)]),
        )
        ranked = exp.select(exp.Star(), _as(rank, "veil_g")).from_(
            exp.Subquery(this=per_unit, alias="veil_per_unit"), copy=False
        )
        source = exp.select(exp.Star()).from_(
            exp.Subquery(this=ranked, alias="veil_ranked"), copy=False
        )
        most = exp.Literal.number(contribution.max_groups)
        source.where(exp.LTE(this=exp.column("veil_g"), expression=most), copy=False)
    return _per_group(source, keys, extras, len(components), domain, ctes)


def _per_group(
    gathered: exp.Select,
    keys: list[exp.Expression],
    extras: list[exp.Expression],
    components: int,
    domain: list[tuple] | None,
    ctes: exp.With | None,
) -> str:
    """Exact aggregates per group over one row per unit and group (`gathered`): each
    component's sum, and as its units the rows with a unit (a distinct count over them cost a
    third of the whole query)."""
    units = exp.Subquery(this=gathered, alias="veil_units_rows")
    key_refs = [exp.column(f"veil_k{i}", table="veil_units_rows") for i in range(len(keys))]
    query, key_refs = _over_domain(units, key_refs, domain)
    totals = [_total(exp.column(f"veil_y{i}", table="veil_units_rows")) for i in range(components)]
    counted = exp.Count(this=exp.column("veil_pu", table="veil_units_rows"))
    _aggregate(query, keys, key_refs, extras, totals, counted)
    _with(query, ctes)
    return query.sql(dialect=DIALECT, identify=True, copy=False)


def _rows_of(select: exp.Select) -> exp.Select:
    """A copy of the clauses of `select` that say which rows it reads, without its projections,
    grouping, filters on groups, order and common table expressions."""
    rows = exp.Select()
    for clause, value in select.args.items():
        if clause in _NOT_ROWS or value is None:
            continue
        if isinstance(value, list):
            value = [v.copy() if isinstance(v, exp.Expression) else v for v in value]
        elif isinstance(value, exp.Expression):
            value = value.copy()
        rows.set(clause, value)
    return rows


_NOT_ROWS = frozenset({"expressions", "group", "having", "order", "distinct", "with_"})


def _one_pass(
    rows: exp.Select,
    components: list[Component],
    extras: list[exp.Expression],
    keys: list[exp.Expression],
    domain: list[tuple] | None,
    ctes: exp.With | None,
    clamped: frozenset[str],
    codes: Codes | None = None,
) -> str:
    """Exact aggregates per group straight from the rows, for an asset checked to hold at most
    a public number of rows per unit: no unit's rows need cutting or gathering first. The
    unit count, which only partition selection reads, is taken only where it does. With
    `codes`, rows are grouped by their keys' codes and joined to the domain by them."""
    source = exp.Subquery(this=rows, alias="veil_units_rows")
    key_refs = [exp.column(f"veil_k{i}", table="veil_units_rows") for i in range(len(keys))]
    if keys:
        # Groups outside a public domain are dropped by the join to it: nothing is bounded
        # across groups here, so rows in them need not be dropped first.
        grouping = keys if codes is None else [exp.column(f"veil_q{i}") for i in range(len(keys))]
        named = exp.select(
            exp.Star(), *(_as(k.copy(), f"veil_k{i}") for i, k in enumerate(grouping))
        ).from_(source, copy=False)
        source = exp.Subquery(this=named, alias="veil_units_rows")
    totals = [_row_total(c, c.column in clamped) for c in components]
    if keys and domain is not None:
        grouped = exp.select(
            *(_as(k.copy(), f"veil_k{i}") for i, k in enumerate(key_refs)),
            *(_as(t, f"veil_t{i}") for i, t in enumerate(totals)),
        ).from_(source, copy=False)
        grouped.group_by(*(k.copy() for k in key_refs), copy=False)
        source = exp.Subquery(this=grouped, alias="veil_units_rows")
        # One row per group joined to the domain: the sum is that row's total, or 0.
        totals = [
            exp.Coalesce(
                this=exp.Sum(this=exp.column(f"veil_t{i}", table="veil_units_rows")),
                expressions=[exp.Literal.number(0)],
            )
            for i in range(len(components))
        ]
    query, key_refs = _over_domain(source, key_refs, domain, codes)
    units = (
        exp.Count(this=exp.Distinct(expressions=[exp.column("veil_pu", table="veil_units_rows")]))
        if keys and domain is None
        else exp.Literal.number(0)
    )
    _aggregate(query, keys, key_refs, extras, totals, units)
    _with(query, ctes)
    return query.sql(dialect=DIALECT, identify=True, copy=False)


def _row_total(component: Component, clamp: bool) -> exp.Expression:
    """A component summed over a group's rows. A measure's values are within its bounds
    already (clamped when the asset was stored, or by the scan for data stored before) unless
    `clamp` says the card's bounds were rounded to the column's type there."""
    if component.measure is Measure.UNITS:
        counted: exp.Expression = exp.Count(
            this=exp.Distinct(expressions=[exp.column("veil_pu", table="veil_units_rows")])
        )
        return counted
    if component.measure is Measure.ROWS:
        argument = exp.column(component.column) if component.column else exp.Star()
        return exp.Count(this=argument)
    low, high = component.bounds
    value: exp.Expression = exp.TryCast(this=exp.column(component.column), to=data_type("DOUBLE"))
    if clamp:
        # DuckDB's GREATEST skips NULLs: without the CASE a missing value would count as `low`.
        clamped = exp.func("LEAST", exp.func("GREATEST", value.copy(), number(low)), number(high))
        missing = exp.Is(this=value, expression=exp.Null())
        value = exp.Case(ifs=[exp.If(this=missing, true=exp.Null())], default=clamped)
    if component.centred and not component.present_only:
        value = exp.Coalesce(this=value, expressions=[number(min(max(0.0, low), high))])
    midpoint = number((low + high) / 2)
    if component.centred and max(abs(low), abs(high)) <= high - low:
        # Bounds around zero: the midpoint is taken off once per group, not once per row. The
        # running sum then stays within twice what a centred one may reach, and so does its
        # rounding; bounds far from zero keep the subtraction per row.
        counted = exp.Count(this=value.copy() if component.present_only else exp.Star())
        return exp.Sub(this=_total(value), expression=exp.Mul(this=midpoint, expression=counted))
    if component.centred:
        value = exp.Sub(this=value, expression=midpoint)
    return _total(value)


def _total(value: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=exp.Sum(this=value), expressions=[exp.Literal.number(0)])


def _in_domain(query: exp.Select, keys: list[exp.Expression], domain: list[tuple]) -> None:
    """Keep only rows whose every key is among the domain's values for it."""
    for position, key in enumerate(keys):
        values = sorted({group[position] for group in domain}, key=repr)
        query.where(exp.In(this=key.copy(), expressions=[_literal(v) for v in values]), copy=False)


def _over_domain(
    source: exp.Subquery,
    key_refs: list[exp.Expression],
    domain: list[tuple] | None,
    codes: Codes | None = None,
) -> tuple[exp.Select, list[exp.Expression]]:
    """A select over `source`, or over every group of a public domain joined to it (by the
    keys' codes where `codes` says `key_refs` hold them); and the references each group's keys
    are read from."""
    if domain is None:
        return exp.select().from_(source, copy=False), key_refs
    names = [f"veil_d{i}" for i in range(len(key_refs))]
    groups = [tuple(_literal(v) for v in group) for group in domain]
    joined = columns = names
    if codes is not None:
        joined = [f"veil_o{i}" for i in range(len(key_refs))]
        columns = [*names, *joined]
        groups = [
            (*group, *(exp.Literal.number(c) for c in code))
            for group, code in zip(groups, codes.groups, strict=True)
        ]
    values = exp.values(groups, alias="veil_domain", columns=columns)
    condition = exp.and_(
        *(
            exp.EQ(this=k, expression=exp.column(n, table="veil_domain"))
            for k, n in zip(key_refs, joined, strict=True)
        )
    )
    # Aggregated on its own before the join: inlined, DuckDB joins the domain's few rows to
    # every row first, which costs a fifth of the whole query.
    alias = source.alias
    rows = exp.CTE(this=source.this, alias=exp.TableAlias(this=exp.to_identifier(alias)))
    rows.set("materialized", True)
    query = exp.select().from_(values, copy=False)
    query.join(exp.table_(alias), on=condition, join_type="left", copy=False)
    query.set("with_", exp.With(expressions=[rows]))
    return query, [exp.column(n, table="veil_domain") for n in names]


def _with(query: exp.Select, ctes: exp.With | None) -> None:
    """The user's common table expressions ahead of any the plan added."""
    if ctes is None:
        return
    added = query.args.get("with_")
    user = ctes.copy()
    if added is not None:
        user.set("expressions", [*user.expressions, *added.expressions])
    query.set("with_", user)


def _aggregate(
    query: exp.Select,
    keys: list[exp.Expression],
    key_refs: list[exp.Expression],
    extras: list[exp.Expression],
    totals: list[exp.Expression],
    units: exp.Expression,
) -> None:
    """The branch's output columns: keys, extras, totals, the unit count and the group's id."""
    # Computed from each group's released key alone, never from its rows.
    per_group = [over_keys(e, keys, key_refs) for e in extras]
    outputs: list[exp.Expression] = []
    outputs += [_as(k.copy(), f"veil_k{i}") for i, k in enumerate(key_refs)]
    outputs += [_as(e, f"veil_e{i}") for i, e in enumerate(per_group)]
    outputs += [_as(t, f"veil_x{i}") for i, t in enumerate(totals)]
    outputs.append(_as(units, UNITS_COLUMN))
    outputs.append(_as(group_id(key_refs), GROUP_ID))
    query.set("expressions", outputs)
    if keys:
        query.group_by(*(k.copy() for k in key_refs), copy=False)
        query.order_by(*(exp.Literal.number(i + 1) for i in range(len(keys))), copy=False)


def _histogram_sql(
    bounded: exp.Select, keys: list[exp.Expression], component: Component, ctes: exp.With | None
) -> str:
    """Each group's values of one measure, snapped down to the nearest candidate, counted."""
    low, high = component.bounds
    value = exp.TryCast(this=exp.column(component.column), to=data_type("DOUBLE"))
    steps = QUANTILE_CANDIDATES - 1
    if high > low:
        position = exp.Mul(
            this=exp.paren(
                exp.Div(
                    this=exp.paren(exp.Sub(this=value, expression=number(low))),
                    expression=number(high - low),
                )
            ),
            expression=exp.Literal.number(steps),
        )
        index = exp.func(
            "LEAST",
            exp.func(
                "GREATEST",
                exp.Cast(this=exp.Floor(this=position), to=data_type("INTEGER")),
                exp.Literal.number(0),
            ),
            exp.Literal.number(steps),
        )
    else:
        index = exp.Literal.number(0)
    query = exp.select(
        _as(group_id(keys), GROUP_ID),
        _as(index, "veil_bin"),
        _as(exp.Count(this=exp.Star()), "veil_n"),
    ).from_(exp.Subquery(this=bounded.copy(), alias="veil_bounded"), copy=False)
    query.where(
        exp.Not(this=exp.Is(this=exp.column(component.column), expression=exp.Null())), copy=False
    )
    query.group_by(exp.Literal.number(1), exp.Literal.number(2), copy=False)
    _with(query, ctes)
    return query.sql(dialect=DIALECT, identify=True, copy=False)


def group_id(keys: list[exp.Expression]) -> exp.Expression:
    """One text per group, different for different keys: each key's text with its length
    before it (-1 for NULL), so no two groups share one, as floats made of DECIMALs could."""
    parts: list[exp.Expression] = []
    for key in keys:
        text = exp.Cast(this=key.copy(), to=data_type("VARCHAR"))
        length = exp.Case(
            ifs=[
                exp.If(
                    this=exp.Is(this=key.copy(), expression=exp.Null()), true=exp.Literal.number(-1)
                )
            ],
            default=exp.Length(this=text.copy()),
        )
        parts += [exp.Cast(this=length, to=data_type("VARCHAR")), text]
    if not parts:
        return exp.Literal.string("")
    return exp.Cast(this=exp.func("LIST_VALUE", *parts), to=data_type("VARCHAR"))


def over_keys(
    node: exp.Expression, keys: list[exp.Expression], refs: list[exp.Expression]
) -> exp.Expression:
    """A copy of `node` with every whole GROUP BY expression replaced by its reference."""

    def swap(part: exp.Expression) -> exp.Expression:
        for key, ref in zip(keys, refs, strict=True):
            if part == key:
                return ref.copy()
        return part

    return node.copy().transform(swap)


def _per_unit(component: Component, max_rows: int | None = None) -> exp.Expression:
    """One unit's part of a component in one group, from its bounded rows, or from all its rows
    with its count capped at `max_rows` (a quantile's comes from its histogram instead)."""
    if component.measure is Measure.UNITS:
        return exp.Literal.number(1)
    if component.measure is Measure.QUANTILE:
        return exp.Literal.number(0)
    if component.measure is Measure.ROWS:
        if max_rows is not None:
            counted = exp.column(component.column) if component.column else exp.Star()
            return exp.func("LEAST", exp.Count(this=counted), exp.Literal.number(max_rows))
        counted = exp.column(component.column) if component.column else exp.column("veil_r")
        return exp.Count(this=counted)
    low, high = component.bounds
    value = exp.TryCast(this=exp.column(component.column), to=data_type("DOUBLE"))
    summed: exp.Expression = exp.Sum(this=value)
    if max_rows is not None:
        # All its rows were gathered: their sum scaled to the rows it may contribute, as if
        # that many were kept at its own mean (the count beside it is capped alike).
        counted = exp.Count(this=exp.column(component.column))
        kept = exp.func("LEAST", counted.copy(), exp.Literal.number(max_rows))
        summed = exp.Div(
            this=exp.Mul(this=summed, expression=kept),
            expression=exp.func("GREATEST", counted, exp.Literal.number(1)),
        )
    total = exp.func("LEAST", exp.func("GREATEST", summed, number(low)), number(high))
    present = exp.GT(
        this=exp.Count(this=exp.column(component.column)), expression=exp.Literal.number(0)
    )
    if not component.centred:
        return exp.Case(ifs=[exp.If(this=present, true=total)], default=exp.Literal.number(0))
    midpoint = number((low + high) / 2)
    if component.present_only:
        shifted = exp.Sub(this=total, expression=midpoint)
        return exp.Case(ifs=[exp.If(this=present, true=shifted)], default=exp.Literal.number(0))
    # A unit without a value counts as 0 (clamped to the bounds), so that adding back the
    # midpoint once per unit gives the sum of the clamped totals.
    absent = number(min(max(0.0, low), high))
    chosen = exp.Case(ifs=[exp.If(this=present, true=total)], default=absent)
    return exp.Sub(this=chosen, expression=midpoint)
