"""Types on the compiled tree: no implicit cast is left for DuckDB to attempt on a data value.

DuckDB casts lazily, row by row, so any implicit conversion that can fail turns a data value
into an error, and an error into a one-bit answer. After the rewrites this module makes every
comparison and every value-merging expression work on one type family, turns string literals
into typed TRY_CASTs of the other side's type, widens mixed numbers to DOUBLE, requires
BOOLEAN wherever a condition is expected, and refuses what it cannot type.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext

from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types

from sandbox.errors import QueryRejected, Violation
from sandbox.guard.messages import explained
from sandbox.guard.syntax import data_type

TEXT, NUMBER, DATE, TIMESTAMP = "text", "number", "date", "timestamp"
BOOLEAN, NULL, UNKNOWN = "boolean", "null", "?"
COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def family(node: exp.Expression) -> str:
    if isinstance(node, exp.Null):
        return NULL
    data_type = node.type
    kind = data_type.this if data_type is not None else exp.DataType.Type.UNKNOWN
    if kind in exp.DataType.TEXT_TYPES:
        return TEXT
    if kind in exp.DataType.NUMERIC_TYPES:
        return NUMBER
    if kind is exp.DataType.Type.DATE:
        return DATE
    if kind in exp.DataType.TEMPORAL_TYPES:
        return TIMESTAMP
    if kind is exp.DataType.Type.BOOLEAN:
        return BOOLEAN
    if kind is exp.DataType.Type.NULL:
        return NULL
    return UNKNOWN


def _operand_groups(node: exp.Expression) -> list[list[exp.Expression]]:
    """Operands that DuckDB brings to one common type, grouped per unification."""
    if isinstance(node, COMPARISONS):
        return [[node.this, node.expression]]
    if isinstance(node, exp.In):
        return [[node.this, *node.expressions]]
    if isinstance(node, exp.Between):
        return [[node.this, node.args["low"], node.args["high"]]]
    if isinstance(node, exp.Case):
        branches = node.args.get("ifs") or []
        results = [b.args["true"] for b in branches]
        if node.args.get("default") is not None:
            results.append(node.args["default"])
        groups = [results]
        if node.this is not None:
            groups.append([node.this, *(b.this for b in branches)])
        return groups
    if isinstance(node, exp.If) and not isinstance(node.parent, exp.Case):
        return [[node.args["true"]] + ([node.args["false"]] if node.args.get("false") else [])]
    if isinstance(node, exp.Coalesce | exp.Greatest | exp.Least):
        return [[node.this, *node.expressions]]
    if isinstance(node, exp.Nullif):
        return [[node.this, node.expression]]
    return []


def _conditions(node: exp.Expression) -> list[exp.Expression]:
    """Sub-expressions DuckDB evaluates as BOOLEAN."""
    if isinstance(node, exp.Where | exp.Having | exp.Not):
        return [node.this]
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Boolean):
        return [node.this]
    if isinstance(node, exp.Join):
        return [node.args["on"]] if node.args.get("on") is not None else []
    if isinstance(node, exp.And | exp.Or):
        return [node.this, node.expression]
    if isinstance(node, exp.If) and not (
        isinstance(node.parent, exp.Case) and node.parent.this is not None
    ):
        return [node.this]
    return []


class _Typing(DuckDB):
    """DuckDB's types, without the struct type sqlglot gives every query for BigQuery's rules
    alone (its copies of each column's type were a tenth of the cost of planning)."""

    QUERY_RESULTS_ARE_STRUCTS = False


TYPING = _Typing()


def _annotate(tree: exp.Query, schema: dict) -> exp.Query:
    try:
        return annotate_types(tree, schema=schema, dialect=TYPING)
    except (SqlglotError, KeyError, ValueError, TypeError) as exc:
        raise QueryRejected(explained([Violation("type")]), [Violation("type")]) from exc


def _is_text_literal(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _coerce(tree: exp.Query) -> bool:
    """One pass of literal typing and numeric widening; True if anything changed."""
    changed = False
    for node in list(tree.walk()):
        for group in _operand_groups(node):
            typed = [o for o in group if not _is_text_literal(o) and family(o) not in (NULL,)]
            families = {family(o) for o in typed}
            if families <= {DATE, TIMESTAMP} and len(families) == 2:
                changed |= _widen(typed, "TIMESTAMP")
                continue
            if len(families) != 1 or families == {TEXT}:
                continue
            target = typed[0].type
            for operand in group:
                if _is_text_literal(operand):
                    operand.replace(exp.TryCast(this=operand.copy(), to=target.copy()))
                    changed = True
            if families == {NUMBER} and len({o.type.sql() for o in typed}) > 1:
                changed |= _literals_as_column(typed) or _widen(typed, "DOUBLE")
            if families <= {DATE, TIMESTAMP} and len({o.type.sql() for o in typed}) > 1:
                changed |= _widen(typed, "TIMESTAMP")
    return changed


def _literals_as_column(operands: list[exp.Expression]) -> bool:
    """Number literals compared with values of one exact type (integer or DECIMAL) take that
    type where they hold the same number in it: the data keeps its own type, so DuckDB can
    filter it as stored, and no data value is cast. False, and nothing changed, otherwise."""
    values = [o for o in operands if _number_literal(o) is None]
    types = {o.type.sql() for o in values}
    if len(types) != 1:
        return False
    target = values[0].type
    literals = [o for o in operands if _number_literal(o) is not None]
    if not literals or not all(holds(_number_literal(o), target) for o in literals):
        return False
    for literal in literals:
        # As text: a negative number literal would be arithmetic (a negation) to the later rewrites.
        spelled = exp.Literal.string(format(_number_literal(literal), "f"))
        literal.replace(exp.TryCast(this=spelled, to=target.copy()))
    return True


DECIMAL_DIGITS = 38
INTEGER_RANGES = {
    exp.DataType.Type.TINYINT: 2**7,
    exp.DataType.Type.SMALLINT: 2**15,
    exp.DataType.Type.INT: 2**31,
    exp.DataType.Type.BIGINT: 2**63,
}


def _number_literal(node: exp.Expression) -> Decimal | None:
    """The number a literal spells, also once made a DOUBLE (rewrite's `_make_total`)."""
    node = _as_spelled(node)
    negative = isinstance(node, exp.Neg)
    literal = _as_spelled(node.this) if negative else node
    if not isinstance(literal, exp.Literal) or literal.is_string:
        return None
    try:
        value = Decimal(literal.this)
    except InvalidOperation:
        return None
    return -value if negative else value


def _as_spelled(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.TryCast) and node.to.this is exp.DataType.Type.DOUBLE:
        node = node.this
    return node


def holds(value: Decimal, data_type: exp.DataType) -> bool:
    """Whether `value` is exactly a value of the integer or DECIMAL type."""
    if not value.is_finite():
        return False
    kind = data_type.this
    if kind in INTEGER_RANGES:
        bound = INTEGER_RANGES[kind]
        return value == value.to_integral_value() and -bound <= value < bound
    if kind is not exp.DataType.Type.DECIMAL:
        return False
    params = [int(p.this.this) for p in data_type.expressions] or [18, 3]
    precision, scale = params[0], params[1] if len(params) > 1 else 0
    if abs(value) >= Decimal(10) ** (precision - scale):
        return False
    with localcontext() as context:
        context.prec = 2 * DECIMAL_DIGITS  # room for every DECIMAL's digits, exactly
        return value == value.quantize(Decimal(1).scaleb(-scale))


def _widen(operands: list[exp.Expression], type_name: str) -> bool:
    """Bring operands of one family but different types to one type without a raising cast."""
    target = data_type(type_name)
    changed = False
    for operand in operands:
        if operand.type.this is not target.this:
            operand.replace(exp.TryCast(this=operand.copy(), to=target))
            changed = True
    return changed


def _check(tree: exp.Query) -> list[Violation]:
    violations: list[Violation] = []
    for node in tree.walk():
        for condition in _conditions(node):
            if family(condition) not in (BOOLEAN, NULL):
                violations.append(Violation("condition_not_boolean"))
        for group in _operand_groups(node):
            families = {family(o) for o in group} - {NULL}
            if UNKNOWN in families:
                violations.append(Violation("type_unknown"))
            elif len(families) > 1:
                violations.append(Violation("implicit_cast"))
        if isinstance(node, exp.SetOperation):
            left, right = node.left.selects, node.right.selects
            if len(left) != len(right) or any(
                {family(a), family(b)} - {NULL} and len({family(a), family(b)} - {NULL}) > 1
                for a, b in zip(left, right, strict=False)
            ):
                violations.append(Violation("set_operation_types"))
    return list(dict.fromkeys(violations))


def enforce_types(tree: exp.Query, schema: dict) -> exp.Query:
    """Coerce what is safe to coerce, then refuse any implicit cast that remains."""
    annotated = _annotate(tree, schema)
    for _ in range(3):
        if not _coerce(annotated):
            break
        annotated = _annotate(tree, schema)
    violations = _check(annotated)
    if violations:
        raise QueryRejected(explained(violations), violations)
    return tree
