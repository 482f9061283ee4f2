"""caps on outbound texts: per-bank limits, who caused a text, when it was sent

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("banks") as batch_op:
        batch_op.add_column(sa.Column(
            "member_daily_texts", sa.Integer(), server_default="20", nullable=False))
        batch_op.add_column(sa.Column(
            "recipient_daily_texts", sa.Integer(), server_default="10", nullable=False))
        batch_op.add_column(sa.Column(
            "bank_daily_texts", sa.Integer(), server_default="2000", nullable=False))
        batch_op.add_column(sa.Column(
            "answers_per_hour", sa.Integer(), server_default="30", nullable=False))
        batch_op.add_column(sa.Column(
            "stranger_answers_per_hour", sa.Integer(), server_default="10", nullable=False))
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("caused_by_member_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            "fk_messages_caused_by", "members", ["caused_by_member_id"], ["id"]
        )
        batch_op.create_index("ix_messages_caused_by", ["caused_by_member_id", "created_at"])
        batch_op.create_index("ix_messages_bank_sent", ["bank_id", "sent_at"])


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_index("ix_messages_bank_sent")
        batch_op.drop_index("ix_messages_caused_by")
        batch_op.drop_constraint("fk_messages_caused_by", type_="foreignkey")
        batch_op.drop_column("sent_at")
        batch_op.drop_column("caused_by_member_id")
    with op.batch_alter_table("banks") as batch_op:
        batch_op.drop_column("stranger_answers_per_hour")
        batch_op.drop_column("answers_per_hour")
        batch_op.drop_column("bank_daily_texts")
        batch_op.drop_column("recipient_daily_texts")
        batch_op.drop_column("member_daily_texts")
