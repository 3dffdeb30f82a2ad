"""Parsing and the construct allow-list: one SELECT built only from known node types and options."""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError

from sandbox.errors import QueryRejected, Violation
from sandbox.guard.messages import explained
from sandbox.guard.vocabulary import construct, option, position

DIALECT = "duckdb"


@lru_cache(maxsize=256)
def _parsed_type(name: str) -> exp.DataType:
    return exp.DataType.build(name, dialect=DIALECT)


def data_type(name: str) -> exp.DataType:
    """A DuckDB type by its name, parsed once (parsing costs far more than the copy)."""
    return _parsed_type(name).copy()


MAX_SQL_CHARS = 20_000
MAX_NODES = 5_000
# Deeper trees exhaust Python's stack in sqlglot once the rewrites have nested them further.
MAX_DEPTH = 40
# Long literals and many concatenations let one person's rows build huge strings (a timing and
# memory channel); few wildcards keep LIKE matching polynomial.
MAX_TEXT_LITERAL = 256
MAX_CONCATENATED = 16
MAX_LIKE_WILDCARDS = 2
RESERVED_PREFIX = "veil_"

_EXPR = frozenset({"this", "expression", "expressions"})

# Each allowed node type with the options it may carry; anything else set on a node rejects it.
ALLOWED_NODES: dict[type[exp.Expression], frozenset[str]] = {
    exp.Select: frozenset(
        {"with_", "expressions", "distinct", "from_", "joins", "where", "group", "having"}
        | {"order", "limit", "offset", "kind"}
    ),
    exp.Union: frozenset({"with_", "this", "expression", "distinct", "order", "limit", "offset"}),
    exp.With: frozenset({"expressions"}),
    exp.CTE: frozenset({"this", "alias"}),
    exp.Subquery: frozenset({"this", "alias"}),
    exp.TableAlias: frozenset({"this"}),
    exp.From: frozenset({"this"}),
    exp.Join: frozenset({"this", "on", "side", "kind"}),
    exp.Table: frozenset({"this", "db", "alias"}),
    exp.Column: frozenset({"this", "table"}),
    exp.Identifier: frozenset({"this", "quoted"}),
    exp.Star: frozenset(),
    exp.Alias: frozenset({"this", "alias"}),
    exp.Where: frozenset({"this"}),
    exp.Group: frozenset({"expressions"}),
    exp.Having: frozenset({"this"}),
    exp.Order: frozenset({"expressions"}),
    exp.Ordered: frozenset({"this", "desc", "nulls_first"}),
    exp.Limit: frozenset({"expression"}),
    exp.Offset: frozenset({"expression"}),
    exp.Distinct: frozenset({"expressions"}),
    exp.Literal: frozenset({"this", "is_string"}),
    exp.Null: frozenset(),
    exp.Boolean: frozenset({"this"}),
    exp.Paren: frozenset({"this"}),
    exp.DataType: frozenset({"this", "expressions", "nested"}),
    exp.DataTypeParam: frozenset({"this"}),
    exp.Var: frozenset({"this"}),
    # logic and comparison
    exp.And: _EXPR,
    exp.Or: _EXPR,
    exp.Not: _EXPR,
    exp.EQ: _EXPR,
    exp.NEQ: _EXPR,
    exp.GT: _EXPR,
    exp.GTE: _EXPR,
    exp.LT: _EXPR,
    exp.LTE: _EXPR,
    exp.Is: _EXPR,
    exp.In: frozenset({"this", "expressions"}),
    exp.Between: frozenset({"this", "low", "high"}),
    exp.Like: _EXPR,
    exp.ILike: _EXPR,
    # arithmetic (rewritten to never raise)
    exp.Add: _EXPR,
    exp.Sub: _EXPR,
    exp.Mul: _EXPR,
    exp.Div: frozenset({"this", "expression", "typed", "safe"}),
    exp.IntDiv: _EXPR,
    exp.Mod: _EXPR,
    exp.Neg: _EXPR,
    exp.DPipe: frozenset({"this", "expression", "safe"}),
    # conditionals
    exp.Case: frozenset({"this", "ifs", "default"}),
    exp.If: frozenset({"this", "true", "false"}),
    exp.Coalesce: frozenset({"this", "expressions"}),
    exp.Nullif: _EXPR,
    exp.Greatest: frozenset({"this", "expressions", "ignore_nulls"}),
    exp.Least: frozenset({"this", "expressions", "ignore_nulls"}),
    exp.Cast: frozenset({"this", "to"}),
    exp.TryCast: frozenset({"this", "to", "safe"}),
    # scalar functions that cannot fail on any value
    exp.Abs: _EXPR,
    exp.Round: frozenset({"this", "decimals"}),
    exp.Floor: _EXPR,
    exp.Ceil: _EXPR,
    exp.Lower: _EXPR,
    exp.Upper: _EXPR,
    exp.Length: _EXPR,
    exp.Substring: frozenset({"this", "start", "length"}),
    exp.Trim: frozenset({"this"}),
    exp.Concat: frozenset({"expressions", "safe", "coalesce"}),
    exp.Extract: _EXPR,
    exp.TimestampTrunc: frozenset({"this", "unit", "input_type_preserved"}),
    exp.DateTrunc: frozenset({"this", "unit", "input_type_preserved"}),
    exp.Year: _EXPR,
    exp.Month: _EXPR,
    exp.Quarter: _EXPR,
    exp.Day: _EXPR,
    exp.DayOfWeek: _EXPR,
    # aggregates
    exp.Count: frozenset({"this", "big_int"}),
    exp.Sum: _EXPR,
    exp.Avg: _EXPR,
    # Answered under differential privacy only (a median of real rows is someone's value).
    exp.Median: frozenset({"this"}),
    exp.PercentileCont: _EXPR,
}

