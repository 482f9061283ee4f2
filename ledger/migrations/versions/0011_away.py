"""care: members away (AWAY/BACK, timed), LEAVE confirmed, going quiet, check-ins, and the
brokers' daily summary of people to check on

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_MOMENTS = ("away_since", "away_until", "away_warned_at", "back_at", "leave_asked_at",
            "check_in_sent_at")


def upgrade() -> None:
    with op.batch_alter_table("banks") as batch_op:
        batch_op.add_column(sa.Column(
            "quiet_after_weeks", sa.Integer(), server_default="6", nullable=False))
        batch_op.add_column(sa.Column(
            "check_in", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column(
            "care_summary_through", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("members") as batch_op:
        for name in _MOMENTS:
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("away_by_member_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_members_away_by", "members", ["away_by_member_id"],
                                    ["id"])


def downgrade() -> None:
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_constraint("fk_members_away_by", type_="foreignkey")
        batch_op.drop_column("away_by_member_id")
        for name in reversed(_MOMENTS):
            batch_op.drop_column(name)
    with op.batch_alter_table("banks") as batch_op:
        batch_op.drop_column("care_summary_through")
        batch_op.drop_column("check_in")
        batch_op.drop_column("quiet_after_weeks")
