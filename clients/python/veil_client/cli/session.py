"""What every remote command shares: where Veil is, the key, the format, and exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer

from veil_client.cli.output import Format, print_json
from veil_client.client import Veil
from veil_client.errors import ConnectionFailed, VeilError

# Exit codes: a refusal (or a failed check) is 1; a usage or connection problem is 2.
REFUSED, USAGE = 1, 2

Url = Annotated[str, typer.Option("--url", envvar="VEIL_URL", help="Veil's address.")]
Key = Annotated[
    str | None,
    typer.Option("--key", envvar="VEIL_API_KEY", help="API key.", show_default=False),
]
Output = Annotated[Format, typer.Option("--format", help="table, json or csv.")]


def usage_error(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(USAGE)


@contextmanager
def connect(url: str, key: str | None, fmt: Format, *, keyed: bool = True) -> Iterator[Veil]:
    """A client for the command; Veil's refusals leave as their code and message."""
    if keyed and not key:
        usage_error("pass --key or set VEIL_API_KEY")
    try:
        with Veil(url, key) as veil:
            yield veil
    except VeilError as error:
        _report(error, fmt)
        raise typer.Exit(USAGE if isinstance(error, ConnectionFailed) else REFUSED) from None


def _report(error: VeilError, fmt: Format) -> None:
    if fmt is Format.json:
        print_json({"error": error.body()})
        return
    typer.echo(f"{error.code}: {error.message}", err=True)
    for violation in error.violations:
        where = f" ({violation.column})" if violation.column else ""
        typer.echo(f"  {violation.rule}{where}", err=True)
