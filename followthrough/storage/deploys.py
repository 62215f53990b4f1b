"""Deploys, one row per (source, deploy id): a redelivery changes nothing, a later status of the
same deploy updates it, and a finished deploy is never put back to unfinished by a late delivery
of an earlier status (sources retry, so statuses may arrive out of order)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from followthrough.domain.changes import (
    NO_CHANGE,
    Deploy,
    DeployStatus,
    caused_by_change_problem,
)
from followthrough.domain.incident import Incident
from followthrough.domain.timeline import incident_start
from followthrough.storage.database import Database
from followthrough.storage.tables import DeployRow

Recorded = Literal["recorded", "updated", "duplicate"]
FINISHED: tuple[DeployStatus, ...] = ("succeeded", "failed", "cancelled")
# A read for one incident's timeline or one page of metrics never holds more than this many.
READ_MOST = 20_000
# How far before an incident a deploy may be named as its cause: a latent fault can wait weeks.
CAUSE_LOOKBACK = timedelta(days=90)


class DeployStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def record(self, deploy: Deploy, received_at: datetime) -> Recorded:
        """Store the deploy (bounded by the edge: domain/changes.deploy_problems); what came of
        it. One upsert decides, so two deliveries at once cannot both insert."""
        at = deploy.at
        assert at is not None, "deploy_problems refuses a deploy with neither time"
        values = {
            "service": deploy.service,
            "version": deploy.version,
            "environment": deploy.environment,
            "status": deploy.status,
            "started_at": deploy.started_at,
            "finished_at": deploy.finished_at,
            "at": at,
            "rollback_of": deploy.rollback_of,
            "by": deploy.by,
            "link": deploy.link,
        }
        table = DeployRow.__table__
        with self.db.transaction() as session:
            before = session.get(DeployRow, (deploy.source, deploy.id))
            if before is not None and _as_deploy(before) == deploy:
                return "duplicate"
            statement = self.db.insert(table).values(
                source=deploy.source, deploy_id=deploy.id, received_at=received_at, **values
            )
            done = session.execute(
                statement.on_conflict_do_update(
                    index_elements=["source", "deploy_id"],
                    set_={**values, "received_at": received_at},
                    where=or_(
                        table.c.status.not_in(FINISHED),
                        statement.excluded.status.in_(FINISHED),
                    ),
                ).returning(table.c.deploy_id)
            ).first()
        if done is None:
            return "duplicate"  # an earlier status, after the deploy finished
        return "recorded" if before is None else "updated"

    def version(self) -> tuple[int, datetime | None]:
        """Changes with every deploy stored or updated (each sets received_at), for caches."""
        with self.engine.connect() as connection:
            count, latest = connection.execute(
                select(func.count(), func.max(DeployRow.received_at))
            ).one()
        return count, latest

    def get(self, source: str, deploy_id: str) -> Deploy | None:
        with Session(self.engine) as session:
            row = session.get(DeployRow, (source, deploy_id))
            return None if row is None else _as_deploy(row)

    def of_services(
        self, services: Sequence[str], since: datetime, until: datetime
    ) -> list[Deploy]:
        """The services' deploys that took effect from `since` to `until`, oldest first."""
        if not services:
            return []
        row = DeployRow
        query = (
            select(row)
            .where(row.service.in_(list(services)), row.at >= since, row.at <= until)
            .order_by(row.at, row.source, row.deploy_id)
            .limit(READ_MOST)
        )
        with Session(self.engine) as session:
            return [_as_deploy(r) for r in session.scalars(query)]

    def cause_problem(self, incident: Incident, caused_by_change: str | None) -> str | None:
        """What is wrong with a draft's `caused_by_change`: it must name a deploy of the
        incident's services before it started (within CAUSE_LOOKBACK), "none", or nothing."""
        if caused_by_change is None or caused_by_change == NO_CHANGE:
            return None
        start = incident_start(incident)
        candidates = self.of_services(incident.services, start - CAUSE_LOOKBACK, start)
        return caused_by_change_problem(caused_by_change, candidates)

    def between(self, since: datetime, until: datetime) -> list[Deploy]:
        """Every deploy that took effect in [since, until), oldest first (for the metrics)."""
        row = DeployRow
        query = (
            select(row)
            .where(row.at >= since, row.at < until)
            .order_by(row.at, row.source, row.deploy_id)
            .limit(READ_MOST)
        )
        with Session(self.engine) as session:
            return [_as_deploy(r) for r in session.scalars(query)]


def _as_deploy(row: DeployRow) -> Deploy:
    return Deploy.model_validate(
        {
            "source": row.source,
            "id": row.deploy_id,
            "service": row.service,
            "version": row.version,
            "environment": row.environment,
            "status": row.status,
            "started_at": row.started_at,
            "finished_at": row.finished_at,
            "rollback_of": row.rollback_of,
            "by": row.by,
            "link": row.link,
        }
    )
