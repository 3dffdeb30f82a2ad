"""Each entry's month, so settlements and usage read one period instead of the whole log.

Revision ID: ledger_0002
Revises: ledger_0001
"""

import json
import re

import sqlalchemy as sa
from alembic import op

revision = "ledger_0002"
down_revision = "ledger_0001"
branch_labels = None
depends_on = None

# Frozen here as it stood at this revision: the month of an entry is the start of its "at".
_MONTH = re.compile(r"(\d{4}-(0[1-9]|1[0-2]))-")
_BATCH = 1000


def _period(data: str) -> str | None:
    try:
        at = json.loads(data).get("at")
    except (ValueError, AttributeError):
        return None
    match = _MONTH.match(at) if isinstance(at, str) else None
    return match.group(1) if match else None


def upgrade() -> None:
    with op.batch_alter_table("ledger_entries") as table:
        table.add_column(sa.Column("period", sa.Text, nullable=True))
    op.create_index("ix_ledger_entries_period", "ledger_entries", ["period", "idx"])
    entries = sa.table(
        "ledger_entries", sa.column("idx", sa.BigInteger), sa.column("data", sa.Text),
        sa.column("period", sa.Text),
    )  # fmt: skip
    bind = op.get_bind()
    after = -1
    while rows := bind.execute(
        sa.select(entries.c.idx, entries.c.data)
        .where(entries.c.idx > after)
        .order_by(entries.c.idx)
        .limit(_BATCH)
    ).all():
        updates = [{"i": row.idx, "p": _period(row.data)} for row in rows]
        updates = [update for update in updates if update["p"] is not None]
        if updates:
            bind.execute(
                entries.update()
                .where(entries.c.idx == sa.bindparam("i"))
                .values(period=sa.bindparam("p")),
                updates,
            )
        after = rows[-1].idx


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_period", "ledger_entries")
    with op.batch_alter_table("ledger_entries") as table:
        table.drop_column("period")
