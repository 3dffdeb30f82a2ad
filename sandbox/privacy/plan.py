"""A checked query made differentially private: contributions bounded, aggregates exact per group.

Each released select becomes a *branch*: a query the enclave runs that bounds every privacy
unit's contribution (at most `max_groups` groups, `max_rows` rows in each) and computes the
exact aggregates per group, and a *finish*: the same select over the noisy aggregates, which
only post-processes released values (expressions, HAVING, ORDER BY).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import product

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from sandbox.cards import AssetCard, Role
from sandbox.errors import QueryRejected, Violation
from sandbox.guard.roles import Analysis, Kind
from sandbox.guard.syntax import AGGREGATES, DIALECT, QUANTILES, quantile_fraction
from sandbox.privacy.units import one_unit_per_row, origin

UNITS_COLUMN = "veil_units"
GROUP_ID = "veil_group"
# Beyond this many combinations a public domain is not enumerated; partition selection is used.
MAX_PUBLIC_GROUPS = 10_000


class Measure(StrEnum):
    ROWS = "rows"  # COUNT(*) and COUNT(x)
    UNITS = "units"  # COUNT(DISTINCT privacy unit)
    SUM = "sum"
    QUANTILE = "quantile"  # MEDIAN and QUANTILE_CONT: from a histogram, not a per-unit total


# A quantile is chosen among this many values evenly spread over the measure's bounds.
QUANTILE_CANDIDATES = 201


@dataclass(frozen=True)
class Contribution:
    """Public bounds on one unit: groups of an answer its rows fall in, rows in each group."""

    max_groups: int = 1
    max_rows: int = 1


@dataclass(frozen=True)
class Component:
    """One exact aggregate computed per group, then released with noise."""

    measure: Measure
    column: str | None = None
    # A sum's measure bounds: each unit's total in a group is clamped to them.
    bounds: tuple[float, float] = (0.0, 1.0)
    # The fraction a quantile asks for.
    fraction: float = 0.5
    # A centred sum adds each unit's clamped total less the bounds' midpoint; a unit without
    # a value adds 0 when `present_only`, else 0 clamped to the bounds, less the midpoint.
    centred: bool = False
    present_only: bool = False

    @property
    def candidates(self) -> list[float]:
        low, high = self.bounds
        steps = QUANTILE_CANDIDATES - 1
        return [low + (high - low) * i / steps for i in range(QUANTILE_CANDIDATES)]

    def sensitivity(self, contribution: Contribution) -> float:
        """How much one unit moves this aggregate across all groups (the L1 sensitivity): a
        count by one per group for units, by its rows for rows; a sum by its clamped total."""
        if self.measure is Measure.UNITS:
            return contribution.max_groups
        if self.measure in (Measure.ROWS, Measure.QUANTILE):
            return contribution.max_groups * contribution.max_rows
        low, high = self.bounds
        if self.centred:
            return contribution.max_groups * (high - low) / 2
        return contribution.max_groups * max(abs(low), abs(high))


@dataclass(frozen=True)
class Output:
    """What one released column is, for its accuracy: one aggregate, a mean, or derived."""

    kind: str  # "count", "sum", "mean", "key", "derived"
    components: tuple[int, ...] = ()
    bounds: tuple[float, float] | None = None


@dataclass
class Branch:
    """One released select: the bounded aggregation the enclave runs, and its finish."""

    sql: str
    keys: int
    extras: int
    components: list[Component]
    public: bool  # every group comes from a public domain; no partition selection
    grouped: bool
    finish: exp.Select
    # Per quantile component: the query counting each group's bounded values per candidate.
    histograms: dict[int, str] = field(default_factory=dict)
    # The bounds this branch's sensitivities follow: one group when it has no GROUP BY, at
    # most the domain's size when its groups are public.
    contribution: Contribution = Contribution()
    outputs: list[Output] = field(default_factory=list)

    @property
    def noisy_columns(self) -> list[str]:
        return [f"veil_e{i}" for i in range(self.extras)] + [
            f"veil_x{i}" for i in range(len(self.components))
        ]


@dataclass
class PrivateQuery:
    branches: list[Branch]
    finish: exp.Query
    limit: int | None
    offset: int
    contribution: Contribution
    columns: list[str]

    def finish_sql(self, tables: list[exp.Expression]) -> str:
        """The finishing query over each branch's noisy table (`tables`, in branch order)."""
        query = self.finish.copy()
        for index, table in enumerate(tables):
            query = query.with_(f"veil_n{index}", as_=table, copy=False)
        return query.sql(dialect=DIALECT, identify=True)


