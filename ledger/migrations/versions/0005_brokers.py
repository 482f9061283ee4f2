"""group activities, RSVPs, the audit log, held members and broker passwords

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bank_id", sa.Integer(), sa.ForeignKey("banks.id"), nullable=False),
        sa.Column("ref", sa.Integer(), nullable=False),
        sa.Column("broker_member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=True),
        sa.Column("text", sa.String(length=480), nullable=False),
        sa.Column("audience_area", sa.String(length=80), nullable=True),
        sa.Column("audience_skill", sa.String(length=80), nullable=True),
        sa.Column("host_account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("request_key", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status in ('planned', 'sending', 'canceled')", name="ck_activities_status"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bank_id", "ref", name="uq_activities_ref"),
        sa.UniqueConstraint("bank_id", "request_key", name="uq_activities_request"),
    )
    op.create_table(
        "rsvps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("activity_id", sa.Integer(), sa.ForeignKey("activities.id"), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("coming", sa.Boolean(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("activity_id", "member_id", name="uq_rsvps_member"),
    )
    op.create_index("ix_rsvps_member_id", "rsvps", ["member_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bank_id", sa.Integer(), sa.ForeignKey("banks.id"), nullable=False),
        sa.Column("broker_member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("detail", sa.String(length=400), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_bank_created", "audit_log", ["bank_id", "created_at"])
    with op.batch_alter_table("banks") as batch_op:
        batch_op.add_column(sa.Column(
            "broadcast_confirm_over", sa.Integer(), server_default="10", nullable=False
        ))
    with op.batch_alter_table("members") as batch_op:
        batch_op.add_column(sa.Column("held_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("activity_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_messages_activity", "activities", ["activity_id"], ["id"]
        )
        batch_op.create_index("ix_messages_activity_status", ["activity_id", "status"])


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_index("ix_messages_activity_status")
        batch_op.drop_constraint("fk_messages_activity", type_="foreignkey")
        batch_op.drop_column("activity_id")
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_column("password_hash")
        batch_op.drop_column("held_at")
    with op.batch_alter_table("banks") as batch_op:
        batch_op.drop_column("broadcast_confirm_over")
    op.drop_index("ix_audit_bank_created", "audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_rsvps_member_id", "rsvps")
    op.drop_table("rsvps")
    op.drop_table("activities")
