"""Rewrites of a checked tree: clamped scans, privacy-unit counts, arithmetic that cannot raise."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from sandbox.cards import AssetCard, Column, Role
from sandbox.codes import code_name
from sandbox.codes import coded as is_coded
from sandbox.errors import QueryRejected, Violation
from sandbox.guard.analysis import Analysis, Kind, asset_id, single_asset
from sandbox.guard.bounds import bounded, canonical
from sandbox.guard.compiled import (
    DISTINCT_UNITS,
    ROWS_PER_UNIT,
    UNITS_COLUMN,
    CompiledQuery,
    one_checked_group,
    released_selects,
)
from sandbox.guard.dominance import is_magnitude
from sandbox.guard.messages import explained
from sandbox.guard.syntax import data_type
from sandbox.guard.types import COMPARISONS, enforce_types

SCAN = "veil_scan"
UNIT_PREFIX = "veil_u"
ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod)
# Integer inputs overflow in these (abs of the smallest integer), DOUBLE ones cannot.
NUMERIC_FUNCTIONS = (exp.Abs, exp.Round, exp.Floor, exp.Ceil)
# These convert a DATE to TIMESTAMP inside, which fails past year 294247; TRY_CAST cannot.
DATE_FUNCTIONS = (
    exp.Extract,
    exp.TimestampTrunc,
    exp.DateTrunc,
    exp.Year,
    exp.Month,
    exp.Quarter,
    exp.Day,
    exp.DayOfWeek,
)
SAFE_INTEGER = 2**31
FLOATS = (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT)
# DuckDB sums DECIMALs of up to 18 digits in 38, with room for 10^20 of them.
MAX_EXACT_SUM_DIGITS = 18
DOUBLE_TYPES = {exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT}


def compile_query(
    analysis: Analysis,
    cards: dict[str, AssetCard],
    catalogs: dict[str, str],
    stored_bounded: frozenset[str] = frozenset(),
    rows_per_unit: dict[str, int | None] | None = None,
    coded: frozenset[str] = frozenset(),
) -> CompiledQuery:
    """The query as the enclave runs it; `stored_bounded` names assets whose measures were
    clamped and DOUBLEs made canonical when stored, so their scans need not do it again,
    `rows_per_unit` the most rows any unit has in each asset whose data was checked for it, and
    `coded` the assets stored with their dimensions' codes (`sandbox.codes`)."""
    tree = analysis.tree.copy()
    kinds = _kinds_for_copy(analysis, tree)
    limit, offset = _take_paging(tree)
    _add_unit_columns(tree, kinds, rows_per_unit or {}, cards)
    _make_total(tree)
    _clamp_scans(tree, cards, catalogs, analysis.columns, stored_bounded, coded)
    schema = {
        catalogs[asset]: {"main": {"data": {c.name: c.type for c in cards[asset].columns}}}
        for asset in analysis.assets
    }
    enforce_types(tree, schema)
    _canonical_doubles(tree)
    scanned = {table.catalog for table in tree.find_all(exp.Table) if table.catalog}
    if scanned != {catalogs[asset] for asset in analysis.assets}:
        violation = Violation("asset_resolution")
        raise QueryRejected(explained([violation]), [violation])
    magnitudes = [False] * (len(tree.selects) - 1)
    for select, _ in released_selects(tree):
        for i, projection in enumerate(select.expressions[:-1]):
            magnitudes[i] = magnitudes[i] or is_magnitude(projection)
    compiled = CompiledQuery(tree, limit, offset, tuple(magnitudes), one_checked_group(tree))
    # Where thresholds may answer (an asset that holds no personal data), generating their SQL
    # must work now, not first at run time; personal data is answered under differential
    # privacy, whose SQL is generated when its plan is made.
    if any(not cards[asset].rights.personal_data for asset in analysis.assets):
        compiled.sql(min_units=2)
        if compiled.rows_per_unit is not None:
            compiled.sql(min_units=2, by_rows=True)
    return compiled


def _kinds_for_copy(analysis: Analysis, copy: exp.Query) -> dict[int, Kind]:
    originals = list(analysis.tree.walk())
    copies = list(copy.walk())
    return {
        id(new): analysis.kinds[id(old)]
        for old, new in zip(originals, copies, strict=True)
        if id(old) in analysis.kinds
    }


def _take_paging(tree: exp.Query) -> tuple[int | None, int]:
    limit = tree.args.get("limit")
    offset = tree.args.get("offset")
    tree.set("limit", None)
    tree.set("offset", None)
    return (
        int(limit.expression.name) if limit is not None else None,
        int(offset.expression.name) if offset is not None else 0,
    )


def _unit_sources(scope: Scope, units: dict[int, list[str]]) -> list[exp.Column]:
    """Columns that carry each asset's privacy unit into this scope."""
    columns: list[exp.Column] = []
    for alias, (_, source) in scope.selected_sources.items():
        if isinstance(source, exp.Table):
            columns.append(exp.column(f"{UNIT_PREFIX}_source", table=alias))
        elif isinstance(source, Scope):
            columns += [exp.column(name, table=alias) for name in units[id(source.expression)]]
    return columns


