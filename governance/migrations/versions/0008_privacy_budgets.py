"""Privacy budgets: ε and δ spent per organisation (and across all) per asset per period, and
the released answer of every private question, so a repeat spends nothing.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_spends",
        sa.Column("spender", sa.String(64), primary_key=True),
        sa.Column("asset", sa.String(130), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("epsilon_micro", sa.BigInteger, nullable=False),
        sa.Column("delta_femto", sa.BigInteger, nullable=False),
        # What the spender may spend in the period, as the newest reservation found it.
        sa.Column("epsilon_limit_micro", sa.BigInteger, nullable=False),
        sa.Column("delta_limit_femto", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "private_answers",
        sa.Column("question", sa.String(64), primary_key=True),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("query_id", sa.String(34), nullable=False),
        sa.Column("asked_at", sa.String(32), nullable=False),
        sa.Column("answer", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("private_answers")
    op.drop_table("privacy_spends")
