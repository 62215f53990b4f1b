"""recurring themes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 17:09:21.016386
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "factor_tags",
        sa.Column("postmortem_id", sa.String(length=200), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("severity", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("postmortem_id", "tag"),
    )
    with op.batch_alter_table("factor_tags", schema=None) as batch_op:
        batch_op.create_index(
            "ix_factor_tags_tag_resolved_at", ["tag", "resolved_at"], unique=False
        )

    op.create_table(
        "themes",
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reached_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("tag", "window_start"),
    )


def downgrade() -> None:
    op.drop_table("themes")
    with op.batch_alter_table("factor_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_factor_tags_tag_resolved_at")
    op.drop_table("factor_tags")
