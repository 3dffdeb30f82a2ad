"""Double-entry postings for a charge: the developer pays, each asset's parties receive."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ledger.allocation import allocate
from ledger.errors import PricingInvalid
from ledger.pricing import Charge

BASIS_POINTS = 10_000
PAYER = "developer:"
PAYEE = "party:"


@dataclass(frozen=True)
class Posting:
    """One line of a balanced transaction: negative pays, positive receives, in minor units."""

    account: str
    amount_minor: int

    def as_entry(self) -> list:
        return [self.account, self.amount_minor]


def post(charge: Charge, developer: str) -> tuple[Posting, ...]:
    """The developer's debit and each party's credit; the postings sum to zero.

    Each asset's part is split by that card's revenue shares (basis points summing to 10,000);
    a party named on several assets receives one credit. A zero charge posts nothing.
    """
    if charge.amount_minor == 0:
        return ()
    credits: Counter[str] = Counter()
    for part in charge.parts:
        if sum(part.shares_bp.values()) != BASIS_POINTS:
            raise PricingInvalid(f"revenue shares of {part.asset} must sum to {BASIS_POINTS}")
        credits.update(allocate(part.amount_minor, part.shares_bp))
    postings = [Posting(PAYER + developer, -charge.amount_minor)]
    postings += [Posting(PAYEE + party, credits[party]) for party in sorted(credits)]
    return tuple(p for p in postings if p.amount_minor != 0)
