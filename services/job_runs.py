"""A job's run: sealed in the queue, its sql() answered by the query path, its CPU metered,
its tables through the disclosure gate, and a held job's footprint fixed before it runs.

A job held for review at submission leaves a footprint fixed before it runs, since its
developer must learn nothing of the run until a reviewer decides: it reserves its queries
from the grant's quotas when it starts (as many as they allow, up to the job limit), pays a
fixed price (one query fee per asset and its whole CPU limit), and its run (every query,
its metering, the gate's verdict) is kept with the job and written to the ledger as one
entry at the latest moment it could have ended, beside the entry that charges it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from governance import Grant, Principal, utc_now
from governance.job_records import JOB_LOST, Job, JobStatus
from ledger import ENVELOPE_PLAN, AssetUse, billed_cpu_ms, canonical_json, post, price
from sandbox.cards import Role
from sandbox.disclosure import Dominance
from sandbox.errors import SandboxError
from sandbox.jobs.gate import string_literals
from sandbox.jobs.outputs import (
    CheckedOutputs,
    OutputRejected,
    OutputRules,
    check_outputs,
    gate_budget,
)
from sandbox.jobs.runner import Answer, AnswerRefused, JobLimits, JobRun
from services.authorisation import asset_inputs, decide
from services.errors import ServiceError
from services.privacy import Envelope, reserve_envelope
from services.queries import QueryRequest, authorise_query, execute_query
from services.records import charge_counted, cost_of
from services.runtime import Services

log = logging.getLogger(__name__)

SCOPE = "job:submit"
POLICY_REVIEW = "policy"
# The outcome on a held job's charge: the same whatever its run was.
HELD_OUTCOME = "held"
# Beyond its time limits, what a held job's latest end allows for: the second its start is
# stamped to, and stopping its process and recording its run after its limits.
HELD_MARGIN_S = 5
# A job's queries withhold dominated sums and means: its code could relabel what it holds.
JOB_DOMINANCE = Dominance()


def execute_logged(veil: Services, job: Job) -> None:
    """Run a job this process claimed, however it ends; a held one keeps its slot after."""
    try:
        execute(veil, job)
    except Exception:  # noqa: BLE001 - a job thread must never die silently
        log.exception("job %s failed in the runner", job.id)
        end_quietly(veil, job.id, JobStatus.FAILED, "JOB_FAILED")
    finally:
        veil.jobs.forget(job.id)  # its run's cancel event: every run sets it as it ends
        _hold_slot(veil, job.id)


def reap_lost(veil: Services) -> None:
    """Fail the running jobs of processes that stopped (JOB_LOST), each with its entry.

    The rule: a job that never started waits for any process to start it; a job that started
    is not run again, since its queries were answered, charged and spent as they ran (a retry
    would ask them again). It ends failed, charged no CPU, and nothing it spent is refunded."""
    span = veil.settings.job_timeout_s + veil.settings.job_gate_timeout_s + HELD_MARGIN_S
    for job in veil.job_records.lose_expired(span):
        log.warning("job %s was lost with its process", job.id)
        veil.metrics.jobs.labels("lost").inc()
        grant, run = veil.control.grant(job.grant_id), JobRun(status="lost", error=JOB_LOST)
        if job.started is None:
            # Its submission never finished: nothing ran and no footprint was fixed, so it is
            # recorded as lost and charged nothing, held or not (not a held job's fixed price).
            _meter(veil, replace(job, review=[]), grant, run)
            continue
        _meter(veil, job, grant, run)
        if job.held:
            _write_when_due(veil, job)


def _hold_slot(veil: Services, job_id: str) -> None:
    """A held job keeps its slot until the latest it could end, whenever it really did: its
    developer's next job starts when this slot frees, and must not tell when this one ended."""
    job = veil.job_records.get(job_id)
    if not job.held or job.started is None:
        return
    # Held in the store as well, so the developer's share stays taken past this process; the
    # time left is by the database's clock, which stamped the start and judges every lease.
    left = veil.jobs.hold(job_id, latest_end(veil, job).timestamp())
    # The start is stamped to the second; the gate runs after the job, up to its own deadline.
    if left < 0:  # its end now says when it really ended: the margin needs widening
        log.warning("held job %s ended %.1f s after its latest end", job_id, -left)
    # A fresh event, which a stop by an overseer or a shutdown sets; the job is recorded.
    veil.jobs.cancel_event(job_id).wait(max(0.0, left))
    veil.jobs.forget(job_id)
    # Written beside, not before, freeing the slot: how long writing takes (how much the job
    # did) must not delay the developer's next job.
    threading.Thread(target=write_held_run, args=(veil, job), name="held-run", daemon=True).start()


