"""The remote commands, as `veil-client` and mounted into the server's `veil` command."""

from __future__ import annotations

import typer

from veil_client.cli import assets, emergency, grants, jobs, ledger, queries, reports


def mount(target: typer.Typer, ledger_group: typer.Typer) -> None:
    """Add every remote command to `target`, and the ledger's to its `ledger_group`."""
    target.add_typer(assets.app, name="assets")
    target.add_typer(grants.app, name="grants")
    target.add_typer(queries.app, name="queries")
    target.add_typer(jobs.app, name="jobs")
    target.add_typer(emergency.app, name="emergency")
    target.command("query")(queries.query)
    target.command("budgets")(reports.budgets)
    target.command("usage")(reports.usage)
    target.command("settlements")(reports.settlements)
    ledger.register(ledger_group)


app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals would print the API key
    help="Veil's remote commands.",
)
ledger_app = typer.Typer(no_args_is_help=True, help="Check receipts and read the ledger.")
app.add_typer(ledger_app, name="ledger")
mount(app, ledger_app)
