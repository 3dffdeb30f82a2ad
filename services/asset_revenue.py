"""Each charged entry's credits by the asset whose part of the charge paid them: the one way the
reports split postings, read through `ledger.settlements.posting_lines`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ledger import PAYEE, allocate
from ledger.settlements import posting_lines

# The revenue shares (basis points by party) an asset's card stated at a time ("at"), if known.
SharesAt = Callable[[str, str], Mapping[str, int] | None]


@dataclass(frozen=True)
class AssetCredit:
    """What one party received from one asset's part of one entry's charge."""

    asset: str
    party: str
    amount_minor: int


@dataclass(frozen=True)
class EntryRevenue:
    """A charged entry's credits by asset, in its currency. `apportioned` is True when the
    cards' shares of its time did not reproduce its postings, so each party's credit was
    spread over the assets in proportion to their parts instead."""

    currency: str
    charged_minor: int
    credits: tuple[AssetCredit, ...]
    apportioned: bool = False


def entry_revenue(index: int, data: dict, shares_at: SharesAt) -> EntryRevenue:
    """Split a charged entry's checked postings among the assets it charged for.

    With one asset charged, every credit is that asset's. With several, each asset's part is
    split by the shares its card stated at the entry's time, exactly as the charge was posted;
    that split is used only if it sums, party by party, to the entry's own postings.
    """
    lines = posting_lines(index, data)
    cost = data["cost"]
    credits: Counter[str] = Counter()
    for line in lines:
        if line.amount_minor > 0:
            credits[line.account.removeprefix(PAYEE)] += line.amount_minor
    if not credits:  # a free use posts nothing
        return EntryRevenue(cost["currency"], cost["amount_minor"], ())
    parts = _parts(data)
    if len(parts) == 1:
        (asset,) = parts
        split = {(asset, party): amount for party, amount in credits.items()}
        return EntryRevenue(cost["currency"], cost["amount_minor"], _credits(split))
    posted = _as_posted(parts, data.get("at"), shares_at)
    if posted is not None and _by_party(posted) == +credits:
        return EntryRevenue(cost["currency"], cost["amount_minor"], _credits(posted))
    apportioned: Counter[tuple[str, str]] = Counter()
    for party, amount in credits.items():
        for asset, share in allocate(amount, parts).items():
            apportioned[asset, party] += share
    return EntryRevenue(cost["currency"], cost["amount_minor"], _credits(apportioned), True)


def _parts(data: dict) -> dict[str, int]:
    """Each charged asset's part of the cost; an entry from before parts were recorded is one
    part per asset it names, in equal weights."""
    cost = data["cost"]
    recorded = cost.get("assets")
    if isinstance(recorded, dict):
        parts = {a: n for a, n in recorded.items() if type(n) is int and n > 0}
        if parts and sum(parts.values()) == cost["amount_minor"]:
            return parts
    named = [a for a in data.get("assets") or () if isinstance(a, str)]
    return dict.fromkeys(sorted(set(named)) or [""], 1)


def _as_posted(
    parts: Mapping[str, int], at: object, shares_at: SharesAt
) -> Counter[tuple[str, str]] | None:
    """Each asset's part split by its card's shares at `at`, as `ledger.postings.post` did."""
    split: Counter[tuple[str, str]] = Counter()
    for asset, amount in parts.items():
        shares = shares_at(asset, str(at)) if isinstance(at, str) else None
        if not shares or sum(shares.values()) <= 0:
            return None
        for party, share in allocate(amount, shares).items():
            split[asset, party] += share
    return split


def _by_party(split: Mapping[tuple[str, str], int]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for (_, party), amount in split.items():
        totals[party] += amount
    return +totals


def _credits(split: Mapping[tuple[str, str], int]) -> tuple[AssetCredit, ...]:
    return tuple(
        AssetCredit(asset, party, amount)
        for (asset, party), amount in sorted(split.items())
        if amount > 0
    )
