"""The supervisor's approval party becomes `role:supervisor`, which no principal id can spell.

Revision ID: 0002
Revises: 0001
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD, NEW = "supervisor", "role:supervisor"


def upgrade() -> None:
    _rename(OLD, NEW)


def downgrade() -> None:
    _rename(NEW, OLD)


def _rename(old: str, new: str) -> None:
    db = op.get_bind()
    grants = sa.table("grants", sa.column("id", sa.String), sa.column("body", sa.Text))
    for grant_id, body in db.execute(sa.select(grants.c.id, grants.c.body)).all():
        stored = json.loads(body)
        parties = stored.get("required_parties", [])
        if old in parties:
            stored["required_parties"] = sorted(new if p == old else p for p in parties)
            db.execute(
                grants.update()
                .where(grants.c.id == grant_id)
                .values(body=json.dumps(stored, sort_keys=True))
            )
    approvals = sa.table("grant_approvals", sa.column("party", sa.String))
    db.execute(approvals.update().where(approvals.c.party == old).values(party=new))
