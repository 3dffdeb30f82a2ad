"""A month's revenue distribution: what each party received from each asset's part of the
month's charges, from the postings, in totals that are the month's settlement."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ledger import LedgerCorrupt, Settlement, settle
from ledger.settlements import period_of
from services.asset_revenue import SharesAt, entry_revenue


@dataclass
class Share:
    """What one party received from one asset in one currency, and from how many entries."""

    amount_minor: int = 0
    entries: int = 0


@dataclass
class Distribution:
    """The month's settlement, split by asset: `shares` by (currency, asset, party)."""

    settlement: Settlement
    shares: dict[tuple[str, str, str], Share] = field(default_factory=dict)
    # Per party and currency: the charges of the entries that credited the party.
    charged_for: dict[str, Counter[str]] = field(default_factory=dict)
    apportioned: int = 0


def distribute(
    entries: Iterable[tuple[int, dict]], period: str, shares_at: SharesAt
) -> Distribution:
    """Replay `entries` (index, parsed data): the charged ones `at` in `period`, settled as
    `ledger.settle` settles them, and each one's credits split among its assets.

    The split must sum, party by party, to the settlement; a log where it does not was written
    wrongly, and no distribution is made from it."""
    charged = [(i, d) for i, d in entries if d.get("cost") is not None and period_of(d) == period]
    distribution = Distribution(settle(charged, period))
    for index, data in charged:
        revenue = entry_revenue(index, data, shares_at)
        credited: set[str] = set()
        for credit in revenue.credits:
            key = (revenue.currency, credit.asset, credit.party)
            share = distribution.shares.setdefault(key, Share())
            share.amount_minor += credit.amount_minor
            share.entries += 1
            credited.add(credit.party)
        for party in credited:
            distribution.charged_for.setdefault(party, Counter())[revenue.currency] += (
                revenue.charged_minor
            )
        distribution.apportioned += revenue.apportioned
    _check(distribution)
    return distribution


def _check(distribution: Distribution) -> None:
    split: dict[str, Counter[str]] = {}
    for (currency, _, party), share in distribution.shares.items():
        split.setdefault(currency, Counter())[party] += share.amount_minor
    settled = {c: +parties for c, parties in distribution.settlement.parties.items()}
    if {c: +parties for c, parties in split.items()} != {c: p for c, p in settled.items() if p}:
        raise LedgerCorrupt("the month's postings do not split into its settlement")
