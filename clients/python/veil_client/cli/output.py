"""How the CLI prints answers: a table by default, or JSON or CSV for scripts."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

# C0 and C1 controls and DEL: a value from the server must not steer the terminal.
_CONTROLS = {code: "\ufffd" for code in [*range(0x20), *range(0x7F, 0xA0)]}
# A spreadsheet runs a cell starting with these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@")


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


Row = Mapping[str, Any]


def jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(jsonable(value), indent=2, ensure_ascii=False))


def show(
    value: Any,
    fmt: Format,
    rows: Sequence[Row],
    columns: Sequence[str],
    *,
    caption: str | None = None,
) -> None:
    """`value` whole as JSON; otherwise `rows` under `columns` as a table or CSV."""
    if fmt is Format.json:
        print_json(value)
    elif fmt is Format.csv:
        write_csv(columns, [[row.get(column) for column in columns] for row in rows])
    else:
        cells = [[row.get(column) for column in columns] for row in rows]
        print_table(columns, cells, caption=caption)


def show_record(value: BaseModel, fmt: Format, *, leave_out: Sequence[str] = ()) -> None:
    """One object: JSON whole, or a field/value table or CSV of its fields."""
    fields = {k: v for k, v in value.model_dump(mode="json").items() if k not in leave_out}
    rows = [{"field": name, "value": field} for name, field in fields.items()]
    show(value, fmt, rows, ["field", "value"])


def write_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([_text(column, spreadsheet=True) for column in columns])
    writer.writerows([[_text(cell, spreadsheet=True) for cell in row] for row in rows])


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    caption: str | None = None,
) -> None:
    """A table, then the lines of `caption` under it."""
    table = Table(title=title)
    for column in columns:
        table.add_column(Text(_text(column)))
    for row in rows:
        table.add_row(*(Text(_text(cell)) for cell in row))
    console = _console()
    console.print(table)
    for line in (caption or "").splitlines():
        console.print(Text(_text(line)))


def _console() -> Console:
    # Piped output keeps whole values on one line instead of wrapping them at 80 columns.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 1000)


def _text(value: Any, spreadsheet: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, str):
        text = value
    elif isinstance(value, list) and all(isinstance(item, str | int | float) for item in value):
        text = ", ".join(str(item) for item in value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = text.translate(_CONTROLS)
    if spreadsheet and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text
