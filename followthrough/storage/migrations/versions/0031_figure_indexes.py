"""figure indexes: the columns the reliability figures read, in an index per table, so a year of
them is read from the index instead of from the rows' pages with their snapshots

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03 20:00:00
"""

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

# As tables.FIGURE_COLUMNS says them today (a migration keeps its own copy).
FIGURE_COLUMNS = {
    "postmortems": (
        "resolved_at",
        "severity",
        "state",
        "started_at",
        "detected_at",
        "acknowledged_at",
        "mitigated_at",
        "communicated_at",
        "id",
    ),
    "action_items": ("postmortem_id", "state", "due", "opened_at", "verified_at"),
}


def upgrade() -> None:
    for table, columns in FIGURE_COLUMNS.items():
        op.create_index(f"ix_{table}_figures", table, list(columns))


def downgrade() -> None:
    for table in FIGURE_COLUMNS:
        op.drop_index(f"ix_{table}_figures", table_name=table)
