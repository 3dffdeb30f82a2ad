"""Ingest: an uploaded CSV or Parquet file checked against its card, typed, bounded, and
written into an encrypted DuckDB database."""

from __future__ import annotations

from pathlib import Path

import duckdb
from sqlglot import exp

from sandbox import keys
from sandbox.cards import DECIMAL_TYPE, PLAIN_TYPES, AssetCard, Column
from sandbox.codes import code_name, code_of, coded_columns
from sandbox.duck import attach_sql, writer_connection
from sandbox.errors import FileInvalid, Violation
from sandbox.guard.bounds import bounded, needs_bounding
from sandbox.guard.syntax import DIALECT, data_type

PARQUET_MAGIC = b"PAR1"
TABLE = "data"


def ingest(card: AssetCard, upload: Path, target: Path, data_key: bytes) -> int:
    connection = writer_connection()
    try:
        source = _source_relation(connection, upload)
        _check_columns(connection, card, source)
        connection.execute(attach_sql("staged", target, keys.duckdb_key(data_key), read_only=False))
        stored = [_stored(column) for column in card.columns]
        stored += [_code(column) for column in coded_columns(card)]
        casts = ", ".join(stored)
        connection.execute(f"CREATE TABLE staged.main.{TABLE} AS SELECT {casts} FROM {source}")
        (row_count,) = connection.execute(f"SELECT count(*) FROM staged.main.{TABLE}").fetchone()
        _check_rows_per_unit(connection, card)
        connection.execute("DETACH staged")
        return int(row_count)
    finally:
        connection.close()


def _check_rows_per_unit(connection: duckdb.DuckDBPyConnection, card: AssetCard) -> None:
    """Every privacy unit has at most the rows the card allows it (its rows without a unit
    count as one unit), or the file is refused."""
    allowed = card.privacy.max_rows_per_unit
    if allowed is None:
        return
    unit = exp.column(card.privacy_unit.name, quoted=True).sql(dialect=DIALECT)
    (most,) = connection.execute(
        f"SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM staged.main.{TABLE} "
        f"GROUP BY {unit})"
    ).fetchone()
    if most > allowed:
        raise FileInvalid(
            "a privacy unit has more rows than the card's privacy.max_rows_per_unit allows",
            [Violation("rows_per_unit_exceeded", card.privacy_unit.name)],
        )


def _stored(column: Column) -> str:
    """The column as stored: typed, and for measures and DOUBLEs bounded once and for all."""
    value: exp.Expression = exp.TryCast(
        this=exp.column(column.name, quoted=True),
        to=data_type(column.type),
    )
    if needs_bounding(column):
        value = bounded(value, column)
    return exp.alias_(value, column.name, quoted=True).sql(dialect=DIALECT)


def _code(column: Column) -> str:
    """The column's code (`sandbox.codes`), from its value as stored."""
    value = exp.TryCast(this=exp.column(column.name, quoted=True), to=data_type(column.type))
    return exp.alias_(code_of(column, value), code_name(column.name), quoted=True).sql(
        dialect=DIALECT
    )


def sniff_columns(upload: Path) -> list[tuple[str, str]]:
    """The file's columns and the card type each most likely has, for a card form to start
    from (the card, not this guess, is what ingest checks against)."""
    connection = writer_connection()
    try:
        _source_relation(connection, upload)
        path = str(upload).replace("'", "''")
        with upload.open("rb") as handle:
            parquet = handle.read(4) == PARQUET_MAGIC
        typed = f"read_parquet('{path}')" if parquet else f"read_csv('{path}', header = true)"
        try:
            described = connection.execute(f"DESCRIBE SELECT * FROM {typed}").fetchall()
        except duckdb.Error:
            described = connection.execute("DESCRIBE upload").fetchall()
    finally:
        connection.close()
    return [(str(name), _card_type(str(kind))) for name, kind, *_ in described]


def _card_type(duckdb_type: str) -> str:
    kind = duckdb_type.upper()
    if kind in PLAIN_TYPES or DECIMAL_TYPE.match(kind):
        return kind
    if kind in ("TINYINT", "UTINYINT", "USMALLINT"):
        return "INTEGER"
    if kind in ("UINTEGER", "UBIGINT", "HUGEINT"):
        return "BIGINT"
    if kind in ("FLOAT", "REAL"):
        return "DOUBLE"
    if kind.startswith("TIMESTAMP"):
        return "TIMESTAMP"
    return "VARCHAR"


def _source_relation(connection: duckdb.DuckDBPyConnection, upload: Path) -> str:
    with upload.open("rb") as handle:
        magic = handle.read(4)
    path = str(upload).replace("'", "''")
    if magic == PARQUET_MAGIC:
        source = f"read_parquet('{path}')"
    else:
        source = f"read_csv('{path}', header = true, all_varchar = true, sample_size = -1)"
    try:
        connection.execute(f"CREATE TEMP VIEW upload AS SELECT * FROM {source}")
        (rows,) = connection.execute("SELECT count(*) FROM upload").fetchone()
    except duckdb.Error as exc:
        raise FileInvalid(
            "the file could not be read as CSV with a header row or as Parquet",
            [Violation("file_unreadable")],
        ) from exc
    if rows == 0:
        raise FileInvalid("the file has no data rows", [Violation("file_empty")])
    return "upload"


def _check_columns(connection: duckdb.DuckDBPyConnection, card: AssetCard, source: str) -> None:
    names = [row[0] for row in connection.execute(f"DESCRIBE {source}").fetchall()]
    expected = [column.name for column in card.columns]
    violations = [Violation("column_missing", n) for n in expected if n not in names]
    violations += [Violation("column_not_in_card", n) for n in names if n not in expected]
    if len(set(names)) != len(names):
        violations.append(Violation("column_duplicated"))
    if violations:
        raise FileInvalid("the file's columns do not match the card", violations)
    counts = ", ".join(
        f'count(*) FILTER (WHERE "{c.name}" IS NOT NULL AND TRY_CAST("{c.name}" AS {c.type}) '
        f"IS NULL)"
        for c in card.columns
    )
    failures = connection.execute(f"SELECT {counts} FROM {source}").fetchone()
    bad = [
        Violation("type_mismatch", column.name)
        for column, failed in zip(card.columns, failures, strict=True)
        if failed
    ]
    if bad:
        columns = ", ".join(v.column or "" for v in bad)
        raise FileInvalid(f"values do not match the card's types in: {columns}", bad)
