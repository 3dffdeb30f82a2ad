"""A query under differential privacy: its question, its budget reserved before it runs, its
answer kept so that the same question gets the same answer and spends nothing."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from governance import Principal
from governance.budgets import EVERYONE, Allowance, BudgetExhausted
from ledger import canonical_json
from policies import Noise
from sandbox.disclosure import Released
from sandbox.errors import Cancelled
from sandbox.guard import Analysis
from sandbox.privacy.answer import Budget, cost, released_under_dp
from sandbox.privacy.plan import PrivateQuery
from sandbox.privacy.terms import Contribution
from services.runtime import Services


class Envelope:
    """ε and δ a job held for review reserved when it started, whatever it then asks: its
    queries draw on it here, never on the budget its developer can read."""

    def __init__(self, epsilon: float, delta: float) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self._lock = threading.Lock()

    def take(self, epsilon: float, delta: float, asset: str) -> None:
        with self._lock:
            if epsilon > self.epsilon + 1e-9 or delta > self.delta + 1e-15:
                raise BudgetExhausted(asset, everyone=False)
            self.epsilon -= epsilon
            self.delta -= delta


# How many queries' worth of ε a held job reserves when it starts (fewer if the budget has
# less room); it cannot ask more under differential privacy.
HELD_JOB_QUERIES = 4


def reserve_envelope(veil: Services, org: str, assets: list[str], noise: Noise) -> Envelope:
    """As many queries' worth of ε and δ as the budgets still allow, up to HELD_JOB_QUERIES,
    reserved now and never given back (maybe none)."""
    for count in range(HELD_JOB_QUERIES, 0, -1):
        epsilon, delta = noise.epsilon * count, noise.delta * count
        try:
            veil.budgets.reserve(
                org=org,
                period=period(),
                allowances=allowances(veil, assets, noise),
                epsilon=epsilon,
                delta=delta,
            )
        except BudgetExhausted:
            continue
        return Envelope(epsilon, delta)
    return Envelope(0.0, 0.0)


@dataclass(frozen=True)
class PrivateRelease:
    released: Released
    # What the response says of the answer's privacy; the ledger keeps `recorded`.
    privacy: dict
    cpu_ms: int

    @property
    def recorded(self) -> dict:
        keys = ("mode", "epsilon", "delta", "reused", "question")
        return {key: self.privacy[key] for key in keys}


def period() -> str:
    """The budget period: the calendar month, UTC."""
    return datetime.now(UTC).strftime("%Y-%m")


def contribution(veil: Services, assets: list[str]) -> Contribution:
    """The tightest of the assets' public contribution bounds."""
    terms = [veil.enclave.store.get(asset).card.privacy for asset in assets]
    return Contribution(
        max_groups=min(t.max_groups_per_unit for t in terms),
        max_rows=min(t.max_rows_per_group for t in terms),
    )


def allowances(veil: Services, assets: list[str], noise: Noise) -> list[Allowance]:
    """Per asset: the organisation's ε per period (the card's, else the policy's) and the cap."""
    found = []
    for asset in assets:
        card = veil.enclave.store.get(asset).card
        epsilon = card.privacy.epsilon_per_period or noise.epsilon_per_period
        found.append(
            Allowance(
                asset,
                epsilon=min(epsilon, noise.cap_epsilon_per_period),
                delta=noise.delta_per_period,
                cap_epsilon=noise.cap_epsilon_per_period,
                cap_delta=noise.cap_delta_per_period,
            )
        )
    return found


def question(
    veil: Services, assets: list[str], org: str, private: PrivateQuery, budget: Budget
) -> str:
    """What makes two questions the same: the checked query, the data, who asks, the terms."""
    versions = {}
    for asset in sorted(assets):
        stored = veil.enclave.store.get(asset)
        versions[asset] = [stored.version, stored.revision]
    asked = (tuple((a, *v) for a, v in versions.items()), org, budget.epsilon, budget.delta)
    known = private.questions.get(asked)
    if known is None:
        if len(private.questions) >= KEPT_QUESTIONS:
            private.questions.clear()
        known = private.questions[asked] = _question(versions, org, private, budget)
    return known


# Askings of one checked query whose questions are kept: its data's versions, its askers'
# organisations and budgets change rarely.
KEPT_QUESTIONS = 16


