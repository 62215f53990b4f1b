"""slack messages: each notice posted to a Slack DM or channel once, found again by (channel, ts)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 06:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_messages",
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("person", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("postmortem_id", sa.String(length=200), nullable=False),
        sa.Column("action_item_id", sa.String(length=220), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=True),
        sa.Column("ts", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("dedupe_key", "target"),
    )
    with op.batch_alter_table("slack_messages", schema=None) as batch_op:
        batch_op.create_index("ix_slack_messages_channel_ts", ["channel", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("slack_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_slack_messages_channel_ts")
    op.drop_table("slack_messages")
