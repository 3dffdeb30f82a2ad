"""`jobs`: submit Python, follow it, cancel it, and review held outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from veil_client.cli.output import Format, print_table, show, show_record
from veil_client.cli.session import REFUSED, Key, Output, Url, connect, usage_error
from veil_client.models import JobRecord
from veil_client.transport import DEFAULT_URL

app = typer.Typer(no_args_is_help=True, help="Run Python jobs beside the data.")

JobId = Annotated[str, typer.Argument(help="Job id, j_….")]
Timeout = Annotated[float | None, typer.Option(help="Give up waiting after this many seconds.")]
LISTED = ["id", "status", "developer", "grant_id", "submitted_at", "finished_at"]
# What `wait` treats as done well: finished, or handed to a reviewer.
SETTLED_WELL = frozenset({"succeeded", "review"})


@app.command("submit")
def submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The job's .py file.")],
    grant: Annotated[str | None, typer.Option("--grant", help="Grant id to use.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it ends.")] = False,
    timeout: Timeout = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """Submit a job (developers); with --wait, follow it to its end."""
    with connect(url, key, format) as veil:
        job = veil.jobs.submit(file, grant_id=grant)
        record = _waited(job.wait, timeout) if wait else job.record
    _show_job(record, format)
    if wait:
        _exit_for(record)


@app.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="Only jobs of this status.")] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """The jobs you may see."""
    with connect(url, key, format) as veil:
        jobs = veil.jobs.list(status)
    show(jobs, format, [job.model_dump() for job in jobs], LISTED)


@app.command("status")
def status(
    job_id: JobId, url: Url = DEFAULT_URL, key: Key = None, format: Output = Format.table
) -> None:
    """A job as you may see it, with its released tables."""
    with connect(url, key, format) as veil:
        record = veil.jobs.record(job_id)
    _show_job(record, format)


@app.command("wait")
def wait(
    job_id: JobId,
    timeout: Timeout = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """Follow a job, printing each change of status, until it ends or awaits review; exit 0
    if it succeeded or awaits review, 1 otherwise."""
    with connect(url, key, format) as veil:
        record = _waited(veil.jobs.get(job_id).wait, timeout)
    _show_job(record, format)
    _exit_for(record)


@app.command("cancel")
def cancel(
    job_id: JobId, url: Url = DEFAULT_URL, key: Key = None, format: Output = Format.table
) -> None:
    """Cancel a job that has not ended."""
    with connect(url, key, format) as veil:
        _show_job(veil.jobs.cancel(job_id), format)


@app.command("review")
def review(
    job_id: JobId,
    reason: Annotated[str, typer.Option(help="Why, for the developer and the ledger.")],
    approve: Annotated[
        bool | None, typer.Option("--approve/--reject", help="Release or withhold the outputs.")
    ] = None,
    url: Url = DEFAULT_URL,
    key: Key = None,
    format: Output = Format.table,
) -> None:
    """Release (--approve) or withhold (--reject) a held job's outputs (its reviewers)."""
    if approve is None:
        usage_error("say --approve or --reject")
    with connect(url, key, format) as veil:
        _show_job(veil.jobs.review(job_id, approve=approve, reason=reason), format)


def _waited(wait: Callable[..., JobRecord], timeout: float | None) -> JobRecord:
    try:
        return wait(progress=True, timeout=timeout)
    except TimeoutError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(REFUSED) from None


def _exit_for(record: JobRecord) -> None:
    if record.status not in SETTLED_WELL:
        raise typer.Exit(REFUSED)


def _show_job(record: JobRecord, fmt: Format) -> None:
    show_record(record, fmt, leave_out=["outputs"] if fmt is not Format.json else [])
    if fmt is Format.table:
        for name, table in (record.outputs or {}).items():
            columns = [column if isinstance(column, str) else column[0] for column in table.columns]
            print_table(columns, table.rows, title=name)
