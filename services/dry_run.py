"""Dry runs: what a query or job would be decided, charged and spend, worked out from public
facts alone (cards and their row counts, the policy, grants, the caller's own budget), and
recorded without a charge; nothing runs, and no quota, budget or money is reserved.

A dry run the policy or the caller's own quota or budget refuses answers 200 with
`allow: false` and the reasons; a query the guard rejects, or a job the compiler rejects,
answers the same 422 as a real run. The operator's cap across every organisation is not
consulted (it is other tenants' activity), so a real run may still meet it.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from governance import Principal, utc_now
from ledger import AssetUse, price
from ledger.pricing import MS_PER_SECOND
from policies import Decision, Noise
from sandbox.errors import SandboxError
from sandbox.guard import Analysis
from sandbox.privacy.answer import Budget, cost
from services.errors import Denied, Exhausted
from services.jobs import JobRequest, check_code, decide_job
from services.privacy import HELD_JOB_QUERIES, allowances, contribution, period
from services.queries import BUDGET_EXHAUSTED, QueryRequest, authorise_query
from services.records import append_record, asset_use, cost_of, violated_rules
from services.runtime import Services

OUTCOME = "dry_run"
# Slack for the float sums a budget's room is compared with.
EPSILON_SLACK = 1e-9
DELTA_SLACK = 1e-15


def dry_run_query(veil: Services, *, caller: Principal, request: QueryRequest) -> dict:
    """The decision, price and privacy spend a query would meet, recorded as a dry run."""
    request = replace(request, dry_run=True, idempotency_key=None)
    try:
        query = authorise_query(veil, caller=caller, request=request)
    except (Denied, Exhausted) as refused:  # recorded as denied, marked a dry run
        return _refused([violation["rule"] for violation in refused.violations])
    analysis, decision, record = query.analysis, query.decision, dict(query.record)
    purpose = query.grant.purpose if query.grant else request.purpose or ""
    scanned = veil.enclave.rows_scanned(analysis)
    uses = [asset_use(veil, asset, rows) for asset, rows in scanned.items()]
    try:
        privacy = _query_privacy(veil, caller, analysis, decision.obligations.noise)
    except SandboxError as exc:  # a query differential privacy cannot answer, as a real run
        append_record(veil, dict(record, outcome="rejected", rules=violated_rules(exc)), "rejected")
        raise
    floors = [veil.enclave.store.get(asset).card.min_group_size or 0 for asset in analysis.assets]
    answer = _answer(
        decision, _quote(uses, decision.obligations.price_plan, purpose), privacy, "query",
        max(decision.obligations.min_distinct_units, *floors),
    )  # fmt: skip
    if privacy["mode"] == "dp" and not _fits(
        privacy["budget_left"], privacy["epsilon"], privacy["delta"]
    ):
        answer["decision"].update(allow=False, reasons=[BUDGET_EXHAUSTED])
    receipt = append_record(veil, dict(record, outcome=OUTCOME, **_recorded(answer)), OUTCOME)
    return dict(answer, receipt={"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash})


def dry_run_job(veil: Services, *, caller: Principal, request: JobRequest) -> dict:
    """The decision, price and privacy spend a job would meet at submission.

    A job held for review pays a fixed price and reserves a fixed ε as it starts (basis
    `fixed`); any other job pays for each `sql()` as a query does, the parts of the assets it
    reads, and spends each query's ε (basis `per_query`), plus its own CPU time."""
    code_sha256 = check_code(veil, caller=caller, code=request.code)
    decided = decide_job(veil, caller=caller, grant_id=request.grant_id)
    grant, decision = decided.grant, decided.decision
    record = {"type": "job_submitted", "principal": caller.id, "grant_id": grant.id,
              "assets": grant.assets, "code_sha256": code_sha256, "dry_run": True,
              "decision": {"allow": decision.allow, "reasons": list(decision.reasons),
                           "decision_id": decision.decision_id},
              "at": utc_now()}  # fmt: skip
    key = f"job:dry_run:{uuid.uuid4().hex}"
    if not decision.allow:
        veil.refused(caller.id, "denied", decision.reasons, entry=dict(record, outcome="denied"),
                     key=key)  # fmt: skip
        return _refused(list(decision.reasons))
    obligations = decision.obligations
    noise = obligations.noise
    if obligations.review != "auto":  # held: the fixed footprint job_runs.py gives it
        basis, cpu_ms, queries = "fixed", veil.settings.job_cpu_s * 1000, HELD_JOB_QUERIES
        uses = [asset_use(veil, asset, 0) for asset in grant.assets]
    else:
        basis, cpu_ms, queries = "per_query", 0, 1
        store = veil.enclave.store
        uses = [asset_use(veil, asset, store.get(asset).row_count) for asset in grant.assets]
    quote = _quote(uses, obligations.price_plan, grant.purpose, cpu_ms)
    privacy: dict = {"mode": "thresholds", "epsilon": 0.0, "delta": 0.0}
    if noise.private:
        left = _budget_left(veil, caller, grant.assets, noise)
        if basis == "fixed":  # as many queries' worth as there is room for, as it reserves
            queries = next((n for n in range(queries, 0, -1)
                            if _fits(left, noise.epsilon * n, noise.delta * n)), 0)  # fmt: skip
        privacy = {"mode": "dp", "epsilon": noise.epsilon * queries,
                   "delta": noise.delta * queries, "budget_left": left}  # fmt: skip
    answer = _answer(decision, quote, privacy, basis, obligations.min_distinct_units)
    entry = dict(record, outcome=OUTCOME, **_recorded(answer))
    receipt = veil.ledger.append(entry, idempotency_key=key)
    return dict(answer, receipt={"ledger_index": receipt.index, "leaf_hash": receipt.leaf_hash})


