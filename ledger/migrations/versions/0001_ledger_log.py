"""The log's entries and its signed checkpoints.

Revision ID: ledger_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "ledger_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Stores made before the ledger was under Alembic already hold these tables.
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "ledger_entries" not in existing:
        op.create_table(
            "ledger_entries",
            sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
            sa.Column("data", sa.Text, nullable=False),
            sa.Column("leaf_hash", sa.Text, nullable=False),
            sa.Column("created_at", sa.Text, nullable=False),
        )
    if "ledger_checkpoints" not in existing:
        op.create_table(
            "ledger_checkpoints",
            sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("root_hash", sa.Text, nullable=False),
            sa.Column("note", sa.Text, nullable=False),
        )


def downgrade() -> None:
    op.drop_table("ledger_checkpoints")
    op.drop_table("ledger_entries")
