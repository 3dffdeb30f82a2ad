"""`emergency`: suspend and resume a principal, grant or asset at once."""

from __future__ import annotations

from typing import Annotated

import typer

from veil_client.cli.output import Format, show_record
from veil_client.cli.session import Key, Output, Url, connect, usage_error
from veil_client.transport import DEFAULT_URL

app = typer.Typer(no_args_is_help=True, help="Stop a principal, grant or asset at once.")

Principal = Annotated[str | None, typer.Option(help="A principal's id.")]
GrantId = Annotated[str | None, typer.Option("--grant", help="A grant's id.")]
AssetId = Annotated[str | None, typer.Option("--asset", help="An asset's id.")]
Reason = Annotated[str, typer.Option(help="Why, for the ledger.")]


@app.command("suspend")
def suspend(
    reason: Reason,
    principal: Principal = None,
    grant: GrantId = None,
    asset: AssetId = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """Stop one target from the next request on, cancelling its running work."""
    _one_target(principal, grant, asset)
    with connect(url, key, format) as veil:
        stop = veil.emergency.suspend(reason=reason, principal=principal, grant=grant, asset=asset)
    show_record(stop, format)


@app.command("resume")
def resume(
    reason: Reason,
    principal: Principal = None,
    grant: GrantId = None,
    asset: AssetId = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """Lift a suspension."""
    _one_target(principal, grant, asset)
    with connect(url, key, format) as veil:
        lifted = veil.emergency.resume(reason=reason, principal=principal, grant=grant, asset=asset)
    show_record(lifted, format)


def _one_target(*targets: str | None) -> None:
    if sum(target is not None for target in targets) != 1:
        usage_error("name exactly one of --principal, --grant or --asset")
