"""Synthetic twins: rows true to an asset's card, drawn from its public domains and bounds
alone, or from per-column histograms measured once under differential privacy.

Measuring keeps at most `max_rows_per_group` rows per privacy unit (the card's public bound),
counts each measured column's values over its public categories (a dimension's domain, a
measure's bins within its bounds, and NULL), and releases each count vector through OpenDP's
Laplace mechanism. The provider's ε is split evenly across the measured columns and the whole
spend is OpenDP's composition of their losses. Sampling rows from the released histograms is
post-processing and may use a seeded generator. Privacy units, identifiers, join keys and
columns with no public domain are placeholders: no value of theirs is ever read.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlglot import exp

from sandbox.cards import DECIMAL_TYPE, AssetCard, Column, Role, type_limit
from sandbox.duck import connect
from sandbox.guard.syntax import DIALECT, data_type
from sandbox.privacy import mechanisms

# A measure's bounds are cut into this many equal bins.
MEASURE_BINS = 20
# How many distinct placeholders a column with no public domain takes.
PLACEHOLDER_VALUES = 10
# How many distinct join-key placeholders: few enough that two twins' join keys meet.
JOIN_KEY_VALUES = 100
MAX_ROWS = 100_000
PREFIX = "synthetic"
# Where placeholder dates and times start.
EPOCH = datetime(2000, 1, 1)
INTEGER_TYPES = {"SMALLINT", "INTEGER", "BIGINT"}

# Runs SQL over the enclave's attached assets; returns the rows.
RunSql = Callable[[str], list[list]]


@dataclass(frozen=True)
class Marginals:
    """Released histograms per measured column (noisy counts, negatives made 0), the ε they
    cost as OpenDP composed it, and the rows per unit they were measured with."""

    weights: dict[str, list[float]]
    epsilon: float
    rows_per_unit: int

    def to_json(self) -> str:
        return json.dumps(
            {"weights": self.weights, "epsilon": self.epsilon, "rows_per_unit": self.rows_per_unit}
        )

    @classmethod
    def from_json(cls, text: str) -> Marginals:
        data = json.loads(text)
        return cls(data["weights"], data["epsilon"], data["rows_per_unit"])


def measured_columns(card: AssetCard) -> list[Column]:
    """The columns with public categories: dimensions with a domain (a BOOLEAN's is its type's)
    and measures (bins within their bounds)."""
    return [column for column in card.columns if _categorical(column) or _binned(column)]


def _categorical(column: Column) -> bool:
    return column.role is Role.DIMENSION and (column.domain is not None or column.type == "BOOLEAN")


def _binned(column: Column) -> bool:
    return column.role is Role.MEASURE and column.bounds is not None


def categories(column: Column) -> list:
    """A categorical column's public values, in order."""
    return list(column.domain) if column.domain is not None else [False, True]


def bins(column: Column) -> list[tuple[float, float]]:
    """A measure's bins: equal widths over its bounds (one bin when the bounds meet)."""
    low, high = column.bounds or (0.0, 0.0)
    count = MEASURE_BINS if high > low else 1
    width = (high - low) / count
    return [
        (low + width * i, high if i == count - 1 else low + width * (i + 1)) for i in range(count)
    ]


def buckets(column: Column) -> int:
    """Buckets of a measured column's histogram: its categories or bins, then NULL."""
    return (len(categories(column)) if _categorical(column) else len(bins(column))) + 1


def measure(card: AssetCard, catalog: str, epsilon: float, run: RunSql) -> Marginals:
    """Each measured column's histogram over the asset's data, released under ε in all."""
    columns = measured_columns(card)
    rows_per_unit = card.privacy.max_rows_per_group
    if not columns:
        return Marginals({}, 0.0, rows_per_unit)
    share = epsilon / len(columns)
    weights: dict[str, list[float]] = {}
    losses = []
    for column in columns:
        counts = [0] * buckets(column)
        for bucket, rows in run(counts_sql(card, catalog, column)):
            if bucket is not None:
                counts[int(bucket)] += int(rows)
        noisy = mechanisms.laplace(counts, rows_per_unit, share, integer=True)
        losses.append((mechanisms.loss(len(counts), rows_per_unit, noisy.scale, True), 0.0))
        weights[column.name] = [float(max(value, 0)) for value in noisy.values]
    spent, _ = mechanisms.composed(losses)
    return Marginals(weights, spent, rows_per_unit)