def private_query(
    analysis: Analysis, cards: dict[str, AssetCard], contribution: Contribution
) -> PrivateQuery:
    """The differentially private form of a compiled query, or a QueryRejected naming what
    differential privacy cannot answer."""
    compiled = analysis.compiled
    if compiled is None:
        raise ValueError("private_query takes a compiled analysis")
    scopes = {id(scope.expression): scope for scope in traverse_scope(analysis.tree)}
    released_a = [
        node
        for node in analysis.tree.find_all(exp.Select, bfs=False)
        if analysis.kinds.get(id(node)) is Kind.AGGREGATE
    ]
    finish = compiled.tree.copy()
    released_c = [
        node
        for node in finish.find_all(exp.Select, bfs=False)
        if any(p.alias == UNITS_COLUMN for p in node.expressions)
    ]
    if len(released_a) != len(released_c):
        raise QueryRejected("the query could not be checked", [Violation("unsupported")])
    ctes = finish.args.get("with_")
    branches = []
    for index, (select_a, select_c) in enumerate(zip(released_a, released_c, strict=True)):
        scope = scopes[id(select_a)]
        if not one_unit_per_row(scope, cards):
            raise QueryRejected(
                "under differential privacy every row must belong to one privacy unit: join "
                "assets on their privacy units",
                [Violation("dp_join_not_on_privacy_unit")],
            )
        branch = _branch(select_a, select_c, scope, cards, contribution, index, ctes)
        branches.append(branch)
        select_c.replace(branch.finish)
        if select_c is finish:
            finish = branch.finish
    finish.set("with_", None)
    _order_fully(finish)
    columns = [projection.alias_or_name for projection in finish.selects]
    return PrivateQuery(branches, finish, compiled.limit, compiled.offset, contribution, columns)


def _order_fully(query: exp.Query) -> None:
    """Rows come out in an order set by released values alone: the query's order, then every
    column."""
    order = query.args.get("order")
    existing = list(order.expressions) if order is not None else []
    positions = [exp.Ordered(this=exp.Literal.number(i)) for i in range(1, len(query.selects) + 1)]
    query.set("order", exp.Order(expressions=existing + positions))


