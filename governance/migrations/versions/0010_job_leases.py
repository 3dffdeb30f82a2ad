"""Durable jobs: the queue lives in the jobs table, and a running job is leased by the process
that claimed it, so another process can claim what waits and find what a dead one held.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as table:
        table.add_column(sa.Column("queued_at", sa.Float, nullable=False, server_default="0"))
        table.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        table.add_column(sa.Column("lease_until", sa.Float, nullable=True))
        table.add_column(
            sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_index("jobs_waiting", "jobs", ["status", "queued_at"])
    op.create_index("jobs_leased", "jobs", ["lease_until"])


def downgrade() -> None:
    op.drop_index("jobs_leased", "jobs")
    op.drop_index("jobs_waiting", "jobs")
    with op.batch_alter_table("jobs") as table:
        table.drop_column("cancel_requested")
        table.drop_column("lease_until")
        table.drop_column("lease_owner")
        table.drop_column("queued_at")
