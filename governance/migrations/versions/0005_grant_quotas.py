"""What each grant with quotas has used: queries today and rows scanned in all.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grant_usage",
        sa.Column("grant_id", sa.String(32), sa.ForeignKey("grants.id"), primary_key=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("queries_today", sa.BigInteger, nullable=False),
        sa.Column("rows_scanned", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("grant_usage")