def latest_end(veil: Services, job: Job) -> datetime:
    """The latest a held job could end, gate included: when its run is written. By the
    database's clock, as its start was stamped."""
    assert job.started is not None
    latest = veil.settings.job_timeout_s + veil.settings.job_gate_timeout_s + HELD_MARGIN_S
    return job.started + timedelta(seconds=latest)


def write_held_run(veil: Services, job: Job) -> None:
    """Write a held job's fixed charge and its run, one entry each, whatever the run was."""
    grant = veil.control.grant(job.grant_id)
    charge = price(_uses(veil, grant), plan=job.price_plan, purpose=grant.purpose,
                   cpu_ms=veil.settings.job_cpu_s * 1000)  # fmt: skip
    about = {"job_id": job.id, "principal": job.developer, "grant_id": grant.id,
             "assets": grant.assets}  # fmt: skip
    receipt = veil.ledger.append(
        {"type": "job", **about, "purpose": grant.purpose, "outcome": HELD_OUTCOME,
         "usage": {"cpu_ms": billed_cpu_ms(veil.settings.job_cpu_s * 1000)},
         "cost": cost_of(charge),
         "postings": [posting.as_entry() for posting in post(charge, job.developer)],
         "at": utc_now()},
        idempotency_key=f"job:{job.id}:finished",
    )  # fmt: skip
    if receipt.fresh:
        charge_counted(veil, cost_of(charge))
    veil.ledger.append(
        {"type": "job_run", **about, "records": veil.job_records.traced(job.id),
         "at": utc_now()},
        idempotency_key=f"job:{job.id}:run",
    )  # fmt: skip
    veil.job_records.untraced(job.id)


def start_jobs(veil: Services) -> None:
    """Serve the job queue, and write the runs of held jobs a stopped process kept."""
    veil.jobs.start(lambda job: execute_logged(veil, job), lambda: reap_lost(veil))
    _write_overdue_runs(veil)


def _write_overdue_runs(veil: Services) -> None:
    """At start-up: write the runs of held jobs a stopped process kept, once each is due."""
    for job in veil.job_records.with_traces():
        if job.status is not JobStatus.RUNNING:  # a running one is reaped when its lease ends
            _write_when_due(veil, job)


def _write_when_due(veil: Services, job: Job) -> None:
    wait = 0.0
    if job.started:  # due by the database's clock, whatever this process's own says
        wait = latest_end(veil, job).timestamp() - veil.job_records.clock()
    timer = threading.Timer(max(0.0, wait), write_held_run, args=(veil, job))
    timer.daemon = True
    timer.start()


