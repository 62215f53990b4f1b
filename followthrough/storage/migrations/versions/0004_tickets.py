"""action item tickets

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 16:41:10.667417
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ticket", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_action_items_ticket"), ["ticket"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_action_items_ticket"))
        batch_op.drop_column("ticket")
