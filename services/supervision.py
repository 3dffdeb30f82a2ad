"""The annual supervision report of one holder, replayed from the ledger alone: per asset it
provides, a calendar year's grants, developers, queries and jobs, rows scanned, revenue and
incidents, and the same over all of them.

Every figure counts entries whose `at` falls in the year (UTC), in log order; the state of a
grant at the year's end is replayed from every entry up to then. A guard's rejection names no
asset (the guard stopped before any was decided), so it counts for no holder. A job held for
review counts once, by its `job` entry: the queries of its run are part of its fixed charge.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ledger.disclosure import COMPLETED
from ledger.usage import REFUSALS_SUMMARISED
from services.asset_revenue import SharesAt, entry_revenue

QUERY_OUTCOMES = ("released", "denied", "rejected", "failed", "cancelled", "unavailable",
                  "dry_run", "other")  # fmt: skip
JOB_OUTCOMES = ("succeeded", "held", "failed", "rejected", "cancelled", "timeout", "denied",
                "other")  # fmt: skip
# What happened to grants on an asset in the year (each grant once per event), and how many
# were in force when it ended.
GRANT_EVENTS = ("requested", "approved", "rejected", "revoked", "suspended", "resumed", "expired")
IN_FORCE = "in_force_at_end"
INCIDENT_COUNTS = ("suspensions", "resumptions", "destructions", "budget_exhausted")
# The reason code of a query denied because a privacy budget had no room (services/queries.py).
BUDGET_EXHAUSTED = "privacy_budget_exhausted"
JOB_SCOPE = "job:submit"
# Entries that make a principal known as a holder, and the field naming it.
NAMING_A_HOLDER = {"principal_created": "principal", "asset_registered": "provider"}
_YEAR = re.compile(r"(\d{4})-")


@dataclass
class AssetYear:
    """One asset's year, or (as totals) the year over every asset, each entry counted once."""

    grants: dict[str, set[str]] = field(
        default_factory=lambda: {event: set() for event in (*GRANT_EVENTS, IN_FORCE)}
    )
    users: set[str] = field(default_factory=set)
    queries: Counter[str] = field(default_factory=Counter)
    jobs: Counter[str] = field(default_factory=Counter)
    rows_scanned: int = 0
    revenue: Counter[str] = field(default_factory=Counter)
    incidents: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Incident:
    """A suspension, resumption or destruction that concerns some of the holder's assets."""

    index: int
    at: str
    event: str  # suspended, resumed or destroyed
    kind: str  # asset, grant or principal (a developer holding a grant on the asset)
    target: str
    assets: tuple[str, ...]
    # Only where the holder is a party to the entry: its asset, or a grant it approves.
    reason: str | None


@dataclass
class Supervision:
    holder: str
    year: int
    known: bool = False
    assets: dict[str, AssetYear] = field(default_factory=dict)
    totals: AssetYear = field(default_factory=AssetYear)
    incidents: list[Incident] = field(default_factory=list)
    organisations: dict[str, str] = field(default_factory=dict)
    apportioned: int = 0

    def developers(self, year: AssetYear) -> list[str]:
        """The organisations of the principals that used the asset, by name."""
        return sorted({self.organisations.get(principal, principal) for principal in year.users})


@dataclass
class _Grant:
    developer: str
    assets: tuple[str, ...]
    valid_from: str
    valid_until: str
    status: str = "pending"


def supervise(
    entries: Iterable[tuple[int, dict]], holder: str, year: int, shares_at: SharesAt
) -> Supervision:
    """Replay `entries` (index, parsed data), oldest first, into `holder`'s report for `year`."""
    replay = _Replay(Supervision(holder, year), shares_at)
    for index, data in entries:
        replay.add(index, data)
    return replay.finish()


