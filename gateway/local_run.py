"""`veil jobs run --local`: a job run on this machine against its assets' synthetic twins, under
the same restricted compiler, SQL guard, privacy rewrite and output gate as the enclave."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from veil_client.cli.output import Format, print_json, print_table
from veil_client.cli.session import REFUSED, Key, Output, Url, connect, usage_error
from veil_client.transport import DEFAULT_URL


def run_job(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The job's .py file.")],
    assets: Annotated[
        list[str], typer.Option("--asset", help="An asset the job reads (repeat for more).")
    ],
    local: Annotated[bool, typer.Option("--local", help="Run here, against twins.")] = False,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """Run a job here against the assets' synthetic twins (--local): the outputs the gate would
    release, with no real record read. `veil jobs submit` runs it beside the data."""
    from sandbox.cards import AssetCard
    from sandbox.errors import SandboxError
    from sandbox.jobs.local import run_locally

    if not local:
        usage_error("only --local runs here; `veil jobs submit` sends a job to Veil")
    with tempfile.TemporaryDirectory(prefix="veil-twins-") as folder:
        tables, cards = {}, {}
        with connect(url, key, format) as veil:
            for asset_id in assets:
                shown = veil.assets.get(asset_id).model_dump(mode="json", exclude_none=True)
                cards[asset_id] = AssetCard.model_validate(
                    {name: shown[name] for name in AssetCard.model_fields if name in shown}
                )
                tables[asset_id] = Path(folder) / f"{asset_id}.parquet"
                tables[asset_id].write_bytes(veil.assets.twin(asset_id))
        try:
            run = run_locally(file.read_text(encoding="utf-8"), tables, cards)
        except SandboxError as refused:
            typer.echo(f"{refused.code}: {refused.message}", err=True)
            for violation in refused.violations:
                typer.echo(f"  {violation.as_dict()}", err=True)
            raise typer.Exit(REFUSED) from None
    if format is Format.json:
        print_json({"outputs": run.outputs, "review": run.review, "queries": run.queries})
        return
    for name, table in run.outputs.items():
        typer.echo(name)
        print_table(table["columns"], table["rows"])
    if run.review:
        typer.echo(f"a reviewer would look first: {', '.join(run.review)}")
