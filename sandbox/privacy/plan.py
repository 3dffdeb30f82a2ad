"""A checked query made differentially private: contributions bounded, aggregates exact per group.

Each released select becomes a *branch*: a query the enclave runs that bounds every privacy
unit's contribution (at most `max_groups` groups, `max_rows` rows in each) and computes the
exact aggregates per group (`sandbox/privacy/bounding.py`), and a *finish*: the same select
over the noisy aggregates, which only post-processes released values (expressions, HAVING,
ORDER BY).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from itertools import product

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from sandbox.cards import AssetCard, Role
from sandbox.codes import code_name
from sandbox.errors import QueryRejected, Violation
from sandbox.guard.analysis import Analysis, Kind, single_asset
from sandbox.guard.bounds import stored_exactly
from sandbox.guard.syntax import AGGREGATES, DIALECT, QUANTILES, quantile_fraction
from sandbox.privacy.bounding import Codes, bounded_sql, number, over_keys
from sandbox.privacy.terms import (
    MAX_PUBLIC_GROUPS,
    UNITS_COLUMN,
    Component,
    Contribution,
    Measure,
    Output,
)
from sandbox.privacy.units import impersonal, one_unit_per_row, origin


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
    # How many groups it can have at most, where public facts say: one without GROUP BY, the
    # domain's size with a public domain; None when only its rows bound them.
    most_groups: int | None = None

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
    # What answers spend, per (ε, δ) budget (`answer.cost`).
    costs: dict[tuple[float, float], tuple[float, float]] = field(default_factory=dict)
    # The question each asking of it is, per data versions, asker and budget: worked out once
    # by whoever asks (`services.privacy.question`).
    questions: dict[tuple, str] = field(default_factory=dict)

    @cached_property
    def finish_text(self) -> str:
        """The finishing query as text, without its noisy tables: part of what it asks."""
        return self.finish_sql([])

    def finish_sql(self, tables: list[exp.Expression]) -> str:
        """The finishing query over each branch's noisy table (`tables`, in branch order)."""
        query = self.finish.copy()
        for index, table in enumerate(tables):
            query = query.with_(f"veil_n{index}", as_=table, copy=False)
        return query.sql(dialect=DIALECT, identify=True, copy=False)


def private_query(
    analysis: Analysis,
    cards: dict[str, AssetCard],
    contribution: Contribution,
    rows_per_unit: dict[str, int | None] | None = None,
) -> PrivateQuery:
    """The differentially private form of a compiled query, or a QueryRejected naming what
    differential privacy cannot answer. `rows_per_unit` holds, per asset whose data was checked
    against one, the most rows any unit has there."""
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
        per_unit = (rows_per_unit or {}).get(single_asset(scope) or "")
        branch = _branch(select_a, select_c, scope, cards, contribution, index, ctes, per_unit)
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
        # Measures whose stored values may lie outside the card's bounds (bounds that are not
        # values of the column's type were rounded when stored): clamped again per row.
        self.clamped: set[str] = set()

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
        low, high = self.bounds(original.this, argument.name)
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
                this=number((low + high) / 2), expression=exp.column(f"veil_x{units}")
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
        clamped = exp.func("LEAST", exp.func("GREATEST", mean, number(low)), number(high))
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
        mean = exp.Add(this=number(midpoint), expression=shift)
        clamped = exp.func("LEAST", exp.func("GREATEST", mean, number(low)), number(high))
        return clamped, Output("mean", (total, count), (low, high))

    def bounds(self, column: exp.Expression, renamed: str) -> tuple[float, float]:
        """The card's bounds of the measure `column` (known here as `renamed`)."""
        described = (
            origin(column, self.scope, self.cards) if isinstance(column, exp.Column) else None
        )
        if described is None or described.role is not Role.MEASURE or described.bounds is None:
            raise QueryRejected(
                "under differential privacy sums and means take a measure with bounds",
                [Violation("dp_unbounded_measure", getattr(column, "name", None))],
            )
        if not stored_exactly(described):
            self.clamped.add(renamed)
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
    rows_per_unit: int | None = None,
) -> Branch:
    """One released select made private; with `rows_per_unit` (its one asset's checked bound)
    and no quantile, aggregated in one pass over the rows."""
    one_pass = rows_per_unit is not None and not select_c.find(*QUANTILES)
    rewrite = _Rewrite(scope, cards)
    units_projection = next(p for p in select_c.expressions if p.alias == UNITS_COLUMN)
    # Units of tables that hold no personal data are nobody's: rows are bounded per person.
    nobody = impersonal(scope, cards)
    unit_columns = [
        d.expressions[0].copy()
        for d in units_projection.find_all(exp.Distinct)
        if d.expressions[0].table not in nobody
    ]
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
    for position, compiled in enumerate(aggregates_c):
        compiled.meta["veil_original"] = position

    def finishing(node: exp.Expression) -> exp.Expression:
        return rewrite.lift(rewrite.rename_columns(node), aggregates_a)

    group = select_c.args.get("group")
    keys = [rewrite.rename_columns(e) for e in group.expressions] if group is not None else []
    domains = _public_domains(keys, rewrite)
    domain = list(product(*domains)) if domains is not None else None
    # A centred sum adds back its midpoint per unit counted, which one pass does not count.
    rewrite.centred = bool(keys) and domain is None and not one_pass
    # A mean as its centred sum over its count holds for rows as for units.
    rewrite.one_row_each = contribution.max_rows == 1 or one_pass
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
    finish = exp.select(*projections).from_(
        exp.table_(f"veil_n{index}", alias=f"veil_n{index}"), copy=False
    )
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
    if one_pass and rows_per_unit is not None:
        groups = 1 if not keys else len(domain) if domain is not None else rows_per_unit
        contribution = Contribution(min(groups, rows_per_unit), 1, rows_per_unit)
    elif not keys:
        contribution = Contribution(1, contribution.max_rows)
    elif domain is not None:
        contribution = Contribution(
            min(contribution.max_groups, len(domain)), contribution.max_rows
        )
    codes = _codes(keys, rewrite, select_c, domains) if one_pass and domains else None
    sql, histograms = bounded_sql(
        select_c, rewrite.columns, rewrite.components, rewrite.extras,
        keys, unit_columns, contribution, domain, ctes, frozenset(rewrite.clamped), codes,
    )  # fmt: skip
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
        most_groups=1 if not keys else len(domain) if domain is not None else None,
    )


def _public_domains(keys: list[exp.Expression], rewrite: _Rewrite) -> list[list] | None:
    """Each key's domain, when each key is a dimension whose card declares its domain (and
    their groups are few enough to list)."""
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
    return domains


def _codes(
    keys: list[exp.Expression], rewrite: _Rewrite, select_c: exp.Select, domains: list[list]
) -> Codes | None:
    """The keys' stored codes, where every key is read straight from its asset's scan and the
    scan carries its code (`sandbox.codes`): the asset was stored with codes."""
    by_name = {name: pair for pair, name in rewrite.columns.items()}
    sources = [select_c.args.get("from_"), *(select_c.args.get("joins") or [])]
    scans = {
        source.this.alias: source.this.this
        for source in sources
        if source is not None and isinstance(source.this, exp.Subquery)
    }
    columns = []
    for key in keys:
        table, name = by_name[key.name]
        scan = scans.get(table)
        code = code_name(name)
        if not isinstance(scan, exp.Select) or all(p.alias != code for p in scan.expressions):
            return None
        columns.append(exp.column(code, table=table))
    return Codes(columns, list(product(*(range(len(values)) for values in domains))))