class _Rewrite:
    """Rewrites one released select into its bounded aggregation and its finish."""

    def __init__(self, scope: Scope, cards: dict[str, AssetCard]) -> None:
        self.scope = scope
        self.cards = cards
        self.columns: dict[tuple[str, str], str] = {}
        self.components: list[Component] = []
        self.extras: list[exp.Expression] = []
        # Whether sums are centred on their bounds' midpoint: where partition selection
        # releases each group's unit count anyway, the midpoint times that count costs no ε.
        self.centred = False
        # Whether each unit has at most one row in a group.
        self.one_row_each = False

    def column(self, node: exp.Column) -> exp.Column:
        key = (node.table, node.name)
        if key not in self.columns:
            self.columns[key] = f"veil_c{len(self.columns)}"
        return exp.column(self.columns[key])

    def component(self, component: Component) -> int:
        if component not in self.components:
            self.components.append(component)
        return self.components.index(component)

    def rename_columns(self, node: exp.Expression) -> exp.Expression:
        """A copy with every source column replaced by its `veil_c` name."""
        node = node.copy()
        for column in list(node.find_all(exp.Column)):
            if column.table:
                column.replace(self.column(column))
        if isinstance(node, exp.Column) and node.table:
            return self.column(node)
        return node

    def noisy(
        self, aggregate: exp.Expression, original: exp.Expression
    ) -> tuple[exp.Expression, Output]:
        """The finishing expression of one aggregate over the noisy table."""
        argument = aggregate.this
        if isinstance(aggregate, exp.Count):
            if isinstance(argument, exp.Distinct):
                index = self.component(Component(Measure.UNITS))
            elif isinstance(argument, exp.Star):
                index = self.component(Component(Measure.ROWS))
            else:
                index = self.component(Component(Measure.ROWS, argument.name))
            value = exp.func("GREATEST", exp.column(f"veil_x{index}"), exp.Literal.number(0))
            return value, Output("count", (index,))
        low, high = self.bounds(original.this)
        if isinstance(aggregate, QUANTILES):
            fraction = quantile_fraction(original)
            if fraction is None:
                raise QueryRejected(
                    "a quantile asks for a fraction in [0, 1]", [Violation("quantile_fraction")]
                )
            index = self.component(
                Component(Measure.QUANTILE, argument.name, (low, high), fraction)
            )
            return exp.column(f"veil_x{index}"), Output("quantile", (index,), (low, high))
        if isinstance(aggregate, exp.Avg) and self.one_row_each:
            return self.mean_of_single_rows(argument.name, low, high)
        total = self.component(
            Component(Measure.SUM, argument.name, (low, high), centred=self.centred)
        )
        value: exp.Expression = exp.column(f"veil_x{total}")
        used = (total,)
        if self.centred:
            units = self.component(Component(Measure.UNITS))
            midpoint = exp.Mul(
                this=_number((low + high) / 2), expression=exp.column(f"veil_x{units}")
            )
            value = exp.paren(exp.Add(this=value, expression=midpoint))
            used = (total, units)
        if isinstance(aggregate, exp.Sum):
            return value, Output("sum", used, (low, high))
        count = self.component(Component(Measure.ROWS, argument.name))
        mean = exp.Div(
            this=value,
            expression=exp.func("GREATEST", exp.column(f"veil_x{count}"), exp.Literal.number(1)),
        )
        clamped = exp.func("LEAST", exp.func("GREATEST", mean, _number(low)), _number(high))
        return clamped, Output("mean", (*used, count), (low, high))

    def mean_of_single_rows(
        self, column: str, low: float, high: float
    ) -> tuple[exp.Expression, Output]:
        """With one row per unit and group, a mean is the midpoint plus the noisy sum of the
        values less the midpoint over their noisy count: half a sum's sensitivity, and no
        unit count to pay for."""
        midpoint = (low + high) / 2
        total = self.component(
            Component(Measure.SUM, column, (low, high), centred=True, present_only=True)
        )
        count = self.component(Component(Measure.ROWS, column))
        shift = exp.Div(
            this=exp.column(f"veil_x{total}"),
            expression=exp.func("GREATEST", exp.column(f"veil_x{count}"), exp.Literal.number(1)),
        )
        mean = exp.Add(this=_number(midpoint), expression=shift)
        clamped = exp.func("LEAST", exp.func("GREATEST", mean, _number(low)), _number(high))
        return clamped, Output("mean", (total, count), (low, high))

    def bounds(self, column: exp.Expression) -> tuple[float, float]:
        described = (
            origin(column, self.scope, self.cards) if isinstance(column, exp.Column) else None
        )
        if described is None or described.role is not Role.MEASURE or described.bounds is None:
            raise QueryRejected(
                "under differential privacy sums and means take a measure with bounds",
                [Violation("dp_unbounded_measure", getattr(column, "name", None))],
            )
        return described.bounds

    def lift(self, node: exp.Expression, originals: list[exp.Expression]) -> exp.Expression:
        """The finishing form of a (renamed) expression: aggregates become noisy values, and
        each largest part without aggregates that reads a column becomes a column computed
        per group by the enclave."""
        if isinstance(node, AGGREGATES):
            value, _ = self.noisy(node, originals[node.meta["veil_original"]])
            return value
        if not node.find(*AGGREGATES):
            if any(column.name.startswith("veil_c") for column in node.find_all(exp.Column)):
                self.extras.append(node.copy())
                return exp.column(f"veil_e{len(self.extras) - 1}")
            return node.copy()
        node = node.copy()
        for key, child in list(node.args.items()):
            if isinstance(child, exp.Expression):
                node.set(key, self.lift(child, originals))
            elif isinstance(child, list):
                lifted = [
                    self.lift(c, originals) if isinstance(c, exp.Expression) else c for c in child
                ]
                node.set(key, lifted)
        return node