def counts_sql(card: AssetCard, catalog: str, column: Column) -> str:
    """Rows per bucket of `column` (NULL as the last bucket, values outside every category
    none), each unit's rows first cut to the card's rows per group, chosen at random."""
    unit = exp.column(card.privacy_unit.name, quoted=True)
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[unit],
        order=exp.Order(expressions=[exp.Ordered(this=exp.Rand())]),
    )
    table = exp.table_("data", db="main", catalog=catalog, quoted=True)
    bounded = (
        exp.select(exp.Star(), exp.alias_(rank, "veil_rank")).from_(table).subquery("veil_bounded")
    )
    null = exp.Is(this=exp.column(column.name, quoted=True), expression=exp.Null())
    chosen = exp.If(this=null, true=exp.Literal.number(buckets(column) - 1), false=_bucket(column))
    limit = card.privacy.max_rows_per_group
    query = (
        exp.select(exp.alias_(chosen, "veil_bucket"), exp.alias_(exp.Count(this=exp.Star()), "n"))
        .from_(bounded)
        .where(exp.LTE(this=exp.column("veil_rank"), expression=exp.Literal.number(limit)))
        .group_by(exp.column("veil_bucket"))
    )
    return query.sql(dialect=DIALECT)


def _bucket(column: Column) -> exp.Expression:
    """The bucket of a non-NULL value; NULL (not counted) when it lies in no category."""
    value = exp.column(column.name, quoted=True)
    if _categorical(column):
        case = exp.Case()
        for index, category in enumerate(categories(column)):
            condition = exp.EQ(this=value.copy(), expression=_literal(category))
            case = case.when(condition, exp.Literal.number(index))
        return case
    low, high = column.bounds or (0.0, 0.0)
    count = len(bins(column))
    if count == 1:
        return exp.Literal.number(0)
    double = data_type("DOUBLE")
    width = (high - low) / count
    offset = exp.Div(
        this=exp.Paren(this=exp.Sub(this=exp.TryCast(this=value, to=double),
                                    expression=_number(low))),
        expression=_number(width),
    )  # fmt: skip
    index = exp.TryCast(this=exp.Floor(this=offset), to=data_type("BIGINT"))
    clamped = exp.Least(
        this=exp.Greatest(this=index, expressions=[exp.Literal.number(0)]),
        expressions=[exp.Literal.number(count - 1)],
    )
    # A value the arithmetic cannot place (NaN) is not counted, and never raises.
    return clamped


def _literal(value: str | int | bool) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.Literal.string(value)


def _number(value: float) -> exp.Expression:
    return exp.TryCast(this=exp.Literal.string(repr(float(value))), to=data_type("DOUBLE"))


def synthesise(card: AssetCard, marginals: Marginals | None, rows: int, seed: int) -> list[list]:
    """`rows` rows in the card's column order: measured columns drawn from `marginals` (or
    uniformly over their public categories without them), every other column placeholders."""
    rng = random.Random(seed)
    units = max(1, math.ceil(rows / card.privacy.max_rows_per_group))
    drawn = [_column_values(column, marginals, rows, units, rng) for column in card.columns]
    return [list(row) for row in zip(*drawn, strict=True)]


