"""A job run on the developer's own machine against synthetic twins: the same restricted
compiler and builtins, `sql()` through the same guard and differential-privacy rewrite (with
OpenDP noise) over an in-memory DuckDB holding the twins, and `publish()` through the same
output gate. Nothing here touches real data; it is for writing and debugging jobs.

Unlike the enclave it is not sealed (it runs the developer's own code on their own machine),
and an exception in the job reaches the caller whole instead of as a bare code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from sandbox.cards import AssetCard, Role
from sandbox.duck import Limits, connect, lock_down
from sandbox.errors import FileInvalid, SandboxError, Violation
from sandbox.guard import analyse
from sandbox.guard.syntax import DIALECT
from sandbox.jobs import helpers
from sandbox.jobs.child import PublishRefused, QueryFailed
from sandbox.jobs.gate import compile_job, job_globals, string_literals
from sandbox.jobs.outputs import CheckedOutputs, OutputRules, check_outputs
from sandbox.jobs.runner import Answer, JobLimits, Published
from sandbox.privacy.answer import Budget, answer
from sandbox.privacy.plan import private_query
from sandbox.privacy.terms import Contribution
from sandbox.store import catalog_name
from sandbox.twin import typed_columns
from sandbox.worker import plain

# Each query's ε and δ: the shipped policy's per-query terms (no budget is kept locally).
LOCAL_BUDGET = Budget(1.0, 1e-7)
PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class LocalRun:
    """What the gate would release, why a reviewer would look first, and how many sql() calls
    the job made."""

    outputs: dict[str, dict]
    review: list[str]
    queries: int


def run_locally(
    code: str,
    tables: Mapping[str, Path],
    cards: Mapping[str, AssetCard],
    *,
    budget: Budget = LOCAL_BUDGET,
) -> LocalRun:
    """Run `code` with each asset id in `tables` answered from that twin file (CSV or
    Parquet, as `GET /v1/assets/{id}/twin` gives it), typed and checked by `cards`.

    Raises JobRejected when the code does not compile, FileInvalid when a twin does not match
    its card, OutputRejected when the gate refuses the outputs, and whatever the job raises."""
    compiled = compile_job(code)
    chosen = {asset: cards[asset] for asset in tables}
    connection = _load(tables, chosen)
    try:
        asked = _Session(connection, chosen, budget)
        functions = {"sql": asked.sql, "publish": asked.publish, **helpers.FUNCTIONS}
        exec(compiled, job_globals(functions))  # noqa: S102 - restricted bytecode, own machine
    finally:
        connection.close()
    rules = OutputRules(forbidden_names=_hidden(chosen), literal_names=string_literals(code))
    checked: CheckedOutputs = check_outputs(asked.tables, asked.answers, rules)
    outputs = {name: table.as_output() for name, table in checked.tables.items()}
    return LocalRun(outputs, checked.review, asked.asked)


def _load(tables: Mapping[str, Path], cards: Mapping[str, AssetCard]) -> duckdb.DuckDBPyConnection:
    """An in-memory database holding each twin where the guard's compiled SQL looks for its
    asset, typed as its card says; then locked, so a query reaches no file."""
    connection = connect()
    try:
        for asset, path in tables.items():
            card = cards[asset]
            catalog = exp.to_identifier(catalog_name(asset), quoted=True).sql(dialect=DIALECT)
            connection.execute(f"ATTACH ':memory:' AS {catalog}")
            source = _source(Path(path))
            found = [
                row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
            ]
            expected = [column.name for column in card.columns]
            if found != expected:
                raise FileInvalid(
                    f"the twin of {asset} does not have its card's columns",
                    [Violation("column_missing", name) for name in expected if name not in found]
                    or [Violation("column_order")],
                )
            typed = typed_columns(card)
            connection.execute(f"CREATE TABLE {catalog}.main.data AS SELECT {typed} FROM {source}")
        lock_down(connection, Limits())
    except BaseException:
        connection.close()
        raise
    return connection


def _source(path: Path) -> str:
    with path.open("rb") as handle:
        parquet = handle.read(4) == PARQUET_MAGIC
    literal = exp.Literal.string(str(path)).sql(dialect=DIALECT)
    if parquet:
        return f"read_parquet({literal})"
    return f"read_csv({literal}, header = true, all_varchar = true)"


def _hidden(cards: Mapping[str, AssetCard]) -> frozenset[str]:
    """Names no published column may take, as on the server."""
    hidden = (Role.PRIVACY_UNIT, Role.IDENTIFIER, Role.JOIN_KEY)
    return frozenset(
        column.name for card in cards.values() for column in card.columns if column.role in hidden
    )


class _Session:
    """A local job's `sql()` and `publish()`, and what they gathered."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        cards: Mapping[str, AssetCard],
        budget: Budget,
    ) -> None:
        self.connection = connection
        self.cards = dict(cards)
        self.catalogs = {asset: catalog_name(asset) for asset in cards}
        self.budget = budget
        self.tables: list[Published] = []
        self.answers: list[Answer] = []
        self.asked = 0

    def sql(self, text: str) -> dict:
        if self.asked >= JobLimits.max_queries:
            raise QueryFailed("JOB_QUERY_LIMIT")
        self.asked += 1
        if not isinstance(text, str):
            raise QueryFailed("QUERY_REJECTED")
        try:
            analysis = analyse(text, self.cards, self.catalogs)
            assets = {asset: self.cards[asset] for asset in analysis.assets}
            terms = [card.privacy for card in assets.values()]
            contribution = Contribution(
                max_groups=min(t.max_groups_per_unit for t in terms),
                max_rows=min(t.max_rows_per_group for t in terms),
            )
            released = answer(private_query(analysis, assets, contribution), self.budget, self._run)
        except SandboxError as exc:
            raise QueryFailed(exc.code) from None
        except duckdb.Error:
            raise QueryFailed("QUERY_FAILED") from None
        result = released.released
        self.answers.append(Answer(result.columns, result.rows, result.units, result.dominated))
        return {"columns": list(result.columns), "rows": [list(row) for row in result.rows]}

    def _run(self, text: str) -> tuple[list[str], list[list], bool]:
        cursor = self.connection.execute(text)
        columns = [description[0] for description in cursor.description]
        return columns, [[plain(value) for value in row] for row in cursor.fetchall()], False

    def publish(self, name: str, columns: list, rows: list) -> None:
        try:
            self.tables.append(Published(name, _plain_table(columns), _plain_table(rows)))
        except (TypeError, RecursionError) as exc:
            raise PublishRefused("OUTPUT_INVALID") from exc


def _plain_table(value: Any) -> Any:
    """Lists, tuples and scalars as a job may publish them; anything else is not a table."""
    if isinstance(value, list | tuple):
        return [_plain_table(item) for item in value]
    if value is None or type(value) in (str, int, float, bool):
        return value
    raise TypeError("not a plain value")
