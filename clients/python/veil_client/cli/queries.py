"""`queries run` and `query`: aggregate SQL, answered with checked rows and a receipt."""

from __future__ import annotations

from typing import Annotated

import typer

from veil_client.cli.output import Format, print_json, print_table, write_csv
from veil_client.cli.session import Key, Output, Url, connect
from veil_client.results import Result
from veil_client.transport import DEFAULT_URL

app = typer.Typer(no_args_is_help=True, help="Ask aggregate SQL questions.")

Sql = Annotated[str, typer.Argument(help="Aggregate SQL over granted assets.")]
Purpose = Annotated[str | None, typer.Option(help="Purpose, if not the grant's.")]
GrantOption = Annotated[str | None, typer.Option("--grant", help="Grant id to use.")]


@app.command("run")
def run(
    sql: Sql,
    purpose: Purpose = None,
    grant: GrantOption = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """Run a query and print its rows, notes, cost and receipt."""
    _answer(sql, purpose, grant, url, key, format)


def query(
    sql: Sql,
    purpose: Purpose = None,
    grant: GrantOption = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.json,
) -> None:
    """Send a query and print the answer (JSON unless --format says otherwise)."""
    _answer(sql, purpose, grant, url, key, format)


def _answer(
    sql: str, purpose: str | None, grant: str | None, url: str, key: str | None, fmt: Format
) -> None:
    with connect(url, key, fmt) as veil:
        result = veil.queries.run(sql, purpose=purpose, grant_id=grant)
    if fmt is Format.json:
        print_json(result)
    elif fmt is Format.csv:
        write_csv(result.columns, result.rows)
    else:
        print_table(result.columns, result.rows, caption=_caption(result))


def _caption(result: Result) -> str:
    lines = list(result.notes)
    if result.suppressed_rows:
        lines.append(f"{result.suppressed_rows} rows suppressed")
    if result.privacy is not None and result.privacy.epsilon is not None:
        reused = ", a reused answer" if result.privacy.reused else ""
        lines.append(f"privacy: {result.privacy.mode}, ε {result.privacy.epsilon}{reused}")
        for column, accuracy in result.privacy.columns.items():
            if "half_width_95" in accuracy:
                lines.append(f"  {column}: ± {accuracy['half_width_95']:.4g} (95%)")
    cost = result.cost
    lines.append(f"cost: {cost.amount_minor} {cost.currency or ''} (minor units)".rstrip())
    receipt = result.receipt
    lines.append(f"receipt: ledger index {receipt.ledger_index}, leaf {receipt.leaf_hash}")
    return "\n".join(lines)
