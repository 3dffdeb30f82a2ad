"""The reports as CSV: RFC 4180 (CRLF, quoted where needed) in UTF-8 with a header row, one row
per asset or line, and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from services.supervision import (
    GRANT_EVENTS,
    IN_FORCE,
    INCIDENT_COUNTS,
    JOB_OUTCOMES,
    QUERY_OUTCOMES,
)

# A cell starting with one of these is a formula (or hides one) to a spreadsheet: OWASP's list.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
DISTRIBUTION_HEADER = ["period", "tree_size", "asset", "title", "party", "currency",
                       "amount_minor", "entries"]  # fmt: skip


def inert(value: object) -> object:
    """A text cell a spreadsheet would evaluate, prefixed with ' so it shows as text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([inert(name) for name in header])
    for row in rows:
        writer.writerow(["" if cell is None else inert(cell) for cell in row])
    return out.getvalue()


def supervision_csv(report: dict) -> str:
    """One row per asset of a supervision report, its nested counts flattened into columns
    (`grants_requested`, `queries_released`, `revenue_minor_CNY`, ...)."""
    currencies = sorted({c for row in report["assets"] for c in row["revenue_minor"]})
    header = [
        "holder", "year", "tree_size", "asset", "title",
        *(f"grants_{event}" for event in (*GRANT_EVENTS, IN_FORCE)),
        "developers", "organisations",
        *(f"queries_{outcome}" for outcome in QUERY_OUTCOMES),
        *(f"jobs_{outcome}" for outcome in JOB_OUTCOMES),
        "rows_scanned",
        *(f"revenue_minor_{currency}" for currency in currencies),
        *(f"incidents_{kind}" for kind in INCIDENT_COUNTS),
    ]  # fmt: skip
    rows = [
        [
            report["holder"],
            report["year"],
            report["tree_size"],
            row["asset"],
            row["title"],
            *(row["grants"][event] for event in (*GRANT_EVENTS, IN_FORCE)),
            row["developers"],
            "; ".join(row["organisations"]),
            *(row["queries"][outcome] for outcome in QUERY_OUTCOMES),
            *(row["jobs"][outcome] for outcome in JOB_OUTCOMES),
            row["rows_scanned"],
            *(row["revenue_minor"].get(currency, 0) for currency in currencies),
            *(row["incidents"][kind] for kind in INCIDENT_COUNTS),
        ]
        for row in report["assets"]
    ]
    return table(header, rows)


def distribution_csv(report: dict) -> str:
    """One row per line of a distribution report: an asset, a party and a currency."""
    rows = [
        [
            report["period"],
            report["tree_size"],
            line["asset"],
            line["title"],
            line["party"],
            line["currency"],
            line["amount_minor"],
            line["entries"],
        ]
        for line in report["lines"]
    ]
    return table(DISTRIBUTION_HEADER, rows)