def _add_unit_columns(
    tree: exp.Query,
    kinds: dict[int, Kind],
    rows_per_unit: dict[str, int | None],
    cards: dict[str, AssetCard],
) -> None:
    units: dict[int, list[str]] = {}
    for scope in traverse_scope(tree):
        node = scope.expression
        kind = kinds.get(id(node), Kind.ROW)
        if isinstance(node, exp.SetOperation):
            continue  # only released branches combine; each carries its own count
        sources = _unit_sources(scope, units)
        if kind is Kind.ROW:
            names = [f"{UNIT_PREFIX}{i}" for i in range(len(sources))]
            for name, column in zip(names, sources, strict=True):
                node.select(exp.alias_(column, name), copy=False)
            units[id(node)] = names
            continue
        if not sources:
            raise QueryRejected(explained([Violation("no_asset")]), [Violation("no_asset")])
        counts = [exp.Count(this=exp.Distinct(expressions=[c])) for c in sources]
        total = counts[0] if len(counts) == 1 else exp.Least(this=counts[0], expressions=counts[1:])
        node.select(exp.alias_(total, UNITS_COLUMN), copy=False)
        distinct = _distinct_units(scope, sources, cards)
        if len(distinct) < len(sources):
            node.meta[DISTINCT_UNITS] = distinct
        checked = rows_per_unit.get(single_asset(scope) or "")
        if checked is not None:
            node.meta[ROWS_PER_UNIT] = checked


def _distinct_units(
    scope: Scope, sources: list[exp.Column], cards: dict[str, AssetCard]
) -> tuple[int, ...]:
    """The positions of the unit columns whose counts can differ: a table whose privacy unit
    every row holds equal to another's (an inner join's ON says `a.unit = b.unit`) has as many
    distinct units as that one. (WHERE may not name a privacy unit at all.)"""
    select = scope.expression
    units: dict[str, tuple[str, str]] = {}  # a table's alias: its unit column and type
    for alias, (_, source) in scope.selected_sources.items():
        card = cards.get(asset_id(source)) if isinstance(source, exp.Table) else None
        # Equal floats need not be one value (-0.0 and 0.0): their counts could differ.
        if card is not None and not data_type(card.privacy_unit.type).is_type(*FLOATS):
            units[alias] = (card.privacy_unit.name, card.privacy_unit.type)
    conditions = []
    for join in select.args.get("joins") or []:
        inner = not join.side and join.kind in ("", "INNER")
        if inner and join.args.get("on") is not None:
            conditions.append(join.args["on"])
    same: dict[str, str] = {alias: alias for alias in units}

    def first(alias: str) -> str:
        while same[alias] != alias:
            alias = same[alias]
        return alias

    for condition in conditions:
        for equal in condition.flatten() if isinstance(condition, exp.And) else [condition]:
            if not isinstance(equal, exp.EQ):
                continue
            left, right = equal.this, equal.expression
            if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
                continue
            a, b = units.get(left.table), units.get(right.table)
            if a is None or b is None or a[1] != b[1] or (left.name, right.name) != (a[0], b[0]):
                continue
            same[first(left.table)] = first(right.table)
    kept, seen = [], set()
    for position, column in enumerate(sources):
        alias = column.table
        if column.name != f"{UNIT_PREFIX}_source" or alias not in units:
            kept.append(position)
        elif first(alias) not in seen:
            seen.add(first(alias))
            kept.append(position)
    return tuple(kept)


def _make_total(tree: exp.Query) -> None:
    """No expression may raise on a data value: casts become TRY_CAST, arithmetic runs in DOUBLE,
    numeric literals that DuckDB would type as wide DECIMAL or 128-bit integers become DOUBLE."""
    for node in list(tree.find_all(exp.Literal)):
        if _wide_number(node):
            node.replace(_as(node.copy(), "DOUBLE"))
    for node in list(tree.find_all(exp.Cast)):
        if not isinstance(node, exp.TryCast):
            node.replace(exp.TryCast(this=node.this, to=node.to))
    for node in list(tree.find_all(*DATE_FUNCTIONS)):
        key = "expression" if isinstance(node, exp.Extract) else "this"
        node.set(key, _in_safe_range(node.args[key]))
    for node in list(tree.find_all(*ARITHMETIC, exp.Neg, *NUMERIC_FUNCTIONS)):
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
            continue  # a negative literal, such as ROUND's decimals, cannot overflow
        keys = ("this",) if isinstance(node, NUMERIC_FUNCTIONS) else ("this", "expression")
        for key in keys:
            operand = node.args.get(key)
            if operand is not None:
                node.set(key, exp.TryCast(this=operand, to=data_type("DOUBLE")))


