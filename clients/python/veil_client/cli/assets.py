"""`assets`: the catalogue, registration, versions and destruction."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from veil_client.cli.output import Format, print_table, show, show_record
from veil_client.cli.session import Key, Output, Url, connect
from veil_client.transport import DEFAULT_URL

app = typer.Typer(no_args_is_help=True, help="Browse, register and destroy assets.")

AssetId = Annotated[str, typer.Argument(help="Asset id, namespace.name.")]
CardFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Card JSON file.")]
DataFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet.")]
LISTED = ["id", "title", "provider", "classification", "lifecycle", "version", "row_count"]
COLUMNS = ["name", "type", "role", "bounds", "domain", "description"]


@app.command("list")
def list_assets(url: Url = DEFAULT_URL, key: Key = None, format: Output = Format.table) -> None:
    """Every asset in the catalogue (cards only, never data)."""
    with connect(url, key, format) as veil:
        assets = veil.assets.list()
    show(assets, format, [asset.model_dump() for asset in assets], LISTED)


@app.command("show")
def show_asset(
    asset_id: AssetId, url: Url = DEFAULT_URL, key: Key = None, format: Output = Format.table
) -> None:
    """One asset's card; the table lists its columns and their roles after it."""
    with connect(url, key, format) as veil:
        asset = veil.assets.get(asset_id)
    show_record(asset, format, leave_out=["columns"] if format is Format.table else [])
    if format is Format.table:
        columns = [column.model_dump() for column in asset.columns]
        print_table(COLUMNS, [[column[name] for name in COLUMNS] for column in columns])


@app.command("versions")
def versions(
    asset_id: AssetId, url: Url = DEFAULT_URL, key: Key = None, format: Output = Format.table
) -> None:
    """Every card the asset has had: each data version and each revision."""
    with connect(url, key, format) as veil:
        history = veil.assets.versions(asset_id)
    rows = [{**entry.model_dump(), "title": entry.card.get("title")} for entry in history]
    show(history, format, rows, ["version", "revision", "at", "title"])


@app.command("register")
def register(
    card: CardFile,
    file: DataFile,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """Register an asset: its card and its data file (operators and providers)."""
    with connect(url, key, format) as veil:
        asset = veil.assets.register(card, file)
    show_record(asset, format)


@app.command("add-version")
def add_version(
    asset_id: AssetId,
    card: CardFile,
    file: DataFile,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """New data for an asset: the next version, under a new data key."""
    with connect(url, key, format) as veil:
        asset = veil.assets.add_version(asset_id, card, file)
    show_record(asset, format)


@app.command("destroy")
def destroy(
    asset_id: AssetId,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the ledger.")],
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """Crypto-shred an asset (operators): its data can never be read again."""
    with connect(url, key, format) as veil:
        record = veil.assets.destroy(asset_id, reason)
    show_record(record, format)


@app.command("twin")
def twin(
    asset_id: AssetId,
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="Where to write it.")],
    file_format: Annotated[str, typer.Option("--file-format", help="parquet or csv.")] = "parquet",
    rows: Annotated[int | None, typer.Option(help="Rows (default: the asset's count).")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """Download the asset's synthetic twin: its card's shape and no real record."""
    with connect(url, key, format) as veil:
        content = veil.assets.twin(asset_id, file_format, rows)
    out.write_bytes(content)
    written = {"asset": asset_id, "file": str(out), "bytes": len(content)}
    show(written, format, [written], list(written))
