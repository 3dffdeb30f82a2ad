"""`grants`: request, read, approve, reject and revoke grants."""

from __future__ import annotations

from typing import Annotated

import typer

from veil_client.cli.output import Format, print_table, show, show_record
from veil_client.cli.session import Key, Output, Url, connect, usage_error
from veil_client.transport import DEFAULT_URL

app = typer.Typer(no_args_is_help=True, help="Request, approve and revoke grants.")

GrantId = Annotated[str, typer.Argument(help="Grant id, g_….")]
LISTED = ["id", "developer", "assets", "purpose", "methods", "status", "valid_until"]
HISTORY = ["at", "event", "party", "by", "reason"]


@app.command("request")
def request(
    asset: Annotated[list[str], typer.Option("--asset", help="An asset (repeat for more).")],
    purpose: Annotated[str, typer.Option(help="e.g. public_welfare, commercial.")],
    scenario: Annotated[str, typer.Option(help="What the data is for, in words.")],
    valid_until: Annotated[str, typer.Option(help="End of term, e.g. 2027-01-01T00:00:00Z.")],
    method: Annotated[
        list[str] | None, typer.Option("--method", help="sql or job (repeat for both).")
    ] = None,
    valid_from: Annotated[str | None, typer.Option(help="Start of term (default now).")] = None,
    column: Annotated[
        list[str] | None,
        typer.Option("--column", help="Narrow to ASSET.COLUMN (repeat for more)."),
    ] = None,
    queries_per_day: Annotated[int | None, typer.Option(help="Quota of queries a day.")] = None,
    rows_scanned: Annotated[int | None, typer.Option(help="Quota of rows over the term.")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """Ask for a grant (developers); it is pending until every party approves."""
    quotas = {"queries_per_day": queries_per_day, "rows_scanned": rows_scanned}
    quotas = {name: value for name, value in quotas.items() if value is not None}
    with connect(url, key, format) as veil:
        grant = veil.grants.request(
            assets=asset,
            purpose=purpose,
            scenario=scenario,
            methods=method or ["sql"],
            valid_until=valid_until,
            valid_from=valid_from,
            columns=_columns(column) if column else None,
            quotas=quotas or None,
        )
    show_record(grant, format)


@app.command("list")
def list_grants(
    status: Annotated[str | None, typer.Option(help="Only grants of this status.")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """The grants you may see, oldest first."""
    with connect(url, key, format) as veil:
        grants = veil.grants.list(status)
    show(grants, format, [grant.model_dump() for grant in grants], LISTED)


@app.command("show")
def show_grant(
    grant_id: GrantId, url: Url = DEFAULT_URL, key: Key = None, format: Output = Format.table
) -> None:
    """One grant; the table lists its history after it."""
    with connect(url, key, format) as veil:
        grant = veil.grants.get(grant_id)
    show_record(grant, format, leave_out=["history"] if format is Format.table else [])
    if format is Format.table:
        events = [event.model_dump() for event in grant.history]
        print_table(HISTORY, [[event[name] for name in HISTORY] for event in events])


@app.command("approve")
def approve(
    grant_id: GrantId, url: Url = DEFAULT_URL, key: Key = None, format: Output = Format.table
) -> None:
    """Approve a grant as a provider of its assets or a supervisor."""
    with connect(url, key, format) as veil:
        show_record(veil.grants.approve(grant_id), format)


@app.command("reject")
def reject(
    grant_id: GrantId,
    reason: Annotated[str, typer.Option(help="Why, for the developer and the ledger.")],
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """Refuse a grant whose approval is yours to give; it never activates."""
    with connect(url, key, format) as veil:
        show_record(veil.grants.reject(grant_id, reason), format)


@app.command("revoke")
def revoke(
    grant_id: GrantId,
    reason: Annotated[str | None, typer.Option(help="Why, for the ledger.")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """End a grant now; queries running under it are cancelled."""
    with connect(url, key, format) as veil:
        show_record(veil.grants.revoke(grant_id, reason), format)


def _columns(named: list[str]) -> dict[str, list[str]]:
    """`ASSET.COLUMN` options, grouped by asset (an asset id has a dot itself)."""
    columns: dict[str, list[str]] = {}
    for item in named:
        asset, dot, column = item.rpartition(".")
        if not dot or "." not in asset or not column:
            usage_error(f"--column takes ASSET.COLUMN, e.g. hospital.visits.age, not {item!r}")
        columns.setdefault(asset, []).append(column)
    return columns
