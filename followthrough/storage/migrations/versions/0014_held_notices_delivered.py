"""held notices delivered: the daily digest reads only what waits, not every notice ever held

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 10:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("held_notices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("delivered", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index(
            "ix_held_notices_waiting", ["delivered", "person", "created_at"], unique=False
        )
    # Rows whose digest already went out (sent, or kept in the local outbox) wait no longer.
    op.execute(
        "UPDATE held_notices SET delivered = TRUE WHERE digest_key IN "
        "(SELECT dedupe_key FROM outbox WHERE status IN ('sent', 'kept'))"
    )


def downgrade() -> None:
    with op.batch_alter_table("held_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_held_notices_waiting")
        batch_op.drop_column("delivered")
