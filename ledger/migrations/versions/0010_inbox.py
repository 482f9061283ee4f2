"""care: every inbound text kept (the brokers' inbox), the duty rota, a bank's contact hours,
support line and crisis line

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CRISIS = "Samaritans 116 123, free, day or night"


def upgrade() -> None:
    with op.batch_alter_table("banks") as batch_op:
        batch_op.add_column(sa.Column("contact_hours", sa.String(60), nullable=True))
        batch_op.add_column(sa.Column("support_line", sa.String(40), nullable=True))
        batch_op.add_column(sa.Column(
            "crisis_text", sa.String(80), server_default=CRISIS, nullable=False))
    op.create_table(
        "inbound_texts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bank_id", sa.Integer(), sa.ForeignKey("banks.id"), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=True),
        sa.Column("masked_from", sa.String(24), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("inbox", sa.String(8), nullable=True),
        sa.Column("handled_by_member_id", sa.Integer(), sa.ForeignKey("members.id"),
                  nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "route in ('command', 'not_understood', 'talk', 'distress', 'small_talk')",
            name="ck_inbound_texts_route"),
        sa.CheckConstraint("inbox in ('open', 'handled')", name="ck_inbound_texts_inbox"),
    )
    op.create_index("ix_inbound_texts_bank_received", "inbound_texts",
                    ["bank_id", "received_at"])
    op.create_index("ix_inbound_texts_member_received", "inbound_texts",
                    ["member_id", "received_at"])
    op.create_index("ix_inbound_texts_bank_inbox", "inbound_texts", ["bank_id", "inbox"])
    op.create_table(
        "broker_duty",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bank_id", sa.Integer(), sa.ForeignKey("banks.id"), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("days > 0 and days < 128", name="ck_broker_duty_days"),
        sa.CheckConstraint("start_minute >= 0 and start_minute < 1440 and end_minute >= 0 "
                           "and end_minute <= 1440", name="ck_broker_duty_minutes"),
    )
    op.create_index("ix_broker_duty_bank_id", "broker_duty", ["bank_id"])


def downgrade() -> None:
    op.drop_index("ix_broker_duty_bank_id", table_name="broker_duty")
    op.drop_table("broker_duty")
    op.drop_index("ix_inbound_texts_bank_inbox", table_name="inbound_texts")
    op.drop_index("ix_inbound_texts_member_received", table_name="inbound_texts")
    op.drop_index("ix_inbound_texts_bank_received", table_name="inbound_texts")
    op.drop_table("inbound_texts")
    with op.batch_alter_table("banks") as batch_op:
        batch_op.drop_column("crisis_text")
        batch_op.drop_column("support_line")
        batch_op.drop_column("contact_hours")
