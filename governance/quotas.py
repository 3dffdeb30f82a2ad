"""Quotas: how many queries a grant allows a day and how many rows over its term, reserved
before each query runs."""

from __future__ import annotations

import sqlalchemy as sa

from governance.grants import Grant
from governance.tables import grant_usage


def _today(day: str) -> sa.ColumnElement:
    """The queries counted on `day`: the row's count, unless the row is of an earlier day. A
    clock stepped back across midnight finds the later day's count, never a fresh one."""
    return sa.case((grant_usage.c.day >= sa.literal(day), grant_usage.c.queries_today), else_=0)


def _day_counted(day: str) -> sa.ColumnElement:
    """The day the row counts once `day`'s query is in: the later of the two, or `day` while
    the row counts no query. Moved back to a day it left, it would start the later day afresh
    once the clock returned."""
    counting = sa.and_(grant_usage.c.day >= sa.literal(day), grant_usage.c.queries_today > 0)
    return sa.case((counting, grant_usage.c.day), else_=sa.literal(day))


class QuotaRecords:
    """Quota use, counted by conditional updates so concurrent processes never overspend."""

    engine: sa.Engine

    def reserve(self, grant: Grant, rows_scanned: int, day: str) -> str | None:
        """Count one query scanning `rows_scanned` rows on `day` against the grant's quotas.

        One conditional UPDATE, so concurrent gateway processes never overspend. Returns
        None when reserved, else the name of the quota that is used up (nothing is counted).
        """
        quotas = grant.quotas or {}
        if not quotas:
            return None
        today = _today(day)
        conditions = [grant_usage.c.grant_id == grant.id]
        if "queries_per_day" in quotas:
            conditions.append(today + 1 <= quotas["queries_per_day"])
        if "rows_scanned" in quotas:
            conditions.append(grant_usage.c.rows_scanned + rows_scanned <= quotas["rows_scanned"])
        with self.engine.begin() as db:
            reserved = db.execute(
                grant_usage.update()
                .where(*conditions)
                .values(
                    day=_day_counted(day),
                    queries_today=today + 1,
                    rows_scanned=grant_usage.c.rows_scanned + rows_scanned,
                )
            )
            if reserved.rowcount == 1:
                return None
            used = self.quota_use(grant.id, day, db)
        return exceeded(quotas, used, rows_scanned) or "rows_scanned"

    def reserve_envelope(self, grant: Grant, most: int, rows_each: int, day: str) -> int:
        """Count up to `most` queries of at most `rows_each` rows at once against the grant's
        quotas, as many as they still allow; returns how many were counted (maybe none).

        What a job held for review may ask: reserved before it runs and never returned, so
        the quotas its developer can read say nothing of how many it asked."""
        quotas = grant.quotas or {}
        if not quotas:
            return most
        while True:
            used = self.quota_use(grant.id, day)
            room = [most]
            if "queries_per_day" in quotas:
                room.append(quotas["queries_per_day"] - used["queries_today"])
            if "rows_scanned" in quotas and rows_each > 0:
                room.append((quotas["rows_scanned"] - used["rows_scanned"]) // rows_each)
            count = min(room)
            if count <= 0:
                return 0
            today = _today(day)
            with self.engine.begin() as db:
                reserved = db.execute(
                    grant_usage.update()
                    .where(
                        grant_usage.c.grant_id == grant.id,
                        today == used["queries_today"],
                        grant_usage.c.rows_scanned == used["rows_scanned"],
                    )
                    .values(
                        day=_day_counted(day),
                        queries_today=today + count,
                        rows_scanned=grant_usage.c.rows_scanned + count * rows_each,
                    )
                )
            if reserved.rowcount == 1:
                return count
            # Another process counted in between: read again and retry.

    def exceeded_quota(self, grant: Grant, rows_scanned: int, day: str) -> str | None:
        """The quota one more query of `rows_scanned` rows would exceed, if any (a read only:
        `reserve` is what counts)."""
        if not grant.quotas:
            return None
        return exceeded(grant.quotas, self.quota_use(grant.id, day), rows_scanned)

    def quota_use(self, grant_id: str, day: str, db: sa.Connection | None = None) -> dict:
        """Queries counted on `day` and rows scanned in all, under a grant with quotas."""
        query = sa.select(grant_usage).where(grant_usage.c.grant_id == grant_id)
        if db is None:
            with self.engine.connect() as connection:
                row = connection.execute(query).first()
        else:
            row = db.execute(query).first()
        if row is None:
            return {"queries_today": 0, "rows_scanned": 0}
        return use_on(day, row.day, row.queries_today, row.rows_scanned)


def use_on(day: str, counted_on: str, queries: int, rows_scanned: int) -> dict:
    """A grant's use on `day`, from its usage row: the day's count restarts each day, and not
    on a day before the one counted (a clock stepped back)."""
    return {"queries_today": queries if counted_on >= day else 0, "rows_scanned": rows_scanned}


def exceeded(quotas: dict[str, int], used: dict[str, int], rows_scanned: int) -> str | None:
    limit = quotas.get("queries_per_day")
    if limit is not None and used["queries_today"] + 1 > limit:
        return "queries_per_day"
    limit = quotas.get("rows_scanned")
    if limit is not None and used["rows_scanned"] + rows_scanned > limit:
        return "rows_scanned"
    return None
