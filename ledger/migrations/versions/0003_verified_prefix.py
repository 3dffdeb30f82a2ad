"""The verified prefix: where the next incremental verification of the log starts.

Revision ID: ledger_0003
Revises: ledger_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0003"
down_revision = "ledger_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_verified",
        sa.Column("slot", sa.Text, primary_key=True),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("verified_at", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_verified")