def execute(veil: Services, job: Job) -> None:
    """Run a claimed job to its end; its start and every ending are recorded, the run
    metered."""
    job_id = job.id
    _record_start(veil, job)
    grant = veil.control.grant(job.grant_id)
    caller = veil.control.principal(job.developer)
    assert caller is not None
    settings = veil.settings
    limits = JobLimits(
        wall_s=settings.job_timeout_s,
        cpu_s=settings.job_cpu_s,
        memory_bytes=settings.job_memory_mb * 1024 * 1024,
    )
    held = job.held  # review required at submission: its footprint is fixed from here on
    envelope: Envelope | None = None
    if held:
        rows_each = sum(veil.enclave.store.get(asset).row_count for asset in grant.assets)
        reserved = veil.control.reserve_envelope(grant, limits.max_queries, rows_each,
                                                 utc_now()[:10])  # fmt: skip
        limits = replace(limits, max_queries=reserved)
        envelope = _private_envelope(veil, caller, grant)
    asked = _Asked()

    def answer(sql: str) -> Answer:
        try:
            request = QueryRequest(sql, None, grant.id)
            query = authorise_query(
                veil, caller=caller, request=request, scope=SCOPE, job_id=job.id, held=held
            )
            # The job's time limit bounds its queries too: a slow answer cannot stretch its run.
            executed = execute_query(
                veil, query=query, dominance=JOB_DOMINANCE, deadline=began + limits.wall_s,
                envelope=envelope,
            )  # fmt: skip
        except (ServiceError, SandboxError) as exc:
            raise AnswerRefused(exc.code) from None
        asked.note(executed.entry)
        released = executed.released
        return Answer(released.columns, released.rows, released.units, released.dominated)

    cancel = veil.jobs.cancel_event(job_id)
    began = time.monotonic()
    with veil.running.track(caller.id, grant.id, grant.assets) as stopped:
        relay = threading.Thread(target=_relay, args=(stopped, cancel), daemon=True)
        relay.start()
        try:
            run = veil.jobs.runner.run(job_id, job.code, limits, answer, cancel)
        except SandboxError as exc:
            run = JobRun(status="failed", error=exc.code)
        finally:
            stopped.set()  # ends the relay; the job is over either way
    if run.status == "succeeded" and not veil.control.in_force(caller.id, grant.id, grant.assets):
        run = JobRun(status="cancelled", error="CANCELLED", answers=run.answers, cpu_ms=run.cpu_ms)
    _meter(veil, job, grant, run)
    if run.status != "succeeded":
        # A failure of the job's own code names its kind and line: both are functions of the
        # code and of what was released to it (sandbox/jobs/failures.py), never its message.
        error = {"code": run.error, "violations": run.violations, **run.failure}
        veil.job_records.move(job_id, JobStatus(run.status), cpu_ms=billed_cpu_ms(run.cpu_ms),
                              error=error)  # fmt: skip
        veil.metrics.jobs.labels(run.status).inc()
        return
    _gate(veil, job, grant, run, asked, limits)


def _record_start(veil: Services, job: Job) -> None:
    """Which process started the job, and when: kept with a held job's run."""
    entry = {"type": "job_started", "job_id": job.id, "principal": job.developer,
             "grant_id": job.grant_id, "by": veil.jobs.owner, "at": job.started_at}  # fmt: skip
    if job.held:
        veil.job_records.trace(job.id, entry)
        return
    veil.ledger.append(entry, idempotency_key=f"job:{job.id}:started")


def _private_envelope(veil: Services, caller: Principal, grant: Grant) -> Envelope | None:
    """A held job's ε and δ, reserved as it starts when its assets answer under differential
    privacy: what it spends is then the same whatever it asks."""
    cards = [veil.enclave.store.get(asset).card for asset in grant.assets]
    resource = {"assets": asset_inputs(veil, cards)}
    policy_request = {"method": "job", "grant_id": grant.id, "purpose": None}
    decision = decide(veil, caller, SCOPE, resource, policy_request, [grant.as_input()])
    noise = decision.obligations.noise
    if not decision.allow:
        return Envelope(0.0, 0.0)  # its queries will be denied; nothing to spend
    if not noise.private:
        return None
    return reserve_envelope(veil, caller.org, grant.assets, noise)


@dataclass
class _Asked:
    """What the job's queries were decided with: the strictest threshold and any review."""

    min_units: int = 0
    max_rows: int = 10_000
    review: bool = False

    def note(self, entry: dict) -> None:
        obligations = entry.get("obligations") or {}
        self.min_units = max(self.min_units, int(obligations.get("min_distinct_units", 0)))
        self.max_rows = min(self.max_rows, int(obligations.get("max_rows", self.max_rows)))
        self.review = self.review or obligations.get("review", "auto") != "auto"


def _relay(stopped: threading.Event, cancel: threading.Event) -> None:
    """A revocation or suspension (which sets `stopped`) cancels the job like a request does."""
    stopped.wait()
    cancel.set()


def _uses(veil: Services, grant: Grant) -> list[AssetUse]:
    uses = []
    for asset in grant.assets:
        card = veil.enclave.store.get(asset).card
        uses.append(AssetUse(asset, 0, card.pricing.model_dump(), card.revenue_shares_bp))
    return uses


