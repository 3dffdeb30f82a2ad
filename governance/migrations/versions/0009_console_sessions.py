"""Console sessions, made from an API key at sign-in, and the answers each was shown.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("principal", sa.String(64), nullable=False, index=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "console_answers",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("query_id", sa.String(40), primary_key=True),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("kept_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("console_answers")
    op.drop_table("console_sessions")
