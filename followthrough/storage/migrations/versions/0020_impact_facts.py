"""impact facts: a postmortem's users affected and the class of failure an item removes, as columns

The reliability backlog scores every open action item; these lean columns spare it reading each
postmortem's JSON snapshot (once per item) for two small facts. Both facts are new with this
revision, so no stored snapshot carries them: nothing to fill.

Revision ID: 0020
Revises: 0017
Create Date: 2026-12-03 13:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("postmortems", schema=None) as batch_op:
        batch_op.add_column(sa.Column("users_affected", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removes_class", sa.String(length=128), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later) rather than batch mode's copy of the
    # table: postmortems cannot be dropped and recreated under its action items' foreign key.
    with op.batch_alter_table("action_items", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("removes_class")
    with op.batch_alter_table("postmortems", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("users_affected")
