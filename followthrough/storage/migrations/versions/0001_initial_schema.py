"""incidents, postmortems, action items, audit log

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 12:51:47.640436
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("workflow_id", sa.String(length=220), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("postmortem_id", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "seq"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_postmortem_at", ["postmortem_id", "at"], unique=False
        )

    op.create_table(
        "incidents",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("postmortem_id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=32), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("source", "external_id"),
        sa.UniqueConstraint("postmortem_id"),
    )
    op.create_table(
        "postmortems",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("draft_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("postmortems", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_postmortems_severity"), ["severity"], unique=False)
        batch_op.create_index(batch_op.f("ix_postmortems_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_postmortems_team"), ["team"], unique=False)

    op.create_table(
        "action_items",
        sa.Column("id", sa.String(length=220), nullable=False),
        sa.Column("postmortem_id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["postmortem_id"],
            ["postmortems.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_action_items_owner"), ["owner"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_action_items_postmortem_id"), ["postmortem_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_action_items_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_action_items_team"), ["team"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_action_items_team"))
        batch_op.drop_index(batch_op.f("ix_action_items_state"))
        batch_op.drop_index(batch_op.f("ix_action_items_postmortem_id"))
        batch_op.drop_index(batch_op.f("ix_action_items_owner"))

    op.drop_table("action_items")
    with op.batch_alter_table("postmortems", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_postmortems_team"))
        batch_op.drop_index(batch_op.f("ix_postmortems_state"))
        batch_op.drop_index(batch_op.f("ix_postmortems_severity"))

    op.drop_table("postmortems")
    op.drop_table("incidents")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_postmortem_at")

    op.drop_table("audit_events")
