"""One SQL query end to end: analyse and decide (before the handler), run, record, answer."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from gateway.authorisation import asset_input, decide
from gateway.control import Principal, utc_now
from gateway.errors import ApiError
from gateway.services import Services
from ledger import Receipt, price_query
from policies import Decision
from sandbox.enclave import Thresholds
from sandbox.errors import EnclaveUnavailable, SandboxError
from sandbox.guard import Analysis

SCOPE = "query:run"


@dataclass(frozen=True)
class QueryRequest:
    sql: str
    purpose: str | None
    grant_id: str | None


@dataclass(frozen=True)
class AuthorisedQuery:
    """A query the guard accepted and the policy allowed, with its ledger record so far."""

    caller: Principal
    analysis: Analysis
    decision: Decision
    record: dict


def authorise_query(veil: Services, caller: Principal, request: QueryRequest) -> AuthorisedQuery:
    """Analyse, then decide scope query:run; a rejection or denial is recorded, then raised."""
    query_id = "q_" + uuid.uuid4().hex
    record = {
        "type": "query",
        "query_id": query_id,
        "principal": caller.id,
        "sql_sha256": hashlib.sha256(request.sql.encode()).hexdigest(),
        "purpose": request.purpose,
        "grant_id": request.grant_id,
        "at": utc_now(),
    }
    try:
        analysis = veil.enclave.analyse(request.sql)
    except SandboxError as exc:
        _record(veil, dict(record, outcome="rejected", rules=_rules(exc)), "rejected")
        raise
    record.update(assets=analysis.assets, columns=analysis.columns)

    store = veil.enclave.store
    decision = decide(
        veil,
        caller,
        SCOPE,
        {
            "assets": [asset_input(store.get(asset).card) for asset in analysis.assets],
            "columns": analysis.columns,
        },
        request={"method": "sql", "purpose": request.purpose, "grant_id": request.grant_id},
        grants=[grant.as_input() for grant in veil.control.grants_of(caller.id)],
    )
    record.update(
        decision={
            "allow": decision.allow,
            "reasons": list(decision.reasons),
            "decision_id": decision.decision_id,
        },
        grant_id=decision.grant_id,
    )
    if not decision.allow:
        _record(veil, dict(record, outcome="denied"), "denied")
        raise ApiError(
            403,
            "POLICY_DENIED",
            "the policy does not allow this query",
            [{"rule": reason} for reason in decision.reasons],
        )
    return AuthorisedQuery(caller, analysis, decision, record)


def run_query(veil: Services, query: AuthorisedQuery) -> dict:
    """Run an authorised query; its ledger entry is durable before anything is answered."""
    analysis, decision, record = query.analysis, query.decision, dict(query.record)
    grant = veil.control.grant(decision.grant_id) if decision.grant_id else None
    purpose = grant.purpose if grant else record["purpose"] or ""
    obligations = decision.obligations
    record.update(
        purpose=purpose,
        obligations={
            "min_distinct_units": obligations.min_distinct_units,
            "max_rows": obligations.max_rows,
            "price_plan": obligations.price_plan,
        },
    )
    charge = price_query(
        [veil.enclave.store.get(a).card.pricing.model_dump() for a in analysis.assets],
        purpose,
        sum(veil.enclave.store.get(a).row_count for a in analysis.assets),
    )
    cost = {"amount_minor": charge.amount_minor, "currency": charge.currency}
    try:
        outcome = veil.enclave.run(
            analysis, Thresholds(obligations.min_distinct_units, obligations.max_rows)
        )
    except EnclaveUnavailable:
        _record(veil, dict(record, outcome="unavailable"), "unavailable")
        raise
    except SandboxError as exc:
        # Charged once executed and never refunded, so failures cannot be probed for free.
        _record(veil, dict(record, outcome="failed", error=exc.code, cost=cost), "failed")
        raise
    released = outcome.released
    receipt = _record(
        veil,
        dict(
            record,
            outcome="released",
            rows_released=len(released.rows),
            suppressed_rows=released.suppressed_rows,
            rows_scanned=outcome.rows_scanned,
            cost=cost,
        ),
        "released",
    )
    veil.metrics.suppressed_rows.inc(released.suppressed_rows)
    return {
        "query_id": record["query_id"],
        "columns": released.columns,
        "rows": released.rows,
        "suppressed_rows": released.suppressed_rows,
        "notes": released.notes,
        "cost": cost,
        "receipt": {"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash},
    }


def _record(veil: Services, entry: dict, outcome: str) -> Receipt:
    receipt = veil.ledger.append(entry, idempotency_key=entry["query_id"])
    veil.metrics.queries.labels(outcome).inc()
    return receipt


def _rules(exc: SandboxError) -> list[str]:
    return sorted({violation.rule for violation in exc.violations}) or [exc.code.lower()]