def _branch(
    select_a: exp.Select,
    select_c: exp.Select,
    scope: Scope,
    cards: dict[str, AssetCard],
    contribution: Contribution,
    index: int,
    ctes: exp.With | None,
) -> Branch:
    rewrite = _Rewrite(scope, cards)
    units_projection = next(p for p in select_c.expressions if p.alias == UNITS_COLUMN)
    unit_columns = [d.expressions[0].copy() for d in units_projection.find_all(exp.Distinct)]
    clauses_c = [p for p in select_c.expressions if p is not units_projection]
    clauses_a = list(select_a.expressions)
    for clause in ("having", "order"):
        if select_a.args.get(clause) is not None:
            clauses_a.append(select_a.args[clause])
            clauses_c.append(select_c.args[clause])
    aggregates_a = [a for clause in clauses_a for a in clause.find_all(*AGGREGATES, bfs=False)]
    aggregates_c = [a for clause in clauses_c for a in clause.find_all(*AGGREGATES, bfs=False)]
    if len(aggregates_a) != len(aggregates_c):
        raise QueryRejected("the query could not be checked", [Violation("unsupported")])
    # Copies keep their meta, so each compiled aggregate finds its original (and its lineage).
    for number, compiled in enumerate(aggregates_c):
        compiled.meta["veil_original"] = number

    def finishing(node: exp.Expression) -> exp.Expression:
        return rewrite.lift(rewrite.rename_columns(node), aggregates_a)

    group = select_c.args.get("group")
    keys = [rewrite.rename_columns(e) for e in group.expressions] if group is not None else []
    domain = _public_domain(keys, rewrite, cards)
    rewrite.centred = bool(keys) and domain is None
    rewrite.one_row_each = contribution.max_rows == 1
    projections, outputs = [], []
    for projection in clauses_c[: len(select_c.expressions) - 1]:
        inner = rewrite.rename_columns(
            projection.this if isinstance(projection, exp.Alias) else projection
        )
        if isinstance(inner, AGGREGATES):
            lifted, output = rewrite.noisy(inner, aggregates_a[inner.meta["veil_original"]])
        else:
            lifted = rewrite.lift(inner, aggregates_a)
            output = Output("derived" if inner.find(*AGGREGATES) else "key")
        projections.append(exp.alias_(lifted, projection.alias_or_name))
        outputs.append(output)
    finish = exp.select(*projections).from_(exp.table_(f"veil_n{index}", alias=f"veil_n{index}"))
    if select_c.args.get("distinct") is not None:
        finish.set("distinct", exp.Distinct())
    if select_c.args.get("having") is not None:
        finish.where(finishing(select_c.args["having"].this), copy=False)
    if select_c.args.get("order") is not None:
        ordered = [
            exp.Ordered(
                this=finishing(o.this),
                desc=o.args.get("desc"),
                nulls_first=o.args.get("nulls_first"),
            )
            for o in select_c.args["order"].expressions
        ]
        finish.set("order", exp.Order(expressions=ordered))

    for node in aggregates_c:
        node.meta.pop("veil_original", None)
    placeholders = [exp.column(f"veil_k{i}") for i in range(len(keys))]
    for extra in rewrite.extras:
        # Outside aggregates only released keys may be read: a column computed per group from
        # its rows (a CASE picking one row) would be one person's value.
        if any(
            c.name.startswith("veil_c")
            for c in over_keys(extra, keys, placeholders).find_all(exp.Column)
        ):
            raise QueryRejected(
                "under differential privacy a column outside an aggregate must appear as a whole "
                "GROUP BY expression",
                [Violation("dp_ungrouped_column")],
            )
    if not keys:
        contribution = Contribution(1, contribution.max_rows)
    elif domain is not None:
        contribution = Contribution(
            min(contribution.max_groups, len(domain)), contribution.max_rows
        )
    sql, histograms = _bounded_sql(
        select_c, rewrite, keys, unit_columns, contribution, domain, ctes
    )
    return Branch(
        sql=sql,
        keys=len(keys),
        extras=len(rewrite.extras),
        components=list(rewrite.components),
        public=domain is not None or not keys,
        grouped=bool(keys),
        finish=finish,
        histograms=histograms,
        contribution=contribution,
        outputs=outputs,
    )


def _public_domain(
    keys: list[exp.Expression], rewrite: _Rewrite, cards: dict[str, AssetCard]
) -> list[tuple] | None:
    """Every group, when each key is a dimension whose card declares its domain."""
    if not keys:
        return None
    by_name = {name: pair for pair, name in rewrite.columns.items()}
    domains = []
    for key in keys:
        if not isinstance(key, exp.Column) or key.name not in by_name:
            return None
        table, name = by_name[key.name]
        described = origin(exp.column(name, table=table), rewrite.scope, rewrite.cards)
        if described is None or described.domain is None:
            return None
        domains.append(described.domain)
    if math.prod(len(values) for values in domains) > MAX_PUBLIC_GROUPS:
        return None
    return list(product(*domains))


