"""the languages each bank offers (LANG) and its default: NULL offers every language with a
catalogue file, so a bank offers a new language as soon as its file is there

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 14:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("banks") as batch_op:
        batch_op.add_column(sa.Column("languages", sa.String(120), nullable=True))
        batch_op.add_column(sa.Column(
            "default_language", sa.String(8), server_default="en", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("banks") as batch_op:
        batch_op.drop_column("default_language")
        batch_op.drop_column("languages")
