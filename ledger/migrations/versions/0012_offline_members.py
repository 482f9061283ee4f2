"""members without a phone, and a phone shared by two members of a bank

A member's ``phone`` may be empty (a broker registered them). A phone may belong to two
members of one bank: ``phone_slot`` is 0 for the first (and for everyone who joins by text,
so two JOINs at once still meet the unique key), 1 for the second, added by a broker.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 10:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch_op:
        batch_op.add_column(sa.Column(
            "phone_slot", sa.Integer(), server_default="0", nullable=False
        ))
        batch_op.drop_constraint("uq_members_bank_phone", type_="unique")
        batch_op.create_unique_constraint(
            "uq_members_bank_phone_slot", ["bank_id", "phone", "phone_slot"]
        )
        batch_op.create_check_constraint("ck_members_phone_slot", "phone_slot in (0, 1)")


def downgrade() -> None:
    # A shared phone cannot survive the old unique key: its second member keeps their
    # account and history, without the number.
    op.execute("update members set phone = null where phone_slot <> 0")
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_constraint("ck_members_phone_slot", type_="check")
        batch_op.drop_constraint("uq_members_bank_phone_slot", type_="unique")
        batch_op.create_unique_constraint("uq_members_bank_phone", ["bank_id", "phone"])
        batch_op.drop_column("phone_slot")