def _literal(value: object) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _number(value: float) -> exp.Expression:
    return exp.TryCast(this=exp.Literal.string(repr(float(value))), to=exp.DataType.build("DOUBLE"))


def _bounded_sql(
    select_c: exp.Select,
    rewrite: _Rewrite,
    keys: list[exp.Expression],
    unit_columns: list[exp.Expression],
    contribution: Contribution,
    domain: list[tuple] | None,
    ctes: exp.With | None,
) -> tuple[str, dict[int, str]]:
    """Rows with their unit, each unit cut to its bounds, then exact aggregates per group; and
    for each quantile, the bounded values of each group counted per candidate."""
    rows = select_c.copy()
    for clause in ("group", "having", "order", "distinct", "with_"):
        rows.set(clause, None)
    projections = [
        exp.alias_(exp.column(column, table=table), name)
        for (table, column), name in rewrite.columns.items()
    ]
    unit = (
        unit_columns[0]
        if len(unit_columns) == 1
        else exp.Coalesce(this=unit_columns[0], expressions=unit_columns[1:])
    )
    rows.set("expressions", [*projections, exp.alias_(unit, "veil_pu")])
    unit_ref = exp.column("veil_pu")
    windows = [
        exp.alias_(
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
            exp.alias_(
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
    ranked = exp.select(exp.Star(), *windows).from_(exp.Subquery(this=rows, alias="veil_rows"))
    if domain is not None:
        for position, key in enumerate(keys):
            values = sorted({group[position] for group in domain}, key=repr)
            ranked.where(
                exp.In(this=key.copy(), expressions=[_literal(v) for v in values]), copy=False
            )
    bounded = (
        exp.select(exp.Star()).from_(exp.Subquery(this=ranked, alias="veil_ranked")).where(kept)
    )
    # Each unit's rows in a group become one row: its counts, and its sums clamped to the
    # measure's bounds, so a sum moves by at most the bound per group whatever the rows.
    per_unit = exp.select(
        exp.alias_(unit_ref.copy(), "veil_pu"),
        *(exp.alias_(k.copy(), f"veil_k{i}") for i, k in enumerate(keys)),
        *(exp.alias_(_per_unit(c), f"veil_y{i}") for i, c in enumerate(rewrite.components)),
    ).from_(exp.Subquery(this=bounded, alias="veil_bounded"))
    per_unit.group_by(unit_ref.copy(), *(k.copy() for k in keys), copy=False)
    units = exp.Subquery(this=per_unit, alias="veil_units_rows")
    key_refs = [exp.column(f"veil_k{i}", table="veil_units_rows") for i in range(len(keys))]
    if domain is not None:
        names = [f"veil_d{i}" for i in range(len(keys))]
        values = exp.values(
            [tuple(_literal(v) for v in group) for group in domain],
            alias="veil_domain",
            columns=names,
        )
        condition = exp.and_(
            *(
                exp.EQ(this=k, expression=exp.column(n, table="veil_domain"))
                for k, n in zip(key_refs, names, strict=True)
            )
        )
        key_refs = [exp.column(n, table="veil_domain") for n in names]
        query = exp.select().from_(values).join(units, on=condition, join_type="left")
    else:
        query = exp.select().from_(units)
    # Computed from each group's released key alone, never from its rows.
    extras = [over_keys(e, keys, key_refs) for e in rewrite.extras]
    totals = [
        exp.Coalesce(
            this=exp.Sum(this=exp.column(f"veil_y{i}", table="veil_units_rows")),
            expressions=[exp.Literal.number(0)],
        )
        for i in range(len(rewrite.components))
    ]
    outputs: list[exp.Expression] = []
    outputs += [exp.alias_(k.copy(), f"veil_k{i}") for i, k in enumerate(key_refs)]
    outputs += [exp.alias_(e, f"veil_e{i}") for i, e in enumerate(extras)]
    outputs += [exp.alias_(t, f"veil_x{i}") for i, t in enumerate(totals)]
    distinct = exp.Distinct(expressions=[exp.column("veil_pu", table="veil_units_rows")])
    outputs.append(exp.alias_(exp.Count(this=distinct), UNITS_COLUMN))
    outputs.append(exp.alias_(group_id(key_refs), GROUP_ID))
    query.set("expressions", outputs)
    if keys:
        query.group_by(*(k.copy() for k in key_refs), copy=False)
        query.order_by(*(exp.Literal.number(i + 1) for i in range(len(keys))), copy=False)
    histograms = {
        index: _histogram_sql(bounded, keys, component, ctes)
        for index, component in enumerate(rewrite.components)
        if component.measure is Measure.QUANTILE
    }
    if ctes is not None:
        query.set("with_", ctes.copy())
    return query.sql(dialect=DIALECT, identify=True), histograms


def _histogram_sql(
    bounded: exp.Select, keys: list[exp.Expression], component: Component, ctes: exp.With | None
) -> str:
    """Each group's values of one measure, snapped down to the nearest candidate, counted."""
    low, high = component.bounds
    value = exp.TryCast(this=exp.column(component.column), to=exp.DataType.build("DOUBLE"))
    steps = QUANTILE_CANDIDATES - 1
    if high > low:
        position = exp.Mul(
            this=exp.paren(
                exp.Div(
                    this=exp.paren(exp.Sub(this=value, expression=_number(low))),
                    expression=_number(high - low),
                )
            ),
            expression=exp.Literal.number(steps),
        )
        index = exp.func(
            "LEAST",
            exp.func(
                "GREATEST",
                exp.Cast(this=exp.Floor(this=position), to=exp.DataType.build("INTEGER")),
                exp.Literal.number(0),
            ),
            exp.Literal.number(steps),
        )
    else:
        index = exp.Literal.number(0)
    query = exp.select(
        exp.alias_(group_id(keys), GROUP_ID),
        exp.alias_(index, "veil_bin"),
        exp.alias_(exp.Count(this=exp.Star()), "veil_n"),
    ).from_(exp.Subquery(this=bounded.copy(), alias="veil_bounded"))
    query.where(
        exp.Not(this=exp.Is(this=exp.column(component.column), expression=exp.Null())), copy=False
    )
    query.group_by(exp.Literal.number(1), exp.Literal.number(2), copy=False)
    if ctes is not None:
        query.set("with_", ctes.copy())
    return query.sql(dialect=DIALECT, identify=True)


def group_id(keys: list[exp.Expression]) -> exp.Expression:
    """One text per group, different for different keys: each key's text with its length
    before it (-1 for NULL), so no two groups share one, as floats made of DECIMALs could."""
    parts: list[exp.Expression] = []
    for key in keys:
        text = exp.Cast(this=key.copy(), to=exp.DataType.build("VARCHAR"))
        length = exp.Case(
            ifs=[
                exp.If(
                    this=exp.Is(this=key.copy(), expression=exp.Null()), true=exp.Literal.number(-1)
                )
            ],
            default=exp.Length(this=text.copy()),
        )
        parts += [exp.Cast(this=length, to=exp.DataType.build("VARCHAR")), text]
    if not parts:
        return exp.Literal.string("")
    return exp.Cast(this=exp.func("LIST_VALUE", *parts), to=exp.DataType.build("VARCHAR"))


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


def _per_unit(component: Component) -> exp.Expression:
    """One unit's part of a component in one group, from its bounded rows (a quantile's comes
    from its histogram instead)."""
    if component.measure is Measure.UNITS:
        return exp.Literal.number(1)
    if component.measure is Measure.QUANTILE:
        return exp.Literal.number(0)
    if component.measure is Measure.ROWS:
        counted = exp.column(component.column) if component.column else exp.column("veil_r")
        return exp.Count(this=counted)
    low, high = component.bounds
    value = exp.TryCast(this=exp.column(component.column), to=exp.DataType.build("DOUBLE"))
    total = exp.func(
        "LEAST", exp.func("GREATEST", exp.Sum(this=value), _number(low)), _number(high)
    )
    present = exp.GT(
        this=exp.Count(this=exp.column(component.column)), expression=exp.Literal.number(0)
    )
    if not component.centred:
        return exp.Case(ifs=[exp.If(this=present, true=total)], default=exp.Literal.number(0))
    midpoint = _number((low + high) / 2)
    if component.present_only:
        shifted = exp.Sub(this=total, expression=midpoint)
        return exp.Case(ifs=[exp.If(this=present, true=shifted)], default=exp.Literal.number(0))
    # A unit without a value counts as 0 (clamped to the bounds), so that adding back the
    # midpoint once per unit gives the sum of the clamped totals.
    absent = _number(min(max(0.0, low), high))
    chosen = exp.Case(ifs=[exp.If(this=present, true=total)], default=absent)
    return exp.Sub(this=chosen, expression=midpoint)
