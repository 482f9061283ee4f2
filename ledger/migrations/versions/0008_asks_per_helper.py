"""a per-bank limit on how many needs one helper is asked about a day

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("banks") as batch_op:
        batch_op.add_column(sa.Column(
            "asks_per_helper_per_day", sa.Integer(), server_default="3", nullable=False
        ))


def downgrade() -> None:
    with op.batch_alter_table("banks") as batch_op:
        batch_op.drop_column("asks_per_helper_per_day")
