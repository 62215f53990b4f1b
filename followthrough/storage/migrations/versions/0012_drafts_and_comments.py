"""the dashboard's draft editor: versioned saved drafts, review comments per section, and the
version each reviewer last saw

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 06:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "draft_saves",
        sa.Column("postmortem_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("saved_by", sa.String(length=128), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_version", sa.Integer(), nullable=False),
        sa.Column("draft", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("postmortem_id", "version"),
    )
    op.create_table(
        "review_comments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("postmortem_id", sa.String(length=200), nullable=False),
        sa.Column("draft_version", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("review_comments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_comments_postmortem_id"), ["postmortem_id"], unique=False
        )
    op.create_table(
        "review_seen",
        sa.Column("postmortem_id", sa.String(length=200), nullable=False),
        sa.Column("reviewer", sa.String(length=128), nullable=False),
        sa.Column("draft_version", sa.Integer(), nullable=False),
        sa.Column("draft", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("postmortem_id", "reviewer"),
    )


def downgrade() -> None:
    op.drop_table("review_seen")
    with op.batch_alter_table("review_comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_comments_postmortem_id"))
    op.drop_table("review_comments")
    op.drop_table("draft_saves")
