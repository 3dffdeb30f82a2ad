"""SQL constructs in a SQL user's words: what a refusal calls a construct, never a parser class.

Everything here is computed from the client's own query text: a construct's words, a
function's name as written, and the line and column where the client wrote it.
"""

from __future__ import annotations

from sqlglot import exp

# Longest name echoed back; a longer one is cut, so an error stays readable.
MAX_ECHOED = 80

CONSTRUCTS: dict[type[exp.Expression], str] = {
    exp.Window: "window functions (OVER)",
    exp.Filter: "FILTER (WHERE …) on an aggregate",
    exp.Exists: "EXISTS",
    exp.Any: "ANY (…)",
    exp.All: "ALL (…)",
    exp.Array: "lists ([…])",
    exp.Struct: "structs ({…})",
    exp.Placeholder: "parameters ($1, ?)",
    exp.Parameter: "parameters ($1, ?)",
    exp.Values: "VALUES lists",
    exp.Tuple: "row values ((a, b))",
    exp.Lambda: "lambda functions",
    exp.Interval: "INTERVAL",
    exp.Bracket: "subscripts (x[…])",
    exp.Slice: "slices (x[a:b])",
    exp.Dot: "field access (a.b.c)",
    exp.Intersect: "INTERSECT",
    exp.Except: "EXCEPT",
    exp.Lateral: "LATERAL",
    exp.Unnest: "UNNEST",
    exp.Pivot: "PIVOT and UNPIVOT",
    exp.Escape: "LIKE … ESCAPE",
    exp.SimilarTo: "SIMILAR TO",
    exp.Glob: "GLOB",
    exp.BitwiseAnd: "bitwise operators",
    exp.BitwiseOr: "bitwise operators",
    exp.BitwiseXor: "bitwise operators",
    exp.BitwiseNot: "bitwise operators",
    exp.BitwiseLeftShift: "bitwise operators",
    exp.BitwiseRightShift: "bitwise operators",
    exp.Collate: "COLLATE",
    exp.AtTimeZone: "AT TIME ZONE",
    exp.Kwarg: "named arguments (name := value)",
    exp.PropertyEQ: "named arguments (name := value)",
    exp.NullSafeEQ: "IS [NOT] DISTINCT FROM",
    exp.NullSafeNEQ: "IS [NOT] DISTINCT FROM",
    exp.Qualify: "QUALIFY",
    exp.TableSample: "TABLESAMPLE and USING SAMPLE",
    exp.Cube: "CUBE, ROLLUP and GROUPING SETS",
    exp.Rollup: "CUBE, ROLLUP and GROUPING SETS",
    exp.GroupingSets: "CUBE, ROLLUP and GROUPING SETS",
    exp.IgnoreNulls: "IGNORE NULLS and RESPECT NULLS",
    exp.RespectNulls: "IGNORE NULLS and RESPECT NULLS",
    exp.Hint: "optimizer hints",
    exp.Columns: "COLUMNS(…)",
}

# Options on constructs that are otherwise allowed, by (construct, option).
OPTIONS: dict[tuple[type[exp.Expression], str], str] = {
    (exp.In, "query"): "a subquery inside IN",
    (exp.In, "unnest"): "IN UNNEST",
    (exp.Select, "qualify"): "QUALIFY",
    (exp.Select, "sample"): "TABLESAMPLE and USING SAMPLE",
    (exp.Select, "windows"): "WINDOW",
    (exp.Select, "into"): "SELECT … INTO",
    (exp.Select, "locks"): "FOR UPDATE and FOR SHARE",
    (exp.Select, "laterals"): "LATERAL",
    (exp.Select, "kind"): "SELECT AS STRUCT and SELECT AS VALUE",
    (exp.Table, "sample"): "TABLESAMPLE and USING SAMPLE",
    (exp.Table, "pivots"): "PIVOT and UNPIVOT",
    (exp.Table, "catalog"): "three-part table names (catalog.schema.table)",
    (exp.Table, "laterals"): "LATERAL",
    (exp.Table, "joins"): "nested joins",
    (exp.Table, "version"): "time travel (AT …)",
    (exp.Join, "using"): "JOIN … USING",
    (exp.Join, "method"): "NATURAL, ASOF and POSITIONAL joins",
    (exp.Group, "all"): "GROUP BY ALL",
    (exp.Group, "cube"): "CUBE, ROLLUP and GROUPING SETS",
    (exp.Group, "rollup"): "CUBE, ROLLUP and GROUPING SETS",
    (exp.Group, "grouping_sets"): "CUBE, ROLLUP and GROUPING SETS",
    (exp.Group, "totals"): "WITH TOTALS",
    (exp.With, "recursive"): "WITH RECURSIVE",
    (exp.Union, "by_name"): "UNION BY NAME",
    (exp.TableAlias, "columns"): "column names on an alias (t(a, b))",
    (exp.Column, "db"): "column names with more than one qualifier",
    (exp.Column, "catalog"): "column names with more than one qualifier",
    (exp.Star, "except"): "* EXCLUDE",
    (exp.Star, "replace"): "* REPLACE",
    (exp.Star, "rename"): "* RENAME",
    (exp.Distinct, "on"): "DISTINCT ON",
    (exp.Limit, "percent"): "LIMIT … PERCENT",
    (exp.Limit, "expressions"): "LIMIT with several values",
    (exp.Ordered, "with_fill"): "WITH FILL",
    (exp.Count, "expressions"): "COUNT of several columns",
}


def construct(node: exp.Expression) -> str:
    """A construct outside the allow-list, in words (a function by its name as written)."""
    words = CONSTRUCTS.get(type(node))
    if words is not None:
        return words
    if isinstance(node, exp.Anonymous):
        return f"function {echoed(str(node.this)).lower()}"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name().lower()}"
    return _somewhere("an expression", node)


def option(node: exp.Expression, key: str) -> str:
    """An option on an allowed construct that the allow-list does not take, in words."""
    words = OPTIONS.get((type(node), key))
    if words is not None:
        return words
    return _somewhere("a clause or option", node)


def position(node: exp.Expression) -> tuple[int, int] | None:
    """Line and column (both from 1) where the client wrote `node`, if the parser noted it."""
    for part in node.walk():
        meta = part.meta
        if isinstance(meta.get("line"), int) and isinstance(meta.get("col"), int):
            # The parser notes where a token ends; its length moves that to where it starts.
            width = meta.get("end", 0) - meta.get("start", 0)
            return meta["line"], max(1, meta["col"] - max(0, width))
    return None


def echoed(name: str) -> str:
    """A name from the client's own text, cut to a readable length."""
    return name if len(name) <= MAX_ECHOED else name[: MAX_ECHOED - 1] + "…"


def _somewhere(words: str, node: exp.Expression) -> str:
    where = position(node)
    return f"{words} at line {where[0]}, column {where[1]}" if where else words
