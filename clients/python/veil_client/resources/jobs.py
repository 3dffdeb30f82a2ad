"""`veil.jobs`: sealed Python beside the data, a handle to follow it, and reviewers' decisions."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from veil_client.models import JobRecord, parsed
from veil_client.transport import Transport

# Where a job stops moving by itself: it ended, or a reviewer must decide.
SETTLED = frozenset({"succeeded", "failed", "rejected", "cancelled", "timeout", "review"})


class Jobs:
    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def submit(self, code: str | Path, grant_id: str | None = None) -> Job:
        """Submit job code (text, or a path to a .py file); it is queued at once."""
        text = code.read_text(encoding="utf-8") if isinstance(code, Path) else code
        body = {"code": text, **({"grant_id": grant_id} if grant_id else {})}
        answer = parsed(JobRecord, self._http.post("/v1/jobs", body))
        return Job(self, answer)

    def get(self, job_id: str) -> Job:
        """A handle on a job, with its record as the caller may see it now."""
        return Job(self, self.record(job_id))

    def record(self, job_id: str) -> JobRecord:
        return parsed(JobRecord, self._http.get(f"/v1/jobs/{job_id}"))

    def list(self, status: str | None = None) -> list[JobRecord]:
        """Developers see their own jobs, providers those on their assets, the others all."""
        return parsed(list[JobRecord], self._http.get("/v1/jobs", {"status": status})["items"])

    def cancel(self, job_id: str) -> JobRecord:
        return parsed(JobRecord, self._http.post(f"/v1/jobs/{job_id}/cancel"))

    def review(self, job_id: str, *, approve: bool, reason: str) -> JobRecord:
        """Release (approve) or withhold (reject) a held job's outputs, saying why."""
        body = {"decision": "approve" if approve else "reject", "reason": reason}
        return parsed(JobRecord, self._http.post(f"/v1/jobs/{job_id}/review", body))


class Job:
    """A submitted job: its id and the record last read."""

    def __init__(self, jobs: Jobs, record: JobRecord) -> None:
        self._jobs = jobs
        self.record = record

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def status(self) -> str:
        """The status last read; `refresh()` reads it again."""
        return self.record.status

    def refresh(self) -> JobRecord:
        self.record = self._jobs.record(self.id)
        return self.record

    def wait(
        self, *, progress: bool = False, timeout: float | None = None, interval: float = 1.0
    ) -> JobRecord:
        """Poll until the job ends or waits for a reviewer; with `progress`, print each change
        of status. Raises TimeoutError after `timeout` seconds."""
        console = Console(stderr=True) if progress else None
        deadline = None if timeout is None else time.monotonic() + timeout
        shown = None
        while True:
            if console is not None and self.status != shown:
                shown = self.status
                console.print(f"job {self.id}: [bold]{shown}[/bold]", highlight=False)
            if self.status in SETTLED:
                return self.record
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id} is still {self.status}")
            time.sleep(interval)
            self.refresh()

    def cancel(self) -> JobRecord:
        self.record = self._jobs.cancel(self.id)
        return self.record

    def review(self, *, approve: bool, reason: str) -> JobRecord:
        self.record = self._jobs.review(self.id, approve=approve, reason=reason)
        return self.record