def _quote(uses: list[AssetUse], plan: str, purpose: str, cpu_ms: int = 0) -> dict:
    """The price of these uses, and whether CPU time the run takes is charged on top (it is
    unknown until it runs)."""
    charge = price(uses, plan=plan, purpose=purpose, cpu_ms=cpu_ms)
    timed = price(uses, plan=plan, purpose=purpose, cpu_ms=cpu_ms + MS_PER_SECOND)
    extra = cpu_ms == 0 and timed.amount_minor > charge.amount_minor
    return dict(cost_of(charge), plus_cpu_time=extra)


def _query_privacy(veil: Services, caller: Principal, analysis: Analysis, noise: Noise) -> dict:
    """What a fresh answer spends (a question answered before spends nothing), from the plan
    and the cards' public bounds, and what the caller's organisation has left."""
    if not noise.private:
        return {"mode": "thresholds", "epsilon": 0.0, "delta": 0.0}
    private = veil.enclave.private(analysis, contribution(veil, analysis.assets))
    epsilon, delta = cost(private, Budget(noise.epsilon, noise.delta))
    left = _budget_left(veil, caller, analysis.assets, noise)
    return {"mode": "dp", "epsilon": epsilon, "delta": delta, "budget_left": left}


def _budget_left(veil: Services, caller: Principal, assets: list[str], noise: Noise) -> dict:
    """ε and δ the caller's organisation has left this period, per asset."""
    spent = {row.asset: row for row in veil.budgets.spent(period(), caller.org)}
    left = {}
    for allowance in allowances(veil, assets, noise):
        used = spent.get(allowance.asset)
        left[allowance.asset] = {
            "epsilon": max(allowance.epsilon - (used.epsilon if used else 0.0), 0.0),
            "delta": max(allowance.delta - (used.delta if used else 0.0), 0.0),
        }
    return left


def _fits(left: dict, epsilon: float, delta: float) -> bool:
    return all(
        epsilon <= room["epsilon"] + EPSILON_SLACK and delta <= room["delta"] + DELTA_SLACK
        for room in left.values()
    )


def _answer(decision: Decision, quote: dict, privacy: dict, basis: str, min_units: int) -> dict:
    obligations = decision.obligations
    return {
        "dry_run": True,
        "decision": {
            "allow": decision.allow,
            "reasons": list(decision.reasons),
            "grant_id": decision.grant_id,
            "obligations": {
                "min_distinct_units": min_units,
                "max_rows": obligations.max_rows,
                "review": obligations.review,
                "price_plan": obligations.price_plan,
                "noise": obligations.noise.mode,
            },
        },
        "price": dict(quote, basis=basis),
        "privacy": privacy,
    }


def _refused(reasons: list[str]) -> dict:
    return {
        "dry_run": True,
        "decision": {"allow": False, "reasons": reasons, "grant_id": None, "obligations": None},
        "price": None,
        "privacy": None,
    }


def _recorded(answer: dict) -> dict:
    """What the ledger keeps of a dry run: its decision and quote, never a charge."""
    privacy = {key: answer["privacy"][key] for key in ("mode", "epsilon", "delta")}
    return {"quoted": {"decision": answer["decision"], "price": answer["price"],
                       "privacy": privacy}}  # fmt: skip
