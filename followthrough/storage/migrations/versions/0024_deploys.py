"""deploys: each deploy as its source reported it last, for the timeline and the change metrics

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deploys",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("deploy_id", sa.String(length=200), nullable=False),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("environment", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rollback_of", sa.String(length=128), nullable=True),
        sa.Column("by", sa.String(length=128), nullable=True),
        sa.Column("link", sa.String(length=2000), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "deploy_id"),
    )
    op.create_index("ix_deploys_service_at", "deploys", ["service", "at"])
    op.create_index("ix_deploys_at", "deploys", ["at"])
    # Postmortems written before this revision have no caused_by_change: none could name one.
    op.add_column("postmortems", sa.Column("caused_by_change", sa.String(length=200)))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN on SQLite too (3.35+): a batch copy of postmortems would have
    # to drop the table action items' foreign keys point at.
    op.drop_column("postmortems", "caused_by_change")
    op.drop_index("ix_deploys_at", table_name="deploys")
    op.drop_index("ix_deploys_service_at", table_name="deploys")
    op.drop_table("deploys")