def _question(versions: dict[str, list], org: str, private: PrivateQuery, budget: Budget) -> str:
    body = {
        "branches": [branch.sql for branch in private.branches],
        "finish": private.finish_text,
        "paging": [private.limit, private.offset],
        "data": versions,
        "org": org,
        "epsilon": budget.epsilon,
        "delta": budget.delta,
        "contribution": [private.contribution.max_groups, private.contribution.max_rows],
    }
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def answer_private(
    veil: Services,
    analysis: Analysis,
    *,
    org: str,
    query_id: str,
    noise: Noise,
    max_rows: int,
    cancel: threading.Event,
    envelope: Envelope | None = None,
) -> PrivateRelease:
    """The answer to a private query: the stored one if this question was answered before,
    else a fresh one, its ε and δ reserved durably first and never given back.

    Raises BudgetExhausted or QuestionInFlight (nothing is reserved then), or the enclave's
    errors (the reservation stands). A held job's queries draw on its `envelope` instead, and
    neither read nor keep answers: what it asked must leave no trace its developer sees."""
    private = veil.enclave.private(analysis, contribution(veil, analysis.assets))
    budget = Budget(noise.epsilon, noise.delta)
    key = question(veil, analysis.assets, org, private, budget)
    epsilon, delta = cost(private, budget)
    if envelope is not None:
        envelope.take(epsilon, delta, analysis.assets[0])
        answer, cpu_ms = veil.enclave.run_private(private, budget, cancel)
        if cancel.is_set():
            raise Cancelled("the query was stopped: its authorisation ended while it ran")
        return PrivateRelease(
            _capped(answer.released, max_rows),
            dict(answer.privacy, reused=False, question=key),
            cpu_ms,
        )
    asked = veil.budgets.ask(
        question=key,
        org=org,
        query_id=query_id,
        period=period(),
        allowances=allowances(veil, analysis.assets, noise),
        epsilon=epsilon,
        delta=delta,
    )
    if asked.answer is not None:
        kept = json.loads(asked.answer)
        released = released_under_dp(kept["columns"], kept["rows"], kept["notes"])
        # Spent when first answered; this asking spends nothing.
        first = kept["privacy"]
        spent = {"epsilon": first["epsilon"], "delta": first["delta"]}
        privacy = dict(first, epsilon=0.0, delta=0.0, reused=True, question=key, first_spent=spent)
        return PrivateRelease(released, privacy, 0)
    try:
        if cancel.is_set():
            raise Cancelled("the query was stopped: its authorisation ended while it ran")
        answer, cpu_ms = veil.enclave.run_private(private, budget, cancel)
        if cancel.is_set():
            raise Cancelled("the query was stopped: its authorisation ended while it ran")
    except BaseException:
        veil.budgets.forget(key)
        raise
    released = _capped(answer.released, max_rows)
    privacy = dict(answer.privacy, reused=False, question=key)
    kept = {"columns": released.columns, "rows": released.rows, "notes": released.notes}
    veil.budgets.answered(key, json.dumps(dict(kept, privacy=privacy)))
    return PrivateRelease(released, privacy, cpu_ms)


def _capped(released: Released, max_rows: int) -> Released:
    if len(released.rows) <= max_rows:
        return released
    notes = [*released.notes, f"the result was cut to the policy's maximum of {max_rows} rows"]
    return released_under_dp(released.columns, released.rows[:max_rows], notes)


# Roles that read every organisation's spend, and the cap across all of them.
BUDGET_OVERSEERS = ("supervisor", "operator")


def budget_report(veil: Services, *, caller: Principal, period: str | None) -> dict:
    """ε and δ spent and left in a month (this one by default): a developer sees its
    organisation's, overseers every organisation's and the cap across all of them."""
    chosen = period or datetime.now(UTC).strftime("%Y-%m")
    if caller.has(*BUDGET_OVERSEERS):
        spent = veil.budgets.spent(chosen)
        organisations: dict[str, list] = {}
        for row in spent:
            if row.spender != EVERYONE:
                organisations.setdefault(row.spender, []).append(row.as_dict())
        caps = [row.as_dict() for row in spent if row.spender == EVERYONE]
        return {"period": chosen, "organisations": organisations, "all_developers": caps}
    own = veil.budgets.spent(chosen, caller.org)
    return {"period": chosen, "organisation": caller.org, "assets": [r.as_dict() for r in own]}