class _Replay:
    def __init__(self, report: Supervision, shares_at: SharesAt) -> None:
        self.report = report
        self.year = f"{report.year:04d}"
        self.shares_at = shares_at
        self.grants: dict[str, _Grant] = {}
        self.gone: set[str] = set()  # the holder's assets destroyed before the year
        self.handlers: dict[str, Callable[[int, dict, bool], None]] = {
            "principal_created": self._principal,
            "asset_registered": self._registered,
            "asset_destroyed": self._destroyed,
            "grant_requested": self._requested,
            "grant_approved": self._grant_change,
            "grant_rejected": self._grant_change,
            "grant_revoked": self._grant_change,
            "grant_expired": self._grant_change,
            "emergency_suspended": self._emergency,
            "emergency_resumed": self._emergency,
            "query": self._query,
            "job": self._job,
            "access_denied": self._job_denied,
            REFUSALS_SUMMARISED: self._summary,
        }

    def add(self, index: int, data: dict) -> None:
        field_of_holder = NAMING_A_HOLDER.get(str(data.get("type")))
        if field_of_holder and data.get(field_of_holder) == self.report.holder:
            self.report.known = True  # in any year: being a holder is no fact of one year
        at = data.get("at")
        matched = _YEAR.match(at) if isinstance(at, str) else None
        if matched is None or matched.group(1) > self.year:
            return
        inside = matched.group(1) == self.year
        handler = self.handlers.get(str(data.get("type")))
        if handler is not None:
            handler(index, data, inside)
        if inside and data.get("cost") is not None:
            self._revenue(index, data)

    def finish(self) -> Supervision:
        report = self.report
        for asset in self.gone:
            report.assets.pop(asset, None)
        end = f"{report.year + 1:04d}-01-01T00:00:00Z"
        for grant_id, grant in self.grants.items():
            if grant.status != "active" or not grant.valid_from <= end < grant.valid_until:
                continue
            self._count_grant(grant_id, IN_FORCE)
        return report

    def _mine(self, assets: object) -> list[str]:
        """Which of `assets` (a list from an entry) are the holder's."""
        if not isinstance(assets, list | tuple):
            return []
        return sorted({a for a in assets if isinstance(a, str) and a in self.report.assets})

    def _principal(self, index: int, data: dict, inside: bool) -> None:
        principal, org = data.get("principal"), data.get("org")
        if isinstance(principal, str) and isinstance(org, str) and org:
            self.report.organisations[principal] = org

    def _registered(self, index: int, data: dict, inside: bool) -> None:
        asset = data.get("asset")
        if data.get("provider") == self.report.holder and isinstance(asset, str):
            self.report.assets.setdefault(asset, AssetYear())
            self.gone.discard(asset)

    def _destroyed(self, index: int, data: dict, inside: bool) -> None:
        for grant_id in data.get("grants_ended") or ():
            self._move(str(grant_id), "revoked", inside)
        asset = data.get("asset")
        if asset not in self.report.assets:
            return
        if not inside:
            self.gone.add(asset)
            return
        self._incident(index, data, "destroyed", "asset", [asset], data.get("reason"))

    def _requested(self, index: int, data: dict, inside: bool) -> None:
        grant = data.get("grant")
        if not isinstance(grant, dict) or not isinstance(grant.get("id"), str):
            return
        assets = tuple(a for a in grant.get("assets") or () if isinstance(a, str))
        self.grants[grant["id"]] = _Grant(
            str(grant.get("developer")), assets,
            str(grant.get("valid_from") or ""), str(grant.get("valid_until") or ""),
        )  # fmt: skip
        if inside:
            self._count_grant(grant["id"], "requested")

    def _grant_change(self, index: int, data: dict, inside: bool) -> None:
        kind = str(data.get("type")).removeprefix("grant_")
        if kind == "approved" and data.get("status") != "active":
            return  # one party's approval; the grant is approved when the last one activates it
        self._move(str(data.get("grant")), kind, inside)

    def _move(self, grant_id: str, event: str, inside: bool) -> None:
        grant = self.grants.get(grant_id)
        if grant is None:
            return
        grant.status = {"approved": "active", "resumed": "active"}.get(event, event)
        if inside:
            self._count_grant(grant_id, event)

    def _count_grant(self, grant_id: str, event: str) -> None:
        mine = self._mine(self.grants[grant_id].assets)
        for asset in mine:
            self.report.assets[asset].grants[event].add(grant_id)
        if mine:
            self.report.totals.grants[event].add(grant_id)

    def _emergency(self, index: int, data: dict, inside: bool) -> None:
        event = "suspended" if data["type"] == "emergency_suspended" else "resumed"
        kind, target = str(data.get("kind")), str(data.get("target"))
        reason = data.get("reason")
        if kind == "grant" and target in self.grants:
            before = self.grants[target].status
            if (event, before) in {("suspended", "active"), ("resumed", "suspended")}:
                self._move(target, event, inside)
            concerned = self._mine(self.grants[target].assets)
        elif kind == "asset":
            concerned = self._mine([target])
        elif kind == "principal":
            # The holder learns that a developer with a grant on its asset was stopped, not why.
            held = [a for g in self.grants.values() if g.developer == target for a in g.assets]
            concerned, reason = self._mine(held), None
        else:
            return
        if inside and concerned:
            self._incident(index, data, event, kind, concerned, reason)

    def _incident(
        self, index: int, data: dict, event: str, kind: str, assets: list[str], reason: object
    ) -> None:
        counted = {"suspended": "suspensions", "resumed": "resumptions"}.get(event, "destructions")
        for asset in assets:
            self.report.assets[asset].incidents[counted] += 1
        self.report.totals.incidents[counted] += 1
        self.report.incidents.append(
            Incident(
                index,
                str(data.get("at")),
                event,
                kind,
                str(data.get("target") or assets[0]),
                tuple(assets),
                reason if isinstance(reason, str) else None,
            )
        )

    def _query(self, index: int, data: dict, inside: bool) -> None:
        mine = self._mine(data.get("assets")) if inside else []
        if not mine:
            return
        dry = bool(data.get("dry_run")) or data.get("outcome") == "dry_run"
        outcome = "dry_run" if dry else _bucket(data.get("outcome"), QUERY_OUTCOMES)
        scanned = (data.get("usage") or {}).get("rows_scanned") or {}
        reasons = (data.get("decision") or {}).get("reasons") or ()
        exhausted = not dry and outcome == "denied" and BUDGET_EXHAUSTED in reasons
        budget = data.get("budget")
        used = outcome in COMPLETED["query"]
        totals = self.report.totals
        spent = [asset for asset in mine if exhausted and budget in (asset, None)]
        for asset in mine:
            year = self.report.assets[asset]
            year.queries[outcome] += 1
            rows = scanned.get(asset) if isinstance(scanned, dict) else None
            if type(rows) is int and rows > 0:
                year.rows_scanned += rows
                totals.rows_scanned += rows
            if used:
                year.users.add(str(data.get("principal")))
            year.incidents["budget_exhausted"] += asset in spent
        totals.queries[outcome] += 1
        if used:
            totals.users.add(str(data.get("principal")))
        totals.incidents["budget_exhausted"] += bool(spent)

    def _job(self, index: int, data: dict, inside: bool) -> None:
        mine = self._mine(data.get("assets")) if inside else []
        if mine:
            self._count_job(mine, _bucket(data.get("outcome"), JOB_OUTCOMES), data)

    def _job_denied(self, index: int, data: dict, inside: bool) -> None:
        if not inside or data.get("scope") != JOB_SCOPE:
            return
        resource = data.get("resource")
        named = resource.get("assets") if isinstance(resource, dict) else None
        ids = [a.get("id") for a in named or () if isinstance(a, dict)]
        mine = self._mine(ids)
        if mine:
            self._count_job(mine, "denied", data)

    def _count_job(self, mine: list[str], outcome: str, data: dict) -> None:
        used = outcome in COMPLETED["job"]
        for asset in mine:
            self.report.assets[asset].jobs[outcome] += 1
            if used:
                self.report.assets[asset].users.add(str(data.get("principal")))
        self.report.totals.jobs[outcome] += 1
        if used:
            self.report.totals.users.add(str(data.get("principal")))

    def _summary(self, index: int, data: dict, inside: bool) -> None:
        """Refusals past a principal's rate, counted by the assets the summary names."""
        mine = self._mine(data.get("assets")) if inside else []
        if not mine:
            return
        totals = self.report.totals
        for row in data.get("counts") or ():
            if not isinstance(row, dict) or type(row.get("refusals")) is not int:
                continue
            refused, record = row["refusals"], row.get("record")
            if record == "query":
                outcome = _bucket(row.get("outcome"), QUERY_OUTCOMES)
                reasons = row.get("reasons") if isinstance(row.get("reasons"), dict) else {}
                exhausted = reasons.get(BUDGET_EXHAUSTED, 0)
                exhausted = exhausted if type(exhausted) is int else 0
                for asset in mine:
                    self.report.assets[asset].queries[outcome] += refused
                    self.report.assets[asset].incidents["budget_exhausted"] += exhausted
                totals.queries[outcome] += refused
                totals.incidents["budget_exhausted"] += exhausted
            elif row.get("scope") == JOB_SCOPE:
                outcome = _bucket(row.get("outcome"), JOB_OUTCOMES)
                for asset in mine:
                    self.report.assets[asset].jobs[outcome] += refused
                totals.jobs[outcome] += refused

    def _revenue(self, index: int, data: dict) -> None:
        revenue = entry_revenue(index, data, self.shares_at)
        holder, mine = self.report.holder, False
        for credit in revenue.credits:
            if credit.party != holder:
                continue
            self.report.totals.revenue[revenue.currency] += credit.amount_minor
            if credit.asset in self.report.assets:
                self.report.assets[credit.asset].revenue[revenue.currency] += credit.amount_minor
            mine = True
        self.report.apportioned += int(mine and revenue.apportioned)


def _bucket(outcome: object, known: tuple[str, ...]) -> str:
    return outcome if isinstance(outcome, str) and outcome in known else "other"
