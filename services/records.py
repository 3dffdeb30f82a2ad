"""A query's record: metered and priced, appended to the ledger (or kept with its held job),
and counted in the metrics; a release is durable before anything leaves."""

from __future__ import annotations

import json

from governance import Principal
from ledger import AssetUse, Charge, Receipt, post
from sandbox.errors import SandboxError
from services.errors import Conflict
from services.runtime import Services

# Where a held job's query is recorded first: with its job, until the job's run is written.
KEPT_WITH_JOB = Receipt(index=-1, leaf_hash="")
# Where a refusal past its principal's rate is recorded: in the summary of its window.
SUMMARISED = Receipt(index=-1, leaf_hash="")
REFUSED = ("rejected", "denied")


def released_under(veil: Services, key: str, fingerprint: str) -> dict | None:
    """The release already recorded under an idempotency key; a different request is a Conflict."""
    earlier = veil.ledger.find(key)
    if earlier is None:
        return None
    entry = json.loads(earlier.data)
    if entry.get("request_sha256") != fingerprint:
        raise Conflict("this Idempotency-Key was already used for a different request")
    return entry


def asset_use(veil: Services, asset: str, rows_scanned: int) -> AssetUse:
    card = veil.enclave.store.get(asset).card
    return AssetUse(asset, rows_scanned, card.pricing.model_dump(), card.revenue_shares_bp)


def metered(record: dict, caller: Principal, charge: Charge, usage: dict, **outcome) -> dict:
    postings = [posting.as_entry() for posting in post(charge, caller.id)]
    return dict(record, **outcome, usage=usage, cost=cost_of(charge), postings=postings)


def cost_of(charge: Charge) -> dict:
    return {
        "amount_minor": charge.amount_minor,
        "currency": charge.currency,
        "plan": charge.plan,
        # What each asset earned, so revenue can be reported per asset.
        "assets": {part.asset: part.amount_minor for part in charge.parts},
    }


def append_record(veil: Services, entry: dict, outcome: str, key: str | None = None) -> Receipt:
    """Append the query's entry (a held job's: keep it with the job; a refusal past its
    principal's rate: count it into a summary), then count it: its outcome, refusal, rows and
    charge."""
    if outcome in REFUSED and "job_id" not in entry:
        # A job's queries are recorded one by one (at most its query limit): they are its trace.
        receipt = veil.refused(
            entry["principal"], outcome, _reasons(entry, outcome), entry=entry,
            key=key or entry["query_id"],
        )  # fmt: skip
        veil.metrics.queries.labels(outcome).inc()
        return receipt or SUMMARISED
    if entry.get("held"):
        veil.job_records.trace(entry["job_id"], entry)
        receipt = KEPT_WITH_JOB
    else:
        with veil.metrics.stage("ledger"):
            receipt = veil.ledger.append(entry, idempotency_key=key or entry["query_id"])
    veil.metrics.queries.labels(outcome).inc()
    if not receipt.fresh:
        return receipt
    if outcome in REFUSED:
        veil.refused(entry["principal"], outcome, _reasons(entry, outcome))
    if outcome in ("released", "failed"):
        veil.metrics.rows_scanned.inc(sum(entry["usage"]["rows_scanned"].values()))
    if "cost" in entry:
        charge_counted(veil, entry["cost"])
    return receipt


def _reasons(entry: dict, outcome: str) -> list[str]:
    """A refused query's codes: the guard's rules, or the decision's reasons."""
    return entry["rules"] if outcome == "rejected" else entry["decision"]["reasons"]


def charge_counted(veil: Services, cost: dict) -> None:
    """Count a recorded charge; the ledger, not this counter, is what bills."""
    if cost["amount_minor"] > 0:
        veil.metrics.revenue.labels(cost["currency"]).inc(cost["amount_minor"])


def violated_rules(exc: SandboxError) -> list[str]:
    return sorted({violation.rule for violation in exc.violations}) or [exc.code.lower()]
