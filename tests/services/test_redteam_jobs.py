"""Red team, durable jobs, through the services on a real home: a ledger that fails at the
wrong moment, and a submission cut short, against "no result without a durable record" and
"a held job's footprint is fixed once it starts"."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance.job_records import JobStatus, jobs
from ledger import LedgerUnavailable
from services import job_runs
from services.job_views import shown
from services.jobs import JobRequest, submit
from services.metrics import Metrics
from services.runtime import Services, open_services
from services.settings import Settings
from tests.gateway.test_jobs import BY_DISTRICT
from tests.support import OPERATOR_POLICY, start_server, stop_server

PATIENCE_S = 90
ENDED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.REJECTED, JobStatus.REVIEW,
         JobStatus.CANCELLED, JobStatus.TIMEOUT}  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's home as the HTTP tests have it (thresholds for its two assets), stopped."""
    home = tmp_path_factory.mktemp("redteam-jobs") / "home"
    stop_server(start_server(home))
    return home


@pytest.fixture
def veil(demo: Path, tmp_path: Path) -> Iterator[Services]:
    """A gateway's services, serving jobs, on a copy of the demo's home of the test's own."""
    shutil.copytree(demo, tmp_path / "home")
    services = open_services(
        Settings(home=tmp_path / "home", policy_dir=OPERATOR_POLICY), Metrics()
    )
    job_runs.start_jobs(services)
    try:
        yield services
    finally:
        services.close()


def _ended(veil: Services, job_id: str) -> JobStatus:
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        status = veil.job_records.get(job_id).status
        if status in ENDED:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never ended")


def _entries(veil: Services, job_id: str) -> list[dict]:
    return [data for _, data in veil.ledger.replay() if data.get("job_id") == job_id]


def test_tables_are_never_shown_without_their_release_on_record(
    veil: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found: the gate moved the job to succeeded, with its tables, before it appended the
    job_release entry; the ledger failing then left the tables shown to their developer with
    no record of their release. Fixed in services/job_runs.py (recorded, then moved, as a
    reviewer's decision already was)."""
    append = veil.ledger.append

    def release_fails(entry: dict, idempotency_key: str):  # noqa: ANN202 - Ledger.append's
        if entry.get("type") == "job_release":
            raise LedgerUnavailable("the ledger store failed")
        return append(entry, idempotency_key)

    monkeypatch.setattr(veil.ledger, "append", release_fails)
    analyst = veil.control.principal("analyst")
    assert analyst is not None
    job = submit(veil, caller=analyst, request=JobRequest(BY_DISTRICT, None))
    _ended(veil, job.id)
    monkeypatch.setattr(veil.ledger, "append", append)

    view = shown(veil.job_records.get(job.id), analyst, veil.settings.job_timeout_s)
    released = [e for e in _entries(veil, job.id) if e["type"] == "job_release"]
    assert view["outputs"] is None or released, view


def test_a_held_job_whose_submission_was_cut_short_is_charged_nothing(
    veil: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found: a held job whose submission never finished (its process died, or the ledger
    refused its job_submitted entry and its developer was told so) was failed as lost two
    minutes later and then charged its full fixed price (its query fees and whole CPU limit)
    although it never started and its submission is on no record. Fixed in
    services/job_runs.py (a lost job that never started is recorded as lost, charged nothing)."""
    monkeypatch.setattr(job_runs, "_write_when_due", job_runs.write_held_run)  # at once
    fintech = veil.control.principal("fintech")
    assert fintech is not None
    (grant,) = veil.control.grants_of(fintech.id)  # paid: commercial pricing
    job = veil.job_records.create(
        fintech.id, grant.id, "x = 1", reviewers=["insurer"], review=["policy"],
        price_plan="standard",
    )  # fmt: skip
    assert job.held
    with veil.control.engine.begin() as db:  # its submission began long ago, and never ended
        db.execute(
            jobs.update().where(jobs.c.id == job.id).values(queued_at=jobs.c.queued_at - 600)
        )

    job_runs.reap_lost(veil)

    lost = veil.job_records.get(job.id)
    assert lost.status is JobStatus.FAILED and lost.started is None
    charges = [e for e in _entries(veil, job.id) if e["type"] == "job"]
    assert all(charge["cost"]["amount_minor"] == 0 for charge in charges), charges
    assert veil.job_records.traced(job.id) == []  # nothing left for a later start to charge
