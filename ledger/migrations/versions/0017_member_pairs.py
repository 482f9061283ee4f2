"""who first met whom (member_pairs), kept with the transfers, so the network-growth report
and the co-production index no longer find every pair from every transfer on each request

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 11:20:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_pairs",
        sa.Column("bank_id", sa.Integer(), sa.ForeignKey("banks.id"), nullable=False),
        sa.Column("member_a_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("member_b_id", sa.Integer(), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exchange_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("bank_id", "member_a_id", "member_b_id"),
        sa.CheckConstraint("member_a_id < member_b_id", name="ck_member_pairs_order"),
    )
    op.create_index("ix_member_pairs_bank_met", "member_pairs", ["bank_id", "met_at"])
    op.create_index(
        "ix_transfers_activity_key", "transfers", ["bank_id", "idempotency_key"],
        postgresql_ops={"idempotency_key": "text_pattern_ops"},
        postgresql_where=sa.text("kind = 'activity'"),
        sqlite_where=sa.text("kind = 'activity'"),
    )
    # Backfilled from the transfers already written, by the same statement ``timebank
    # ledger rebuild-pairs`` runs (it reads only columns transfers and accounts had here).
    from ledger import pairs

    with Session(bind=op.get_bind()) as session:
        pairs.rebuild(session)


def downgrade() -> None:
    op.drop_index("ix_transfers_activity_key", table_name="transfers")
    op.drop_index("ix_member_pairs_bank_met", table_name="member_pairs")
    op.drop_table("member_pairs")
