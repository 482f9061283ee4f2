"""members a bank was asked to forget; finding the message bodies the retention sweep erases

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch_op:
        batch_op.add_column(sa.Column("forgotten_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_messages_kept_bodies", "messages", ["bank_id", "created_at"],
        postgresql_where=sa.text("body <> ''"), sqlite_where=sa.text("body <> ''"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_kept_bodies", table_name="messages")
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_column("forgotten_at")
