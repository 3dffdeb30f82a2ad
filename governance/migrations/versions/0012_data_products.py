"""Data product descriptions (产品说明) developers file: each product's sources, scope and date,
the ledger receipts it rests on, its ledger entries, and whether it was withdrawn.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_products",
        sa.Column("id", sa.String(34), primary_key=True),
        sa.Column("developer", sa.String(64), nullable=False),
        sa.Column("org", sa.String(200), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("product_date", sa.String(10), nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
        sa.Column("receipts", sa.Text, nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("filed_at", sa.String(32), nullable=False),
        sa.Column("filed_index", sa.BigInteger, nullable=False),
        sa.Column("filed_leaf_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("withdrawn_at", sa.String(32), nullable=True),
        sa.Column("withdrawn_by", sa.String(64), nullable=True),
        sa.Column("withdrawal_reason", sa.Text, nullable=True),
        sa.Column("withdrawn_index", sa.BigInteger, nullable=True),
        sa.Column("withdrawn_leaf_hash", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("data_products")
