"""what each member gave and received each month (member_months), kept with the transfers,
so the monthly reports and the co-production index no longer add up every transfer of the
period on each request

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 08:10:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_months",
        sa.Column("bank_id", sa.Integer(), sa.ForeignKey("banks.id"), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("gave_minutes", sa.BigInteger(), nullable=False),
        sa.Column("gave_count", sa.Integer(), nullable=False),
        sa.Column("received_minutes", sa.BigInteger(), nullable=False),
        sa.Column("received_count", sa.Integer(), nullable=False),
        sa.Column("first_received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_received_id", sa.Integer(), nullable=True),
        sa.Column("last_gave_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_gave_id", sa.Integer(), nullable=True),
        sa.Column("gave_exchange_minutes", sa.BigInteger(), nullable=False),
        sa.Column("gave_activity_minutes", sa.BigInteger(), nullable=False),
        # Leads with (bank_id, month): a report's period is one range of it.
        sa.PrimaryKeyConstraint("bank_id", "month", "member_id"),
    )
    # Filled from the transfers already written, by the same statement ``timebank ledger
    # rebuild-pairs`` runs (it reads only columns transfers and accounts had here).
    from ledger import months

    with Session(bind=op.get_bind()) as session:
        months.rebuild(session)


def downgrade() -> None:
    op.drop_table("member_months")
