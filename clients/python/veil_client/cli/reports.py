"""`budgets`, `usage` and `settlements`: what was spent, used and owed."""

from __future__ import annotations

from typing import Annotated

import typer

from veil_client.cli.output import Format, show
from veil_client.cli.session import Key, Output, Url, connect
from veil_client.models import Budgets, Settlement
from veil_client.transport import DEFAULT_URL

Period = Annotated[str | None, typer.Option(help="Month, YYYY-MM (default this one).")]
BUDGET = ["organisation", "asset", "epsilon_spent", "epsilon_left", "delta_spent", "delta_left"]
USAGE = [
    "ledger_index",
    "at",
    "principal",
    "reference",
    "outcome",
    "assets",
    "rows_scanned",
    "amount_minor",
    "currency",
]
ALL_DEVELOPERS = "(all developers)"


def budgets(
    period: Period = None, url: Url = DEFAULT_URL, key: Key = None, format: Output = Format.table
) -> None:
    """Privacy budget (ε, δ) spent and left per asset."""
    with connect(url, key, format) as veil:
        report = veil.budgets(period)
    show(report, format, _budget_rows(report), BUDGET, caption=f"period {report.period}")


def usage(
    period: Period = None,
    limit: Annotated[int, typer.Option(help="At most this many requests listed.")] = 100,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """Metered requests: yours, your assets', or everyone's."""
    with connect(url, key, format) as veil:
        report = veil.usage(period, limit)
    totals = ", ".join(f"{n} {currency}" for currency, n in report.charged_minor.items())
    caption = (
        f"period {report.period}: {report.requests} requests, "
        f"{report.rows_scanned} rows scanned, charged {totals or 'nothing'} (minor units)"
    )
    show(report, format, [line.model_dump() for line in report.items], USAGE, caption=caption)


def settlements(
    period: Period = None,
    currency: Annotated[
        str | None, typer.Option(help="Currency, when a month has several.")
    ] = None,
    postings: Annotated[bool, typer.Option("--postings", help="Every posting, as CSV.")] = False,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """What was charged in a month and what each party is owed."""
    with connect(url, key, format) as veil:
        if postings:
            typer.echo(veil.settlement_postings(period, currency), nl=False)
            return
        report = veil.settlements(period, currency)
    caption = (
        f"period {report.period}: {report.total_charged_minor} {report.currency or ''} "
        f"charged (minor units), as of tree size {report.tree_size}"
    )
    show(
        report, format, _settlement_rows(report), ["role", "name", "amount_minor"], caption=caption
    )


def _budget_rows(report: Budgets) -> list[dict]:
    rows = [{"organisation": report.organisation, **line.model_dump()} for line in report.assets]
    for organisation, lines in report.organisations.items():
        rows += [{"organisation": organisation, **line.model_dump()} for line in lines]
    rows += [
        {"organisation": ALL_DEVELOPERS, **line.model_dump()} for line in report.all_developers
    ]
    return rows


def _settlement_rows(report: Settlement) -> list[dict]:
    owed = [
        {"role": "party", "name": name, "amount_minor": n} for name, n in report.parties.items()
    ]
    paid = [
        {"role": "developer", "name": name, "amount_minor": n}
        for name, n in report.developers.items()
    ]
    return owed + paid
