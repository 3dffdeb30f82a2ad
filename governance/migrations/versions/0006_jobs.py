"""Jobs: submitted code, its status, the gate's checked outputs and the release decision.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(34), primary_key=True),
        sa.Column("developer", sa.String(64), nullable=False, index=True),
        sa.Column("grant_id", sa.String(32), sa.ForeignKey("grants.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("reviewers", sa.Text, nullable=False),
        sa.Column("review", sa.Text, nullable=False),
        sa.Column("price_plan", sa.String(64), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("outputs", sa.Text, nullable=True),
        sa.Column("disclosure", sa.Text, nullable=True),
        sa.Column("cpu_ms", sa.BigInteger, nullable=False),
        sa.Column("submitted_at", sa.String(32), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=True),
        sa.Column("finished_at", sa.String(32), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decision_reason", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("jobs")