QUANTILES = (exp.Median, exp.PercentileCont)
AGGREGATES = (exp.Count, exp.Sum, exp.Avg, *QUANTILES)
ALLOWED_CAST_TYPES = {
    exp.DataType.Type.VARCHAR,
    exp.DataType.Type.TEXT,
    exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.DOUBLE,
    exp.DataType.Type.FLOAT,
    exp.DataType.Type.DATE,
    exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPNTZ,
    exp.DataType.Type.BOOLEAN,
}
EXTRACT_PARTS = {"year", "quarter", "month", "week", "day", "dow", "dayofweek", "hour"}
TRUNC_UNITS = {"year", "quarter", "month", "week", "day", "hour"}

# The parser's descriptions a client is told, in its words; any other says only where. Some
# descriptions name the parser's classes or tokens, so none is passed on as it stands.
PARSE_PROBLEMS = {
    "Expecting (": "a ( is missing",
    "Expecting )": "a ) is missing",
    "Expecting ) or encountered unexpected keyword": "a ) is missing",
    "Expecting ]": "a ] is missing",
    "Expected ]": "a ] is missing",
    "Expecting }": "a } is missing",
    "Expected }": "a } is missing",
    "Expected type": "a type is missing",
    "Expected type after '::'": "a type is missing",
    "Invalid expression / Unexpected token": "this is not expected here",
}


def parse(sql: str) -> exp.Query:
    """Parse exactly one statement and refuse anything outside the allow-list."""
    if not sql or not sql.strip():
        raise QueryRejected(explained([Violation("empty_query")]), [Violation("empty_query")])
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRejected(explained([Violation("query_too_long")]), [Violation("query_too_long")])
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=DIALECT) if s is not None]
    except ParseError as exc:
        raise _unparsed(exc) from exc
    except TokenError as exc:
        raise QueryRejected(
            "the query could not be read: a quote or comment is not closed", [Violation("syntax")]
        ) from exc
    except SqlglotError as exc:
        raise QueryRejected("the query could not be parsed", [Violation("syntax")]) from exc
    except RecursionError as exc:
        raise QueryRejected("the query is nested too deeply", [Violation("too_complex")]) from exc
    if len(statements) != 1:
        violation = Violation("multiple_statements")
        raise QueryRejected(explained([violation]), [violation])
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.SetOperation):
        raise QueryRejected(explained([Violation("not_a_select")]), [Violation("not_a_select")])
    check_constructs(tree)
    for node in tree.walk():
        if node._meta and all(type(value) in _SCALARS for value in node._meta.values()):
            node._meta = _Positions(node._meta)
    return tree


# What the parser notes about a node (its line, column and offsets): values copied as they are.
_SCALARS = frozenset({int, str, bool, type(None)})


class _Positions(dict):
    """A node's notes of plain values, copied without the copy module's bookkeeping: the tree
    is copied whole at each step of the guard and the private plan."""

    def __deepcopy__(self, memo: dict) -> _Positions:
        return _Positions(self)


def _unparsed(exc: ParseError) -> QueryRejected:
    """Where the parser stopped, and what it missed in words of our own."""
    found = exc.errors[0] if exc.errors else {}
    line, col = found.get("line"), found.get("col")
    if not (isinstance(line, int) and isinstance(col, int)):
        return QueryRejected("the query could not be parsed", [Violation("syntax")])
    highlight = found.get("highlight")
    if isinstance(highlight, str) and highlight and "\n" not in highlight:
        col = max(1, col - len(highlight) + 1)  # the parser notes where the token ends
    problem = PARSE_PROBLEMS.get(str(found.get("description")), "the SQL is not valid here")
    return QueryRejected(
        f"the query could not be parsed at line {line}, column {col}: {problem}",
        [Violation("syntax", line=line, col=col)],
    )


