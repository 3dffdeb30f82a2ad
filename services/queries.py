"""One SQL query end to end: analyse and decide, reserve, run, record, answer."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import NoReturn

from governance import Grant, Principal, utc_now
from governance.budgets import BudgetExhausted, QuestionInFlight
from ledger import (
    ENVELOPE_PLAN,
    Charge,
    Receipt,
    billed_cpu_ms,
    canonical_json,
    price,
)
from policies import Decision
from sandbox.disclosure import Dominance, Released
from sandbox.enclave import QueryOutcome, Thresholds
from sandbox.errors import Cancelled, EnclaveUnavailable, SandboxError
from sandbox.guard import Analysis
from services.authorisation import asset_inputs, decide
from services.denials import denial
from services.errors import Conflict, Denied, Exhausted
from services.privacy import Envelope, PrivateRelease, answer_private
from services.records import (
    append_record,
    asset_use,
    metered,
    released_under,
    violated_rules,
)
from services.runtime import Services

SCOPE = "query:run"
# The grant method each data scope uses; a job's queries are decided under the job's scope.
METHODS = {"query:run": "sql", "job:submit": "job"}
MANUAL_REVIEW = "manual_review_required"
QUOTA_EXHAUSTED = "quota_exhausted"
BUDGET_EXHAUSTED = "privacy_budget_exhausted"
QUESTION_IN_FLIGHT = "question_in_flight"


@dataclass(frozen=True)
class QueryRequest:
    sql: str
    purpose: str | None
    grant_id: str | None
    idempotency_key: str | None = None
    # Decided, priced and recorded, never run (services/dry_run.py).
    dry_run: bool = False

    @property
    def fingerprint(self) -> str:
        body = {"sql": self.sql, "purpose": self.purpose, "grant_id": self.grant_id}
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()


@dataclass(frozen=True)
class AuthorisedQuery:
    """A query the guard accepted and the policy allowed, with its ledger record so far."""

    caller: Principal
    analysis: Analysis
    decision: Decision
    record: dict
    # Where a release is recorded: the caller's idempotency key, or the query's own id.
    release_key: str
    # A retry of a query already released under its idempotency key.
    retry: bool = False
    # The grant the decision named, as read for the decision.
    grant: Grant | None = None


@dataclass(frozen=True)
class ExecutedQuery:
    """A released query: its durable ledger entry, the receipt, and what was released."""

    entry: dict
    receipt: Receipt
    released: Released
    # How the answer was protected: differential privacy (with its spend and accuracy) or
    # thresholds.
    privacy: dict


def authorise_query(
    veil: Services,
    *,
    caller: Principal,
    request: QueryRequest,
    scope: str = SCOPE,
    job_id: str | None = None,
    held: bool = False,
) -> AuthorisedQuery:
    """Analyse, then decide `scope`; a rejection or denial is recorded, then raised.

    A job's `sql()` comes here with scope job:submit and its job's id, and is recorded as a
    query of that job: the same guard, decision, noise or thresholds and metering as a query. A job
    `held` for review has a footprint fixed before it ran (gateway/jobs.py): its queries are
    recorded with it, priced in its fixed price and counted in the quota it reserved.
    """
    query_id = "q_" + uuid.uuid4().hex
    release_key = query_id
    retried = None
    if request.idempotency_key is not None:
        release_key = f"query:{caller.id}:{request.idempotency_key}"
        retried = released_under(veil, release_key, request.fingerprint)
    record = {
        "type": "query",
        "query_id": query_id,
        "principal": caller.id,
        "request_sha256": request.fingerprint,
        "sql_sha256": hashlib.sha256(request.sql.encode()).hexdigest(),
        "purpose": request.purpose,
        "grant_id": request.grant_id,
        "at": utc_now(),
    }
    if job_id is not None:
        record["job_id"] = job_id
    if request.dry_run:
        record["dry_run"] = True
    if held:
        record["held"] = True
    try:
        with veil.metrics.stage("guard"):
            analysis = veil.enclave.analyse(request.sql, cache=None if held else caller.id)
    except SandboxError as exc:
        append_record(veil, dict(record, outcome="rejected", rules=violated_rules(exc)), "rejected")
        raise
    record.update(assets=analysis.assets, columns=analysis.columns)

    store = veil.enclave.store
    standing = veil.control.standing(caller.id)
    # A grant of the caller's whose term is over is expired before anything reads it. Not for
    # a held job's queries, which leave no trace their developer can time (the clock does it).
    if not held and standing.expiry_due(utc_now()):
        veil.expire_grants()
        standing = veil.control.standing(caller.id)
    cards = [store.get(asset).card for asset in analysis.assets]
    resource = {
        "assets": asset_inputs(veil, cards, standing.suspended_assets),
        "columns": analysis.columns,
    }
    policy_request = {
        "method": METHODS[scope],
        "purpose": request.purpose,
        "grant_id": request.grant_id,
    }
    grants = standing.grants
    # Grants too spent for this query are left out, so another grant of the caller may serve.
    # A retry was counted the first time, so every grant stays in.
    rows = sum(veil.enclave.rows_scanned(analysis).values())
    spent = {
        grant.id: quota
        for grant in grants
        if retried is None
        and not held
        and (quota := standing.exceeded_quota(grant, rows, utc_now()[:10]))
    }
    usable = [grant.as_input() for grant in grants if grant.id not in spent]
    decision = decide(veil, caller, scope, resource, policy_request, usable)
    if not decision.allow and spent:
        everything = [grant.as_input() for grant in grants]
        covering = decide(veil, caller, scope, resource, policy_request, everything)
        if covering.allow and covering.grant_id in spent:
            record.update(
                decision={"allow": False, "reasons": [QUOTA_EXHAUSTED],
                          "decision_id": covering.decision_id},
                grant_id=covering.grant_id,
            )  # fmt: skip
            _refuse_over_quota(veil, record, spent[covering.grant_id])
    record.update(
        decision={
            "allow": decision.allow,
            "reasons": list(decision.reasons),
            "decision_id": decision.decision_id,
        },
        grant_id=decision.grant_id,
    )
    if decision.allow and decision.obligations.review != "auto" and job_id is None:
        # A query answers in its own response, so it cannot wait for a reviewer: jobs can.
        decision = replace(decision, allow=False, reasons=(MANUAL_REVIEW,), grant_id=None)
        record["decision"].update(allow=False, reasons=[MANUAL_REVIEW])
    if not decision.allow:
        append_record(veil, dict(record, outcome="denied"), "denied")
        raise Denied(*denial(decision.reasons, analysis, grants, request.grant_id))
    grant = next((g for g in grants if g.id == decision.grant_id), None)
    if decision.grant_id is not None and grant is None:
        grant = veil.control.grant(decision.grant_id)  # a policy naming a grant not offered
        if not held and grant.due(utc_now()):
            veil.expire_grants()  # so the checks around the run find it ended
    return AuthorisedQuery(
        caller, analysis, decision, record, release_key, retried is not None, grant
    )


def _reserve_quota(veil: Services, rows: int, grant: Grant, record: dict) -> None:
    """Count the query against its grant's quotas; one that would exceed them is refused."""
    exhausted = veil.control.reserve(grant, rows, utc_now()[:10])
    if exhausted is not None:
        _refuse_over_quota(veil, record, exhausted)


