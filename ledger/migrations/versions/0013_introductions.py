"""introductions through a broker: a bank's choice, a member's flag, and the waiting list

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("banks") as batch_op:
        batch_op.add_column(sa.Column(
            "introductions", sa.String(16), server_default="direct", nullable=False
        ))
    with op.batch_alter_table("members") as batch_op:
        batch_op.add_column(sa.Column(
            "intro_via_broker", sa.Boolean(), server_default=sa.false(), nullable=False
        ))
    op.create_table(
        "introductions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bank_id", sa.Integer(), sa.ForeignKey("banks.id"), nullable=False),
        sa.Column("post_id", sa.Integer(), sa.ForeignKey("posts.id"), nullable=False),
        sa.Column("requester_member_id", sa.Integer(), sa.ForeignKey("members.id"),
                  nullable=False),
        sa.Column("helper_member_id", sa.Integer(), sa.ForeignKey("members.id"),
                  nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by_member_id", sa.Integer(), sa.ForeignKey("members.id")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status in ('waiting', 'approved', 'declined', 'canceled')",
                           name="ck_introductions_status"),
    )
    op.create_index("ix_introductions_post_id", "introductions", ["post_id"])
    op.create_index("ix_introductions_bank_status", "introductions", ["bank_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_introductions_bank_status", table_name="introductions")
    op.drop_index("ix_introductions_post_id", table_name="introductions")
    op.drop_table("introductions")
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_column("intro_via_broker")
    with op.batch_alter_table("banks") as batch_op:
        batch_op.drop_column("introductions")