def _meter(veil: Services, job: Job, grant: Grant, run: JobRun) -> None:
    """The job's own CPU time, charged to its grant's assets; its queries paid their own way.

    A held job's metering is kept with its run: its fixed price is what it is charged."""
    plan = ENVELOPE_PLAN if job.held else job.price_plan
    charge = price(_uses(veil, grant), plan=plan, purpose=grant.purpose, cpu_ms=run.cpu_ms,
                   request_fee=False)  # fmt: skip
    entry = {
            "type": "job",
            "job_id": job.id,
            "principal": job.developer,
            "grant_id": grant.id,
            "assets": grant.assets,
            "purpose": grant.purpose,
            "outcome": run.status,
            "error": run.error,
            "usage": {
                "cpu_ms": billed_cpu_ms(run.cpu_ms),
                "queries": len(run.answers),
                "tables": len(run.tables),
            },
            "cost": cost_of(charge),
            "postings": [posting.as_entry() for posting in post(charge, job.developer)],
            "at": utc_now(),
        }  # fmt: skip
    if job.held:
        veil.job_records.trace(job.id, entry)
        return
    receipt = veil.ledger.append(entry, idempotency_key=f"job:{job.id}:finished")
    if receipt.fresh:
        charge_counted(veil, cost_of(charge))


def _gate(
    veil: Services, job: Job, grant: Grant, run: JobRun, asked: _Asked, limits: JobLimits
) -> None:
    """Check the tables; release them, hold them for review, or refuse them, and record which.

    It runs in the job's slot, not on a request, within a budget and deadline of its own.
    """
    rules = OutputRules(
        forbidden_names=_unit_columns(veil, grant), literal_names=string_literals(job.code)
    ).tightened(asked.min_units, asked.max_rows)
    budget = gate_budget(limits, rules, veil.settings.job_gate_timeout_s, asked.max_rows)
    try:
        checked = check_outputs(run.tables, run.answers, rules, budget)
    except OutputRejected as exc:
        error = {"code": exc.code, "violations": [v.as_dict() for v in exc.violations]}
        rules = [v.rule for v in exc.violations]
        record_release(veil, job, "rejected", "gate", rules, None)
        veil.job_records.move(
            job.id, JobStatus.REJECTED, cpu_ms=billed_cpu_ms(run.cpu_ms), error=error
        )
        veil.refused(job.developer, "rejected", sorted(set(rules)))
        veil.metrics.jobs.labels("rejected").inc()
        return
    review = set(job.review) | set(checked.review) | ({POLICY_REVIEW} if asked.review else set())
    outputs = {name: table.as_output() for name, table in checked.tables.items()}
    disclosure = {name: table.as_record() for name, table in checked.tables.items()}
    status = JobStatus.REVIEW if review else JobStatus.SUCCEEDED
    # Recorded before the tables are shown, as a reviewer's decision is: a ledger that fails
    # here leaves the job failed, never its tables out without their record. (A move refused
    # after it, the job lost meanwhile, leaves a record of tables never shown: the safe side.)
    record_release(veil, job, "held" if review else "released", "gate", sorted(review), checked)
    veil.job_records.move(job.id, status, cpu_ms=billed_cpu_ms(run.cpu_ms), outputs=outputs,
                          disclosure=disclosure, review=sorted(review))  # fmt: skip
    veil.metrics.jobs.labels(status.value).inc()


def _unit_columns(veil: Services, grant: Grant) -> frozenset[str]:
    """Names no published column may take: the privacy units and identifiers of its assets."""
    hidden = (Role.PRIVACY_UNIT, Role.IDENTIFIER, Role.JOIN_KEY)
    return frozenset(
        column.name
        for asset in grant.assets
        for column in veil.enclave.store.get(asset).card.columns
        if column.role in hidden
    )


def record_release(
    veil: Services, job: Job, decision: str, by: str, reasons: list[str],
    checked: CheckedOutputs | None,
) -> None:  # fmt: skip
    tables = {}
    if checked is not None:
        for name, table in checked.tables.items():
            digest = hashlib.sha256(canonical_json(table.as_output()).encode()).hexdigest()
            tables[name] = {"sha256": digest, **table.as_record()}
    step = "gate" if by == "gate" else "review"
    entry = {"type": "job_release", "job_id": job.id, "principal": job.developer,
             "grant_id": job.grant_id, "decision": decision, "by": by, "reasons": reasons,
             "tables": tables, "at": utc_now()}  # fmt: skip
    if step == "gate" and job.held:  # the gate's verdict on a held job is part of its run
        veil.job_records.trace(job.id, entry)
        return
    veil.ledger.append(entry, idempotency_key=f"job:{job.id}:release:{step}")


def end_quietly(veil: Services, job_id: str, status: JobStatus, code: str) -> None:
    try:
        veil.job_records.move(job_id, status, error={"code": code, "violations": []})
    except Exception:  # noqa: BLE001 - already ended: nothing more to record
        log.info("job %s had already ended", job_id)
