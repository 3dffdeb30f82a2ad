"""What a query's decision reads of the control store, in one connection: the developer's
grants with their quota use, and the assets under an emergency stop."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from database.prepared import Prepared
from governance.grants import GRANTS_OF_DEVELOPER, Grant, grants_from
from governance.quotas import exceeded, use_on
from governance.suspensions import SUSPENDED_ASSETS
from governance.tables import grant_usage, grants

# The developer's grants, a row per approval, each with its usage row (kept for quotas only).
_GRANTS_WITH_USE = Prepared(
    GRANTS_OF_DEVELOPER.outerjoin(grant_usage, grant_usage.c.grant_id == grants.c.id).add_columns(
        grant_usage.c.day.label("use_day"),
        grant_usage.c.queries_today.label("use_queries"),
        grant_usage.c.rows_scanned.label("use_rows"),
    )
)
_SUSPENDED_ASSETS = Prepared(SUSPENDED_ASSETS)


@dataclass(frozen=True)
class Standing:
    grants: list[Grant]
    suspended_assets: frozenset[str]
    # By grant id, for grants with a usage row: (day counted, queries that day, rows in all).
    use: dict[str, tuple[str, int, int]]

    def expiry_due(self, now: str) -> bool:
        """Whether one of the grants is due to expire at `now`: expire it before deciding."""
        return any(grant.due(now) for grant in self.grants)

    def exceeded_quota(self, grant: Grant, rows_scanned: int, day: str) -> str | None:
        """As QuotaRecords.exceeded_quota, from the use read with the grants (a read only:
        `reserve` is what counts)."""
        if not grant.quotas:
            return None
        counted = self.use.get(grant.id)
        used = use_on(day, *counted) if counted else {"queries_today": 0, "rows_scanned": 0}
        return exceeded(grant.quotas, used, rows_scanned)


class StandingRecords:
    engine: sa.Engine

    def standing(self, developer: str) -> Standing:
        """The developer's grants, oldest first, with their quota use, and the suspended
        assets."""
        with self.engine.connect() as db:
            suspended = frozenset(_SUSPENDED_ASSETS.scalars(db))
            rows = _GRANTS_WITH_USE.all(db, {"developer": developer})
        use = {
            row.id: (row.use_day, row.use_queries, row.use_rows)
            for row in rows
            if row.use_day is not None
        }
        return Standing(grants_from(rows), suspended, use)
