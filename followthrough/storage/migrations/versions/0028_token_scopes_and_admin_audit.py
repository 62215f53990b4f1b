"""token scopes and expiries; the administrative audit log

Existing tokens keep working: scope 'act' and no expiry.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-03 16:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scope", sa.String(length=8), server_default="act", nullable=False)
        )
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "admin_actions",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=220), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_admin_actions_at_key", "admin_actions", ["at", "key"])
    op.create_index("ix_admin_actions_kind", "admin_actions", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_admin_actions_kind", table_name="admin_actions")
    op.drop_index("ix_admin_actions_at_key", table_name="admin_actions")
    op.drop_table("admin_actions")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("scope")