def check_constructs(tree: exp.Expression) -> None:
    violations: list[Violation] = []
    constructs: dict[str, tuple[int, int] | None] = {}
    for count, (node, depth) in enumerate(_walk_with_depth(tree)):
        if count > MAX_NODES or depth > MAX_DEPTH:
            raise QueryRejected(explained([Violation("too_complex")]), [Violation("too_complex")])
        allowed = ALLOWED_NODES.get(type(node))
        named = [construct(node)] if allowed is None else [
            option(node, key) for key, value in node.args.items()
            if key not in allowed and value not in (None, False, [], "")
        ]  # fmt: skip
        for words in named:
            if words not in constructs:
                constructs[words] = position(node)
        if allowed is None:
            continue
        problem = _node_problem(node)
        if problem:
            violations.append(problem)
    concatenated = sum(
        len(node.expressions) if isinstance(node, exp.Concat) else 2
        for node in tree.find_all(exp.Concat, exp.DPipe)
    )
    if concatenated > MAX_CONCATENATED:
        violations.append(Violation("too_many_concatenations"))
    found = [
        Violation("construct_not_allowed", name=words, line=where[0] if where else None,
                  col=where[1] if where else None)
        for words, where in sorted(constructs.items())
    ] + list(dict.fromkeys(violations))  # fmt: skip
    if found:
        raise QueryRejected(explained(found, "the query uses SQL outside the allow-list"), found)


def _walk_with_depth(tree: exp.Expression):  # noqa: ANN202 - a generator of (node, depth)
    """Every node with its depth, without recursion (the tree may be deep)."""
    pending = [(tree, 0)]
    while pending:
        node, depth = pending.pop()
        yield node, depth
        pending.extend((child, depth + 1) for child in node.iter_expressions())


def _node_problem(node: exp.Expression) -> Violation | None:
    if isinstance(node, exp.Identifier) and node.name.lower().startswith(RESERVED_PREFIX):
        return Violation("reserved_name", node.name)
    if isinstance(node, exp.Select) and node.args.get("kind"):
        return Violation("construct_not_allowed", name=option(node, "kind"))
    if isinstance(node, exp.Cast | exp.TryCast) and node.to.this not in ALLOWED_CAST_TYPES:
        return Violation("cast_type_not_allowed")
    if isinstance(node, exp.Join) and (node.args.get("kind") or "").upper() not in {
        "",
        "INNER",
        "OUTER",
    }:
        return Violation("join_kind_not_allowed")
    if isinstance(node, exp.Extract) and node.name.lower() not in EXTRACT_PARTS:
        return Violation("function_argument_not_allowed")
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
        unit = node.args.get("unit")
        if unit is None or unit.name.lower() not in TRUNC_UNITS:
            return Violation("function_argument_not_allowed")
    if isinstance(node, exp.Literal) and node.is_string and len(node.name) > MAX_TEXT_LITERAL:
        return Violation("literal_too_long")
    if isinstance(node, exp.Literal) and "\x00" in node.name:
        return Violation("literal_not_allowed")
    if isinstance(node, exp.Like | exp.ILike):
        pattern = node.expression
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            return Violation("like_pattern_not_literal")
        if pattern.name.count("%") > MAX_LIKE_WILDCARDS:
            return Violation("like_pattern_too_complex")
    if isinstance(node, exp.In) and not node.expressions and node.args.get("query") is None:
        return Violation("empty_in_list")
    if isinstance(node, exp.Substring) and not all(
        _small_integer(node.args.get(key), 1, 10_000) for key in ("start", "length")
    ):
        return Violation("function_argument_not_allowed")
    if isinstance(node, exp.Round) and not _small_integer(node.args.get("decimals"), -10, 10):
        return Violation("function_argument_not_allowed")
    if isinstance(node, exp.PercentileCont) and quantile_fraction(node) is None:
        return Violation("quantile_fraction")
    if isinstance(node, exp.Limit | exp.Offset):
        value = node.expression
        if not (isinstance(value, exp.Literal) and not value.is_string and value.name.isdigit()):
            return Violation("limit_not_literal")
    return None


def quantile_fraction(node: exp.Expression) -> float | None:
    """The fraction a quantile asks for: MEDIAN's 0.5, or QUANTILE_CONT's literal in [0, 1]."""
    if isinstance(node, exp.Median):
        return 0.5
    fraction = node.args.get("expression")
    if not (isinstance(fraction, exp.Literal) and not fraction.is_string):
        return None
    try:
        value = float(fraction.name)
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


def _small_integer(node: exp.Expression | None, low: int, high: int) -> bool:
    """Absent, or an integer literal within [low, high]: arguments that cannot overflow."""
    if node is None:
        return True
    negative = isinstance(node, exp.Neg)
    literal = node.this if negative else node
    if not (isinstance(literal, exp.Literal) and not literal.is_string and literal.name.isdigit()):
        return False
    return low <= (-1 if negative else 1) * int(literal.name) <= high
