"""Government-guided price caps: the most one asset, or every asset of a classification, may
charge per rate, with who set each and why.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "price_caps",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("target", sa.String(200), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("per_query_minor", sa.BigInteger, nullable=True),
        sa.Column("per_1k_rows_scanned_minor", sa.BigInteger, nullable=True),
        sa.Column("per_cpu_second_minor", sa.BigInteger, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("price_caps")
