"""a per-bank version of what matching reads, so cached match indexes are never stale

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 10:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("banks") as batch_op:
        batch_op.add_column(sa.Column(
            "match_version", sa.BigInteger(), server_default="0", nullable=False
        ))


def downgrade() -> None:
    with op.batch_alter_table("banks") as batch_op:
        batch_op.drop_column("match_version")
