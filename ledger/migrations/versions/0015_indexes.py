"""indexes for a big bank: the dashboard's pages and reports, and a broadcast's batches

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 10:00:00
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# (name, table, columns): mirrored in ledger/models.py.
INDEXES = (
    # A member's statement, newest first, read from each side's own index.
    ("ix_transfers_from_id", "transfers", ["from_account_id", "id"]),
    ("ix_transfers_to_id", "transfers", ["to_account_id", "id"]),
    # The ledger page, a page at a time by id.
    ("ix_transfers_bank_id", "transfers", ["bank_id", "id"]),
    # Whether a transfer was reversed (the ledger page, every report).
    ("ix_transfers_reverses", "transfers", ["reverses_id"]),
    # The members list, a page at a time in name order.
    ("ix_members_bank_name", "members", ["bank_id", "name", "id"]),
    # A broadcast's next batch of queued texts, in id order.
    ("ix_messages_activity_status_id", "messages", ["activity_id", "status", "id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
