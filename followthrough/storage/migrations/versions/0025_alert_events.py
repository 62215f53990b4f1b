"""alert events: every firing and resolved alert from Alertmanager and Grafana, for the monthly
alert-quality review (pruned after policy alerts.retention_days)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 14:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_events",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("service", sa.String(length=128), nullable=True),
        sa.Column("severity", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paged", sa.Boolean(), nullable=True),
        sa.Column("acknowledged", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("source", "fingerprint", "starts_at"),
    )
    op.create_index("ix_alert_events_starts_at", "alert_events", ["starts_at"])
    op.create_index("ix_alert_events_received_at", "alert_events", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_events_received_at", table_name="alert_events")
    op.drop_index("ix_alert_events_starts_at", table_name="alert_events")
    op.drop_table("alert_events")
