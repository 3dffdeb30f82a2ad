"""Every change of a grant as history, and each grant's end of term as a column to expire by.

Revision ID: 0004
Revises: 0003
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grant_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("grant_id", sa.String(32), sa.ForeignKey("grants.id"), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("party", sa.String(64), nullable=True),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("at", sa.String(32), nullable=False),
    )
    op.create_index("ix_grant_events_grant_id", "grant_events", ["grant_id"])
    # Nullable: SQLite can add only such a column without rebuilding the table, which the
    # foreign keys onto grants forbid. Every grant written since has one.
    op.add_column("grants", sa.Column("valid_until", sa.String(32), nullable=True))
    grants = sa.table(
        "grants", sa.column("id", sa.String), sa.column("body", sa.Text),
        sa.column("valid_until", sa.String), sa.column("developer", sa.String),
        sa.column("created_at", sa.String),
    )  # fmt: skip
    events = sa.table(
        "grant_events", sa.column("grant_id", sa.String), sa.column("event", sa.String),
        sa.column("by", sa.String), sa.column("at", sa.String),
    )  # fmt: skip
    db = op.get_bind()
    for row in db.execute(sa.select(grants.c.id, grants.c.body, grants.c.developer,
                                    grants.c.created_at)).all():  # fmt: skip
        until = json.loads(row.body)["valid_until"]
        db.execute(grants.update().where(grants.c.id == row.id).values(valid_until=until))
        # Earlier changes went only to the ledger; the request itself is known from the row.
        db.execute(
            events.insert().values(
                grant_id=row.id, event="requested", by=row.developer, at=row.created_at
            )
        )
    op.create_index("ix_grants_valid_until", "grants", ["valid_until"])


def downgrade() -> None:
    op.drop_index("ix_grants_valid_until", "grants")
    with op.batch_alter_table("grants") as table:
        table.drop_column("valid_until")
    op.drop_index("ix_grant_events_grant_id", "grant_events")
    op.drop_table("grant_events")
