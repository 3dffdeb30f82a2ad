"""Splitting an amount of minor units by integer weights so the parts always sum to it."""

from __future__ import annotations

from collections.abc import Mapping

from ledger.errors import PricingInvalid


def allocate(amount: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Largest-remainder split of `amount` in proportion to `weights`.

    Each part gets the floor of its exact share; the units left over go one each to the parts
    with the largest remainders, ties to the name that sorts first. The parts sum to `amount`
    and no part is more than one unit from its exact share.
    """
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise PricingInvalid("an amount to split must be a non-negative integer")
    if not weights:
        raise PricingInvalid("an amount is split among at least one part")
    for weight in weights.values():
        if isinstance(weight, bool) or not isinstance(weight, int) or weight <= 0:
            raise PricingInvalid("split weights must be positive integers")
    total = sum(weights.values())
    parts = {name: amount * weight // total for name, weight in weights.items()}
    leftover = amount - sum(parts.values())
    by_remainder = sorted(weights, key=lambda name: (-(amount * weights[name] % total), name))
    for name in by_remainder[:leftover]:
        parts[name] += 1
    return parts