def _refuse_over_quota(veil: Services, record: dict, exhausted: str) -> NoReturn:
    """Record the query as denied over `exhausted`, then refuse it: Exhausted."""
    decision = dict(record["decision"], allow=False, reasons=[QUOTA_EXHAUSTED])
    append_record(
        veil, dict(record, decision=decision, outcome="denied", quota=exhausted), "denied"
    )
    raise Exhausted(
        f"the grant's {exhausted} quota does not allow this query",
        [{"rule": QUOTA_EXHAUSTED, "column": exhausted}],
    )


def run_query(
    veil: Services, *, query: AuthorisedQuery, gone: threading.Event | None = None
) -> dict:
    """Run an authorised query, as many at once per principal as the settings allow; its
    answer as every interface shows it. Once `gone` is set (its sender went away) a query
    still waiting for its turn gives it up."""
    with veil.queries.hold(query.caller.id, gone):
        executed = execute_query(veil, query=query)
    entry, receipt, released = executed.entry, executed.receipt, executed.released
    return {
        "query_id": entry["query_id"],
        "columns": released.columns,
        "rows": released.rows,
        "suppressed_rows": released.suppressed_rows,
        "notes": released.notes,
        "privacy": executed.privacy,
        "cost": entry["cost"],
        "receipt": {"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash},
    }


def execute_query(
    veil: Services,
    *,
    query: AuthorisedQuery,
    dominance: Dominance | None = None,
    deadline: float | None = None,
    envelope: Envelope | None = None,
) -> ExecutedQuery:
    """Run an authorised query; its metered, priced entry is durable before anything is released.

    With `dominance` (a job's queries), sums and means that fail those rules are withheld. At
    `deadline` (a `time.monotonic()` instant: a job's own time limit) the query is cancelled.
    Under differential privacy a held job's queries spend its `envelope`."""
    analysis, decision, record = query.analysis, query.decision, dict(query.record)
    grant = query.grant
    held = bool(record.get("held"))
    scanned = veil.enclave.rows_scanned(analysis)
    # A retry was counted the first time; a held job's queries, in the quota it reserved.
    if grant is not None and not query.retry and not held:
        _reserve_quota(veil, sum(scanned.values()), grant, record)
    purpose = grant.purpose if grant else record["purpose"] or ""
    obligations = decision.obligations
    # A card's minimum group size is a floor the policy can raise but not lower.
    floors = [veil.enclave.store.get(asset).card.min_group_size or 0 for asset in analysis.assets]
    min_units = max(obligations.min_distinct_units, *floors)
    record.update(
        purpose=purpose,
        obligations={
            "min_distinct_units": min_units,
            "max_rows": obligations.max_rows,
            "price_plan": obligations.price_plan,
            "review": obligations.review,
        },
    )
    uses = [asset_use(veil, asset, rows) for asset, rows in scanned.items()]

    plan = ENVELOPE_PLAN if held else obligations.price_plan

    def priced(cpu_ms: int) -> Charge:
        return price(uses, plan=plan, purpose=purpose, cpu_ms=cpu_ms)

    # Priced before running, so a card that cannot be priced stops the query, not its record.
    unrun = priced(0)
    thresholds = Thresholds(min_units, obligations.max_rows, dominance)
    noise = obligations.noise
    privacy: dict = {"mode": "thresholds"}
    try:
        with (
            veil.running.track(query.caller.id, decision.grant_id, analysis.assets) as cancel,
            _cancelled_at(deadline, cancel),
        ):
            # Tracked first, checked second: a stop that committed before this check is seen
            # here, and one that commits after it finds this query tracked and cancels it.
            if not _still_allowed(veil, query):
                cancel.set()
            if noise.private:
                private = _answer_private(veil, query, record, cancel, envelope)
                privacy = private.privacy
                outcome = QueryOutcome(private.released, scanned, private.cpu_ms)
                record["privacy"] = private.recorded
            else:
                outcome = _run_unless_cancelled(veil, analysis, thresholds, cancel)
                record["privacy"] = privacy
            # Another gateway process cannot reach this one's workers; its stops show here.
            if not _still_allowed(veil, query):
                raise Cancelled("the query was stopped: its authorisation ended while it ran")
    except Cancelled:
        usage = {"rows_scanned": scanned, "cpu_ms": 0, "bytes_returned": 0}
        append_record(veil, dict(record, outcome="cancelled", usage=usage), "cancelled")
        raise
    except EnclaveUnavailable:
        append_record(veil, dict(record, outcome="unavailable"), "unavailable")
        raise
    except SandboxError as exc:
        # Charged once executed and never refunded, so failures cannot be probed for free.
        usage = {"rows_scanned": scanned, "cpu_ms": 0, "bytes_returned": 0}
        failed = metered(record, query.caller, unrun, usage, outcome="failed", error=exc.code)
        append_record(veil, failed, "failed")
        raise
    released = outcome.released
    answer = {"columns": released.columns, "rows": released.rows}
    usage = {
        "rows_scanned": scanned,
        # At the billing step: finer CPU time tells whether a suppressed group exists.
        "cpu_ms": billed_cpu_ms(outcome.cpu_ms),
        "bytes_returned": len(canonical_json(answer).encode()),
        "rows_released": len(released.rows),
        "suppressed_rows": released.suppressed_rows,
    }
    if dominance is not None:
        usage["withheld_cells"] = released.withheld_cells
    entry = metered(record, query.caller, priced(outcome.cpu_ms), usage, outcome="released")
    receipt = append_record(veil, entry, "released", key=query.release_key)
    if not receipt.fresh:
        # A retry: the first release stands, and nothing is recorded or charged twice.
        entry = released_under(veil, query.release_key, record["request_sha256"])
    veil.metrics.suppressed_rows.inc(released.suppressed_rows)
    return ExecutedQuery(entry, receipt, released, privacy)


def _answer_private(
    veil: Services,
    query: AuthorisedQuery,
    record: dict,
    cancel: threading.Event,
    envelope: Envelope | None,
) -> PrivateRelease:
    """The differentially private answer; a budget without room is a recorded Exhausted naming
    the asset, the same question being answered now a recorded Conflict."""
    noise = query.decision.obligations.noise
    if record.get("held") and envelope is None:
        envelope = Envelope(0.0, 0.0)  # a held job spends only what it reserved at its start
    try:
        return answer_private(
            veil,
            query.analysis,
            org=query.caller.org,
            query_id=record["query_id"],
            noise=noise,
            max_rows=query.decision.obligations.max_rows,
            cancel=cancel,
            envelope=envelope,
        )
    except BudgetExhausted as exc:
        # One message whichever budget ran out: the cap's state is other tenants' activity.
        decision = dict(record["decision"], allow=False, reasons=[BUDGET_EXHAUSTED])
        denied = dict(record, decision=decision, outcome="denied", budget=exc.asset)
        append_record(veil, denied, "denied")
        raise Exhausted(
            f"the privacy budget for {exc.asset} this month does not allow this query",
            [{"rule": BUDGET_EXHAUSTED, "column": exc.asset}],
        ) from exc
    except QuestionInFlight as exc:
        decision = dict(record["decision"], allow=False, reasons=[QUESTION_IN_FLIGHT])
        append_record(veil, dict(record, decision=decision, outcome="denied"), "denied")
        raise Conflict(
            "the same question is being answered now; ask again for its answer",
            [{"rule": QUESTION_IN_FLIGHT}],
        ) from exc


@contextmanager
def _cancelled_at(deadline: float | None, cancel: threading.Event) -> Iterator[None]:
    if deadline is None:
        yield
        return
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), cancel.set)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _run_unless_cancelled(
    veil: Services, analysis: Analysis, thresholds: Thresholds, cancel: threading.Event
) -> QueryOutcome:
    stopped = Cancelled("the query was stopped: its authorisation ended while it ran")
    if cancel.is_set():
        raise stopped
    with veil.metrics.stage("execution"):
        outcome = veil.enclave.run(analysis, thresholds, cancel)
    if cancel.is_set():  # stopped after the engine answered: nothing is released
        raise stopped
    return outcome


def _still_allowed(veil: Services, query: AuthorisedQuery) -> bool:
    """Whether the principal, grant and assets the decision relied on are all still in force."""
    assets = query.analysis.assets
    registered = set(veil.enclave.store.cards())
    return set(assets) <= registered and veil.control.in_force(
        query.caller.id, query.decision.grant_id, assets
    )
