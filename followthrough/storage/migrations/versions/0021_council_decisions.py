"""council decisions: what the council decided, and the freezes a CI/CD gate asks about

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 13:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
# The brief says 0017; main already has 0023 on 0017, so this follows it to keep one head (the
# lead re-chains the migrations at merge).
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "council_decisions",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("trigger", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_council_decisions_state", "council_decisions", ["state"])
    op.create_table(
        "freezes",
        sa.Column("decision_id", sa.String(length=200), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("lifts_when", sa.Text(), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["decision_id"], ["council_decisions.id"]),
        sa.PrimaryKeyConstraint("decision_id", "service"),
    )
    op.create_index("ix_freezes_service_lifted_at", "freezes", ["service", "lifted_at"])


def downgrade() -> None:
    op.drop_index("ix_freezes_service_lifted_at", table_name="freezes")
    op.drop_table("freezes")
    op.drop_index("ix_council_decisions_state", table_name="council_decisions")
    op.drop_table("council_decisions")
