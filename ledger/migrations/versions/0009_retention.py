"""how long a bank keeps members' texts, outbound bodies and sign-in records

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 09:55:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("banks") as batch_op:
        batch_op.add_column(sa.Column(
            "retention_days", sa.Integer(), server_default="90", nullable=False
        ))


def downgrade() -> None:
    with op.batch_alter_table("banks") as batch_op:
        batch_op.drop_column("retention_days")
