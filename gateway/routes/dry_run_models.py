"""The response model of a dry run (`dry_run: true` on a query or job): the decision, the price
and the privacy spend it would meet, from public facts only."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gateway.schemas import Receipt


class QuotedObligations(BaseModel):
    min_distinct_units: int
    max_rows: int
    review: str
    price_plan: str
    noise: Literal["dp", "thresholds"]


class QuotedDecision(BaseModel):
    allow: bool
    reasons: list[str]
    grant_id: str | None
    obligations: QuotedObligations | None = Field(None, description="Absent when refused")


class Quote(BaseModel):
    amount_minor: int
    currency: str
    plan: str
    assets: dict[str, int] = Field(description="What each asset would earn of the charge")
    basis: Literal["query", "per_query", "fixed"] = Field(
        description="query: this query; per_query: each sql() of the job, by the assets it "
        "reads; fixed: a job held for review, whatever it asks"
    )
    plus_cpu_time: bool = Field(description="CPU time the run takes is charged on top")


class Room(BaseModel):
    epsilon: float
    delta: float


class QuotedPrivacy(BaseModel):
    mode: Literal["dp", "thresholds"]
    epsilon: float = Field(description="What a fresh answer spends; an answered question, 0")
    delta: float
    budget_left: dict[str, Room] | None = Field(
        None, description="The caller's organisation's ε and δ left this period, per asset"
    )


class DryRun(BaseModel):
    """What a real run would meet; nothing ran, and nothing was reserved or charged."""

    dry_run: Literal[True]
    decision: QuotedDecision
    price: Quote | None
    privacy: QuotedPrivacy | None
    receipt: Receipt | None = Field(None, description="The dry run's ledger entry, uncharged")
