"""The jobs API's response models: a job as its reader may see it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gateway.schemas import Violation
from governance.job_records import JobStatus


class JobAccepted(BaseModel):
    id: str
    status: JobStatus


class OutputTable(BaseModel):
    """A table the job published, as released."""

    columns: list[str]
    rows: list[list[Any]]


class GateRecord(BaseModel):
    """What the disclosure gate did to a table; no cell value."""

    kinds: list[str]
    rows: int
    suppressed_cells: int
    notes: list[str]


class JobError(BaseModel):
    code: str = Field(description="JOB_FAILED, JOB_TIMEOUT, OUTPUT_REJECTED, CANCELLED, ...")
    violations: list[Violation]
    # A JOB_FAILED from the job's own code: its exception's type and line (docs/jobs.md).
    kind: str | None = Field(default=None, description="e.g. ZeroDivisionError")
    line: int | None = Field(default=None, description="the line in the job's code")


class JobView(BaseModel):
    """A job as its reader may see it. Until its outputs may be released, its developer sees
    the fields it sent and the status, and every other field is null."""

    id: str
    status: JobStatus
    outputs: dict[str, OutputTable] | None
    error: JobError | None
    developer: str
    grant_id: str
    code_sha256: str
    review: list[str] | None
    disclosure: dict[str, GateRecord] | None
    cpu_ms: int | None
    submitted_at: str
    started_at: str | None
    finished_at: str | None
    decided_by: str | None


class JobList(BaseModel):
    items: list[JobView]
