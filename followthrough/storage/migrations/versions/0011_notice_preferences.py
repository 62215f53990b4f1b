"""notice preferences: immediate or a daily digest per person; notices held for the digest

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 06:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice_preferences",
        sa.Column("person", sa.String(length=128), nullable=False),
        sa.Column("delivery", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person"),
    )
    op.create_table(
        "held_notices",
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("person", sa.String(length=128), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest_key", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("dedupe_key", "person"),
    )
    with op.batch_alter_table("held_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_held_notices_digest_key"), ["digest_key"])


def downgrade() -> None:
    with op.batch_alter_table("held_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_held_notices_digest_key"))
    op.drop_table("held_notices")
    op.drop_table("notice_preferences")