def _column_values(
    column: Column, marginals: Marginals | None, rows: int, units: int, rng: random.Random
) -> list:
    if column.role is Role.IDENTIFIER:
        return [_placeholder(column, f"{PREFIX}-{column.name}", i) for i in range(rows)]
    if column.role is Role.PRIVACY_UNIT:
        return [_placeholder(column, PREFIX, rng.randrange(units)) for _ in range(rows)]
    if column.role is Role.JOIN_KEY:
        return [_placeholder(column, PREFIX, rng.randrange(JOIN_KEY_VALUES)) for _ in range(rows)]
    if not (_categorical(column) or _binned(column)):
        prefix = f"{PREFIX}-{column.name}"
        return [
            _placeholder(column, prefix, rng.randrange(PLACEHOLDER_VALUES)) for _ in range(rows)
        ]
    count = buckets(column)
    # Without marginals: every public category alike, and no NULLs.
    weights = [1.0] * (count - 1) + [0.0]
    if marginals is not None and sum(marginals.weights.get(column.name, [])) > 0:
        weights = marginals.weights[column.name]
    chosen = rng.choices(range(count), weights=weights, k=rows)
    if _categorical(column):
        values = categories(column)
        return [None if bucket == count - 1 else values[bucket] for bucket in chosen]
    edges = bins(column)
    return [None if b == count - 1 else _in_bin(column, edges[b], rng) for b in chosen]


def _in_bin(column: Column, edges: tuple[float, float], rng: random.Random) -> float | int:
    """A value uniformly within a bin, at the column's precision and inside its bounds."""
    low, high = column.bounds or edges
    value = rng.uniform(*edges)
    if column.type in INTEGER_TYPES:
        return min(max(round(value), math.ceil(low)), math.floor(high))
    match = DECIMAL_TYPE.match(column.type)
    if match:
        scale = int(match[2])
        step = 10.0**-scale
        inside = min(max(round(value, scale), _up(low, scale)), _down(high, scale))
        return round(round(inside / step) * step, scale)
    return min(max(value, low), high)


def _up(value: float, scale: int) -> float:
    return math.ceil(value * 10**scale) / 10**scale


def _down(value: float, scale: int) -> float:
    return math.floor(value * 10**scale) / 10**scale


def _placeholder(column: Column, prefix: str, n: int) -> str | int | float | bool | date:
    """A stand-in of the column's type numbered `n`: never a value read from data."""
    kind = column.type
    if kind == "VARCHAR":
        return f"{prefix}-{n:07d}"
    if kind == "BOOLEAN":
        return n % 2 == 1
    if kind == "DATE":
        return (EPOCH + timedelta(days=n % 3650)).date()
    if kind == "TIMESTAMP":
        return EPOCH + timedelta(minutes=n)
    limit = int(type_limit(kind))
    if kind in INTEGER_TYPES:
        return n % limit
    return float(n % limit)


def write(card: AssetCard, rows: list[list], target: Path, file_format: str) -> None:
    """Write the rows as CSV with a header, or as Parquet typed as the card says."""
    text = target if file_format == "csv" else target.with_name(f".{target.name}.csv")
    with text.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([column.name for column in card.columns])
        writer.writerows([_cell(value) for value in row] for row in rows)
    if file_format == "csv":
        return
    typed = typed_columns(card)
    source = exp.Literal.string(str(text)).sql(dialect=DIALECT)
    destination = exp.Literal.string(str(target)).sql(dialect=DIALECT)
    connection = connect()
    try:
        connection.execute(
            f"COPY (SELECT {typed} FROM read_csv({source}, header = true, all_varchar = true)) "
            f"TO {destination} (FORMAT parquet, KV_METADATA {{veil_synthetic: 'true'}})"
        )
    finally:
        connection.close()
        text.unlink()


def typed_columns(card: AssetCard) -> str:
    """A SELECT list casting each of the card's columns to its type (NULL where it fails)."""
    return ", ".join(
        exp.alias_(
            exp.TryCast(
                this=exp.column(column.name, quoted=True),
                to=data_type(column.type),
            ),
            column.name,
            quoted=True,
        ).sql(dialect=DIALECT)
        for column in card.columns
    )


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
