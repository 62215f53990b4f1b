"""figures from the reviewed timeline: approved postmortems' milestone columns recomputed

The postmortems' milestone columns (0007) are the figures' milestones. Until now they were the
incident's, as its webhook carried them; an approved postmortem's are now those of its reviewed
timeline (followthrough/domain/response.py). Existing approved and closed rows are recomputed
from their stored snapshots; no column changes.

The rule is restated here over the snapshot's JSON rather than imported: a migration must do
the same thing for a database upgraded a year from now, when the domain models may no longer
read these snapshots and the rule may have moved on. tests/test_storage.py pins that the two
agree today.

Revision ID: 0017
Revises: 0013
Create Date: 2026-12-03 10:30:00
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from followthrough.storage.tables import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

MILESTONES = ("started", "detected", "acknowledged", "mitigated", "resolved", "communicated")
APPROVED_STATES = ("tracking", "closed")
COUNTS_AS = {"communicated": ("communicated", "status_update")}


def _postmortems() -> sa.TableClause:
    return sa.table(
        "postmortems",
        sa.column("id", sa.String),
        sa.column("state", sa.String),
        sa.column("data", sa.JSON),
        *(sa.column(f"{name}_at", UTCDateTime) for name in MILESTONES),
    )


def upgrade() -> None:
    _refill(_reviewed_milestones)


def downgrade() -> None:
    _refill(_incident_milestones)


def _refill(milestones_of: Any) -> None:
    postmortems = _postmortems()
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(postmortems.c.id, postmortems.c.data).where(
            postmortems.c.state.in_(APPROVED_STATES)
        )
    ).all()
    for pm_id, data in rows:
        values = milestones_of(data)
        connection.execute(
            postmortems.update()
            .where(postmortems.c.id == pm_id)
            .values(**{f"{name}_at": at for name, at in values.items()})
        )


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _incident_milestones(data: dict[str, Any]) -> dict[str, datetime | None]:
    incident = data["incident"]
    return {name: _moment(incident.get(f"{name}_at")) for name in MILESTONES}


def _reviewed_milestones(data: dict[str, Any]) -> dict[str, datetime | None]:
    """response_milestones over a snapshot: the merged timeline (a drafted milestone replaces
    the incident's), each milestone its earliest entry but resolved its latest, a status update
    counts as communication; an approved snapshot without a draft keeps the incident's."""
    incident = _incident_milestones(data)
    draft = data.get("draft")
    if not draft:
        return incident
    drafted = [(entry["kind"], _moment(entry["at"])) for entry in draft.get("timeline", [])]
    replaced = {kind for kind, _ in drafted if kind in MILESTONES}
    timeline = [(k, at) for k, at in incident.items() if k not in replaced] + drafted
    found: dict[str, datetime | None] = {}
    for name in MILESTONES:
        kinds = COUNTS_AS.get(name, (name,))
        moments = sorted(at for kind, at in timeline if kind in kinds and at is not None)
        if name == "resolved":
            found[name] = moments[-1] if moments else incident["resolved"]
        else:
            found[name] = moments[0] if moments else None
    return found
