"""outbox errors: why a failed message did not go out

A notice that cannot be rendered, that the mail server refuses for good, or that was given up on
after its retries is kept in the outbox as `failed`, with the reason, for the operators to see.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 03:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("error")
