"""chat transcripts: the incident channel's messages, kept with the postmortem once by ts

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-03 10:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_messages",
        sa.Column("postmortem_id", sa.String(length=200), nullable=False),
        sa.Column("ts", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.String(length=100), nullable=True),
        sa.Column("author", sa.String(length=200), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reactions", sa.JSON(), nullable=False),
        sa.Column("mark", sa.String(length=20), nullable=True),
        sa.Column("link", sa.String(length=2000), nullable=True),
        sa.Column("kept_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("postmortem_id", "ts"),
    )


def downgrade() -> None:
    op.drop_table("chat_messages")
