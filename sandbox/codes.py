"""Dimension codes: each text dimension with a public domain is also stored as its value's
position in that domain, which DuckDB groups several times faster than the text itself.

Only the enclave's own SQL reads a code (a private group-by over public domains); the column is
named with the reserved `veil_` prefix, so no query can name it and no card can declare it.
"""

from __future__ import annotations

from sqlglot import exp

from sandbox.cards import AssetCard, Column, Role

CODE_PREFIX = "veil_code_"


def coded(column: Column) -> bool:
    """Whether `column` is stored with a code beside it."""
    return column.role is Role.DIMENSION and column.type == "VARCHAR" and column.domain is not None


def code_name(column: str) -> str:
    return f"{CODE_PREFIX}{column}"


def coded_columns(card: AssetCard) -> list[Column]:
    return [column for column in card.columns if coded(column)]


def code_of(column: Column, value: exp.Expression) -> exp.Expression:
    """The code of `value` (a text of `column`): its position in the domain, from 0; NULL for a
    NULL or a value outside the domain, which no public group holds."""
    domain = column.domain or []
    ifs = [
        exp.If(this=exp.EQ(this=value.copy(), expression=exp.Literal.string(str(v))),
               true=exp.Literal.number(i))
        for i, v in enumerate(domain)
    ]  # fmt: skip
    kind = "UTINYINT" if len(domain) <= 256 else "USMALLINT"
    return exp.Cast(this=exp.Case(ifs=ifs), to=exp.DataType.build(kind, dialect="duckdb"))
