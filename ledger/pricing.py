"""Query pricing from asset cards' price plans, in integer minor units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.errors import PricingInvalid

ROWS_PER_UNIT = 1000


@dataclass(frozen=True)
class Charge:
    amount_minor: int
    currency: str


def price_query(pricings: list[dict[str, Any]], purpose: str, rows_scanned: int) -> Charge:
    """Sum each asset's charge: per_query_minor + ceil(rows/1000) * per_1k_rows_scanned_minor.

    `rows_scanned` is the query's total and every asset charges its per-1k rate on all of it,
    since a scan's rows cannot be attributed to one asset after a join. An asset whose
    `free_purposes` holds `purpose` charges 0 but must still share the query's currency.
    """
    if not pricings:
        raise PricingInvalid("a query touches at least one priced asset")
    if isinstance(rows_scanned, bool) or not isinstance(rows_scanned, int) or rows_scanned < 0:
        raise PricingInvalid("rows scanned must be a non-negative integer")
    currencies = {pricing.get("currency") for pricing in pricings}
    if len(currencies) != 1 or not all(isinstance(c, str) and c for c in currencies):
        raise PricingInvalid("the assets of one query must be priced in one currency")
    units = -(-rows_scanned // ROWS_PER_UNIT)
    total = 0
    for pricing in pricings:
        free = pricing.get("free_purposes", [])
        if not isinstance(free, list | tuple):
            raise PricingInvalid("free_purposes must be a list of purposes")
        if purpose in free:
            continue
        total += _minor(pricing, "per_query_minor") + units * _minor(
            pricing, "per_1k_rows_scanned_minor"
        )
    return Charge(amount_minor=total, currency=currencies.pop())


def _minor(pricing: dict[str, Any], field: str) -> int:
    value = pricing.get(field, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PricingInvalid(f"pricing field {field} must be a non-negative integer")
    return value
