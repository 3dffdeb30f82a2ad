"""Type mixing: refuse expressions that make DuckDB cast text values, which can fail on data."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types

from sandbox.cards import AssetCard
from sandbox.errors import QueryRejected, Violation
from sandbox.guard.roles import Analysis
from sandbox.guard.syntax import DIALECT

TEXT, NUMBER, TIME, BOOLEAN = "text", "number", "time", "boolean"


def _family(node: exp.Expression) -> str | None:
    """The operand's type family; None where it adapts statically (literals, NULL) or is unknown."""
    if isinstance(node, exp.Null) or (isinstance(node, exp.Literal) and node.is_string):
        return None
    data_type = node.type
    if data_type is None or data_type.this is exp.DataType.Type.UNKNOWN:
        return None
    if data_type.this in exp.DataType.TEXT_TYPES:
        return TEXT
    if data_type.this in exp.DataType.NUMERIC_TYPES:
        return NUMBER
    if data_type.this in exp.DataType.TEMPORAL_TYPES:
        return TIME
    if data_type.this is exp.DataType.Type.BOOLEAN:
        return BOOLEAN
    return None


def _operands(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Binary) and isinstance(node, exp.Predicate):
        return [node.this, node.expression]
    if isinstance(node, exp.In):
        return [node.this, *node.expressions]
    if isinstance(node, exp.Between):
        return [node.this, node.args["low"], node.args["high"]]
    if isinstance(node, exp.Case):
        return [branch.args["true"] for branch in node.args.get("ifs") or []] + (
            [node.args["default"]] if node.args.get("default") else []
        )
    if isinstance(node, exp.If):
        return [node.args["true"]] + ([node.args["false"]] if node.args.get("false") else [])
    if isinstance(node, exp.Coalesce | exp.Greatest | exp.Least):
        return [node.this, *node.expressions]
    if isinstance(node, exp.Nullif):
        return [node.this, node.expression]
    return []


def check_types(analysis: Analysis, cards: dict[str, AssetCard]) -> None:
    schema: dict = {}
    for asset in analysis.assets:
        card = cards[asset]
        schema.setdefault(card.namespace, {})[card.name] = {c.name: c.type for c in card.columns}
    try:
        annotated = annotate_types(analysis.tree.copy(), schema=schema, dialect=DIALECT)
    except (SqlglotError, KeyError, ValueError) as exc:
        raise QueryRejected("the query's types could not be checked", [Violation("type")]) from exc
    for node in annotated.walk():
        if isinstance(node, exp.Like | exp.ILike):
            continue
        families = {_family(operand) for operand in _operands(node)} - {None}
        if TEXT in families and len(families) > 1:
            raise QueryRejected(
                "text is compared or combined with another type; cast it with TRY_CAST",
                [Violation("implicit_cast")],
            )
