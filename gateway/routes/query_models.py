"""The queries API's response model: checked rows, their privacy, their cost and receipt."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.schemas import Receipt


class Noise(BaseModel):
    """One mechanism's noise on a value, from public parameters only."""

    mechanism: str
    scale: float | None = None
    half_width_95: float | None = Field(None, description="95% of the time |released - true| <")
    # A quantile's: how far in rank the released value may be, and the candidates' spacing.
    rank_error_95: float | None = None
    resolution: float | None = None
    # A sum released as its centred sum plus the midpoint times the noisy unit count.
    centred_on: float | None = None
    units: Noise | None = None


class ColumnPrivacy(Noise):
    """A released column's statistic and noise; a mean's comes from its sum's and count's."""

    statistic: Literal["count", "sum", "quantile", "mean", "derived"]
    sum: Noise | None = None
    count: Noise | None = None
    bounds: list[float] | None = None


class Spent(BaseModel):
    epsilon: float
    delta: float


class Contribution(BaseModel):
    max_groups_per_unit: int
    max_rows_per_group: int
    # Where the asset was checked to hold at most this many rows per unit: answers aggregate
    # those rows as they are, and the two bounds above do not apply.
    max_rows_per_unit: int | None = None


class AnswerPrivacy(BaseModel):
    """How the answer was protected: `thresholds` alone, or `dp` with what it spent."""

    mode: Literal["dp", "thresholds"]
    epsilon: float | None = None
    delta: float | None = None
    contribution: Contribution | None = None
    columns: dict[str, ColumnPrivacy] | None = None
    reused: bool | None = Field(None, description="The same question's stored answer, free")
    question: str | None = None
    first_spent: Spent | None = None


class Cost(BaseModel):
    amount_minor: int
    currency: str
    plan: str
    assets: dict[str, int] = Field(description="What each asset earned of the charge")


class QueryResult(BaseModel):
    """An answer: only rows the checks released, with its privacy, cost and ledger receipt."""

    query_id: str
    columns: list[str]
    rows: list[list[Any]]
    suppressed_rows: int
    notes: list[str]
    privacy: AnswerPrivacy
    cost: Cost
    receipt: Receipt
