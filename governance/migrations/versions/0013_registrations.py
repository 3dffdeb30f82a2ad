"""The registration procedure: each registration of an asset, its documents, objections and
steps.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registrations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("asset", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("applicant", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("card_sha256", sa.String(64), nullable=False),
        sa.Column("attachments", sa.Text, nullable=False),
        sa.Column("objections", sa.Text, nullable=False),
        sa.Column("notice_until", sa.String(32), nullable=True),
        sa.Column("code", sa.String(64), nullable=True, unique=True),
        sa.Column("certificate", sa.Text, nullable=True),
        sa.Column("history", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.create_index("ix_registrations_asset", "registrations", ["asset"])


def downgrade() -> None:
    op.drop_index("ix_registrations_asset", "registrations")
    op.drop_table("registrations")
