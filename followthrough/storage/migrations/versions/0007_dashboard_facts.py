"""dashboard facts: an incident's milestones, services and SLO burns as columns

The dashboard's overview and metrics read these lean columns instead of every postmortem's JSON
snapshot (10,000 postmortems must stay fast). Existing rows are filled from their snapshots.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 10:20:00
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from followthrough.storage.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

MILESTONES = ("started", "detected", "acknowledged", "mitigated", "resolved", "communicated")


def upgrade() -> None:
    with op.batch_alter_table("postmortems", schema=None) as batch_op:
        batch_op.add_column(sa.Column("incident_id", sa.String(length=128), nullable=True))
        for name in MILESTONES:
            batch_op.add_column(sa.Column(f"{name}_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("services", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("slo_burns", sa.JSON(), nullable=True))
        batch_op.create_index("ix_postmortems_resolved_at", ["resolved_at"], unique=False)
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.create_index("ix_action_items_state_due", ["state", "due"], unique=False)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_action_at", ["action", "at"], unique=False)
    _fill_from_snapshots()


def _fill_from_snapshots() -> None:
    postmortems = sa.table(
        "postmortems",
        sa.column("id", sa.String),
        sa.column("data", sa.JSON),
        sa.column("incident_id", sa.String),
        sa.column("services", sa.JSON),
        sa.column("slo_burns", sa.JSON),
        *(sa.column(f"{name}_at", UTCDateTime) for name in MILESTONES),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(postmortems.c.id, postmortems.c.data)).all()
    for pm_id, data in rows:
        connection.execute(
            postmortems.update().where(postmortems.c.id == pm_id).values(**_facts(data))
        )


def _facts(data: dict[str, Any]) -> dict[str, Any]:
    """The same columns RecordStore.record_postmortem writes, read from a stored snapshot."""
    incident = data["incident"]
    facts: dict[str, Any] = {
        "incident_id": incident["id"],
        "services": incident.get("services", []),
        "slo_burns": [
            {
                "slo": review["slo"]["id"],
                "service": review["slo"]["service"],
                "budget_consumed": review["impact"]["budget_consumed"],
                "burn_rate": review["impact"]["burn_rate"],
            }
            for review in data.get("slo_review", [])
        ],
    }
    for name in MILESTONES:
        value = incident.get(f"{name}_at")
        facts[f"{name}_at"] = datetime.fromisoformat(value) if value else None
    return facts


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_action_at")
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.drop_index("ix_action_items_state_due")
    with op.batch_alter_table("postmortems", schema=None) as batch_op:
        batch_op.drop_index("ix_postmortems_resolved_at")
        for column in ("slo_burns", "services", *(f"{n}_at" for n in MILESTONES), "incident_id"):
            batch_op.drop_column(column)
