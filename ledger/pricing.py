"""Pricing: what one request costs under its price plan, asset by asset, in integer minor units."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.allocation import allocate
from ledger.errors import PricingInvalid

FREE_PLAN = "free"
# A query inside a job held for review: its job pays one fixed price instead (gateway/jobs.py).
ENVELOPE_PLAN = "job_envelope"
ROWS_PER_UNIT = 1000
MS_PER_SECOND = 1000
# CPU is billed in whole steps, so a charge cannot time a query more finely than this.
CPU_STEP_MS = 100
RATE_FIELDS = ("per_query_minor", "per_1k_rows_scanned_minor", "per_cpu_second_minor")


@dataclass(frozen=True)
class AssetUse:
    """What one request used of one asset, with that asset card's pricing and revenue shares."""

    asset: str
    rows_scanned: int
    pricing: Mapping[str, Any]
    shares_bp: Mapping[str, int]


@dataclass(frozen=True)
class AssetCharge:
    asset: str
    amount_minor: int
    shares_bp: Mapping[str, int]


@dataclass(frozen=True)
class Charge:
    """A request's price: the total, and the part each asset earned for its own use."""

    amount_minor: int
    currency: str
    plan: str
    parts: tuple[AssetCharge, ...]


def price(
    uses: Sequence[AssetUse], *, plan: str, purpose: str, cpu_ms: int, request_fee: bool = True
) -> Charge:
    """Price each asset's use under `plan` and sum.

    An asset charges its per-query fee, its rows scanned through graduated tiers, and a share
    of the request's CPU time (billed in whole CPU_STEP_MS steps) in proportion to its rows
    scanned. Without `request_fee` only rows and CPU are charged: a job's own CPU time, whose
    queries each paid their fee. The plan "free", or a purpose the card lists as free, prices
    an asset at zero; a plan the card does not define is priced at the card's base rates.
    """
    if not uses:
        raise PricingInvalid("a request uses at least one priced asset")
    for count, name in ((cpu_ms, "CPU time"), *((u.rows_scanned, "rows scanned") for u in uses)):
        _count(count, name)
    currencies = {use.pricing.get("currency") for use in uses}
    if len(currencies) != 1 or not all(isinstance(c, str) and c for c in currencies):
        raise PricingInvalid("the assets of one request must be priced in one currency")
    cpu_shares = allocate(
        billed_cpu_ms(cpu_ms), {str(i): use.rows_scanned or 1 for i, use in enumerate(uses)}
    )
    parts = tuple(
        AssetCharge(
            use.asset,
            _asset_amount(use, plan, purpose, cpu_shares[str(i)], request_fee),
            use.shares_bp,
        )
        for i, use in enumerate(uses)
    )
    return Charge(sum(p.amount_minor for p in parts), currencies.pop(), plan, parts)


def billed_cpu_ms(cpu_ms: int) -> int:
    """CPU time rounded up to the billing step: the only CPU figure anyone is shown."""
    return -(-cpu_ms // CPU_STEP_MS) * CPU_STEP_MS


def _asset_amount(use: AssetUse, plan: str, purpose: str, cpu_ms: int, request_fee: bool) -> int:
    pricing = use.pricing
    free = pricing.get("free_purposes", [])
    if not isinstance(free, list | tuple):
        raise PricingInvalid("free_purposes must be a list of purposes")
    plans = pricing.get("plans", {})
    if not isinstance(plans, Mapping):
        raise PricingInvalid("plans must map plan names to rates")
    rates = plans.get(plan, pricing)
    if not isinstance(rates, Mapping):
        raise PricingInvalid("a plan's rates must be an object")
    fees = {name: _count(rates.get(name, 0), name) for name in RATE_FIELDS}
    if plan in (FREE_PLAN, ENVELOPE_PLAN) or purpose in free:
        return 0
    rows = _graduated(
        use.rows_scanned, fees["per_1k_rows_scanned_minor"], rates.get("row_tiers", [])
    )
    cpu = -(-cpu_ms * fees["per_cpu_second_minor"] // MS_PER_SECOND)
    return (fees["per_query_minor"] if request_fee else 0) + rows + cpu


def _graduated(rows: int, base_rate: int, tiers: object) -> int:
    """Rows above each tier's threshold take its rate; one rounding up, at the end."""
    if not isinstance(tiers, list | tuple):
        raise PricingInvalid("row_tiers must be a list")
    bands: list[tuple[int, int]] = [(0, base_rate)]
    for tier in tiers:
        if not isinstance(tier, Mapping):
            raise PricingInvalid("a row tier must be an object")
        above = _count(tier.get("above_rows"), "above_rows")
        rate = _count(tier.get("per_1k_rows_scanned_minor", 0), "per_1k_rows_scanned_minor")
        if above <= bands[-1][0]:
            raise PricingInvalid("row tiers must rise strictly above zero")
        bands.append((above, rate))
    ends = [start for start, _ in bands[1:]] + [max(rows, bands[-1][0])]
    thousandths = 0
    for (start, rate), end in zip(bands, ends, strict=True):
        thousandths += max(0, min(rows, end) - start) * rate
    return -(-thousandths // ROWS_PER_UNIT)


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PricingInvalid(f"{name} must be a non-negative integer")
    return value
