"""message segments, quiet hours, template values and ambiguous sends

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 07:34:22.506401
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("segments", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("values_json", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("possibly_sent_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("confirmations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_confirmations_answered_sid", ["bank_id", "answered_sid"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("confirmations", schema=None) as batch_op:
        batch_op.drop_index("ix_confirmations_answered_sid")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("possibly_sent_at")
        batch_op.drop_column("values_json")
        batch_op.drop_column("not_before")
        batch_op.drop_column("segments")
