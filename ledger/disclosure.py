"""The public disclosure report: per asset, a period's use and revenue, replayed from the log,
with every figure withheld where too few developers stand behind it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ledger.settlements import check_period, period_of

# Below this many distinct developers an asset's figures would describe one or two of them.
MIN_DEVELOPERS = 3
# A job held for review counts by its charge ("held"), which is the same however it ran.
COMPLETED = {"query": {"released"}, "job": {"succeeded", "held"}}


@dataclass
class AssetActivity:
    grants: set[str] = field(default_factory=set)
    developers: set[str] = field(default_factory=set)
    queries: int = 0
    jobs: int = 0
    revenue: Counter[str] = field(default_factory=Counter)


@dataclass
class Disclosure:
    period: str
    assets: dict[str, AssetActivity] = field(default_factory=dict)

    def report(self, min_developers: int = MIN_DEVELOPERS) -> list[dict]:
        """One row per asset used in the period: counts, or `withheld` when fewer than
        `min_developers` developers used it. No developer is ever named."""
        rows = []
        for asset in sorted(self.assets):
            activity = self.assets[asset]
            if len(activity.developers) < min_developers:
                rows.append({"asset": asset, "withheld": True})
                continue
            rows.append(
                {
                    "asset": asset,
                    "withheld": False,
                    "grants": len(activity.grants),
                    "developers": len(activity.developers),
                    "queries": activity.queries,
                    "jobs": activity.jobs,
                    "revenue_minor": dict(sorted(activity.revenue.items())),
                }
            )
        return rows


def disclose(entries: Iterable[tuple[int, dict]], period: str) -> Disclosure:
    """Replay `entries`: completed queries and jobs `at` in `period`, counted per asset."""
    disclosure = Disclosure(check_period(period))
    for _, data in entries:
        kind = data.get("type")
        if data.get("outcome") not in COMPLETED.get(kind, ()) or period_of(data) != period:
            continue
        cost = data.get("cost") or {}
        earned = cost.get("assets") or {}
        for asset in data.get("assets") or ():
            activity = disclosure.assets.setdefault(asset, AssetActivity())
            activity.developers.add(str(data.get("principal")))
            if data.get("grant_id"):
                activity.grants.add(str(data["grant_id"]))
            if kind == "query":
                activity.queries += 1
            else:
                activity.jobs += 1
            amount = earned.get(asset)
            if amount is None and len(data["assets"]) == 1:  # entries from before per-asset parts
                amount = cost.get("amount_minor")
            if isinstance(amount, int) and cost.get("currency"):
                activity.revenue[cost["currency"]] += amount
    return disclosure
