"""brokers' dashboard sessions can be ended: a generation per member, checked on each request

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch_op:
        batch_op.add_column(sa.Column(
            "session_generation", sa.Integer(), server_default="0", nullable=False
        ))


def downgrade() -> None:
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_column("session_generation")