def _canonical_doubles(tree: exp.Query) -> None:
    """Give every computed DOUBLE one spelling per value: a round trip through DECIMAL(38,10).

    -0.0 equals 0.0 and every NaN equals every other, so each pair shares a group, and
    anything derived from the group's key (its text, the sign of 1/key) would show the sign
    of the group's first row: one person's bit. The round trip turns -0.0 into 0, NaN,
    infinities and magnitudes from 1e28 into NULL, keeps NULL, and rounds to 10 decimals.
    It runs after type checking, and x appears once, so the query grows linearly.

    A cast that only widens a value for a comparison needs none of it: comparisons treat -0.0
    as 0.0 and every NaN as every other, and its operand, if computed, was made canonical
    where it was computed. Left out there, `l_disc BETWEEN 0.05 AND 0.07` costs one cast per
    row instead of three. Arithmetic stays canonical even when compared: `1 / k > 0` would
    tell -0.0 from 0.0 through the sign of the infinity.
    """
    producers = [
        node
        for node in tree.find_all(*ARITHMETIC, exp.Neg, *NUMERIC_FUNCTIONS, exp.TryCast, bfs=False)
        if _computes_double(node) and not _only_compared(node)
    ]
    for node in reversed(producers):  # innermost first, so copies carry inner rewrites
        node.replace(canonical(node.copy()))


def _only_compared(node: exp.Expression) -> bool:
    if not isinstance(node, exp.TryCast):
        return False
    parent = node.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    return isinstance(parent, (*COMPARISONS, exp.Between, exp.In))


def _computes_double(node: exp.Expression) -> bool:
    if isinstance(node, exp.Neg):
        return not (isinstance(node.this, exp.Literal) and node.this.name.isdigit())
    if isinstance(node, exp.TryCast):
        operand_of_arithmetic = isinstance(node.parent, (*ARITHMETIC, *NUMERIC_FUNCTIONS, exp.Neg))
        return node.to.this in DOUBLE_TYPES and not operand_of_arithmetic
    return True


def _as(node: exp.Expression, type_name: str) -> exp.TryCast:
    return exp.TryCast(this=node, to=data_type(type_name))


def _in_safe_range(node: exp.Expression) -> exp.Expression:
    """A TIMESTAMP that date functions can move by a year either way without leaving the range;
    anything outside years 1 to 9999 becomes NULL."""
    moment = _as(node, "TIMESTAMP")
    low, high = (
        exp.TryCast(this=exp.Literal.string(text), to=data_type("TIMESTAMP"))
        for text in ("0001-01-01 00:00:00", "9999-12-31 23:59:59")
    )
    inside = exp.Between(this=moment.copy(), low=low, high=high)
    return exp.Case(ifs=[exp.If(this=inside, true=moment)])


def _wide_number(node: exp.Literal) -> bool:
    if node.is_string or isinstance(node.parent, exp.DataType | exp.DataTypeParam):
        return False
    if isinstance(node.parent, exp.Limit | exp.Offset):
        return False
    text = node.name
    return not text.lstrip("-").isdigit() or abs(int(text)) >= SAFE_INTEGER


def _sums_overflow(column: Column) -> bool:
    """A measure DuckDB would sum in 128 bits with room for only a few of its values (a DECIMAL
    wider than 18 digits): an overflow would turn the data into an error, so it sums as DOUBLE."""
    if column.role is not Role.MEASURE:
        return False
    typed = data_type(column.type)
    if typed.this is not exp.DataType.Type.DECIMAL or not typed.expressions:
        return False
    return int(typed.expressions[0].this.this) > MAX_EXACT_SUM_DIGITS


def _clamp_scans(
    tree: exp.Query,
    cards: dict[str, AssetCard],
    catalogs: dict[str, str],
    used: dict[str, list[str]],
    stored_bounded: frozenset[str],
    coded: frozenset[str] = frozenset(),
) -> None:
    """Each asset is read through a projection of the columns the query uses, measures clamped
    to their bounds (unless stored so), plus the privacy unit that the threshold counts, and
    where stored the codes of its coded dimensions, which only the private plan reads."""
    for table in list(tree.find_all(exp.Table)):
        if not table.db:
            continue
        card = cards[asset_id(table)]
        projections: list[exp.Expression] = []
        for column in card.columns:
            if column.name not in used.get(card.id, ()):
                continue
            reference: exp.Expression = exp.column(column.name, table=SCAN)
            if card.id not in stored_bounded:
                reference = bounded(reference, column)
            if _sums_overflow(column):
                reference = exp.TryCast(this=reference, to=data_type("DOUBLE"))
            projections.append(exp.alias_(reference, column.name))
            if card.id in coded and is_coded(column):
                code = code_name(column.name)
                projections.append(exp.alias_(exp.column(code, table=SCAN), code))
        unit = exp.column(card.privacy_unit.name, table=SCAN)
        projections.append(exp.alias_(unit, f"{UNIT_PREFIX}_source"))
        source = exp.table_("data", db="main", catalog=catalogs[card.id], alias=SCAN)
        scan = exp.select(*projections).from_(source)
        table.replace(exp.Subquery(this=scan, alias=exp.TableAlias(this=table.args["alias"].this)))
