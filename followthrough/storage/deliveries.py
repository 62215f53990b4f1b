"""Webhook deliveries seen, so that a redelivery starts nothing twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from followthrough.storage.database import Database
from followthrough.storage.tables import WebhookDeliveryRow


class DeliveryStore:
    """Webhook deliveries by (source, delivery id)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def record(
        self, source: str, delivery_id: str, at: datetime, outcome: str, workflow_id: str | None
    ) -> bool:
        """Remember a webhook delivery; False if this delivery id was seen before."""
        # A Core insert on the table, not through an ORM session: it is on every webhook's path,
        # and the ORM's bulk-insert machinery cost 0.1-0.3 ms of CPU per delivery on SQLite and
        # 0.5-0.9 ms on PostgreSQL (bench/README.md, "Ingest").
        table = WebhookDeliveryRow.__table__
        with self.engine.begin() as connection:
            inserted = connection.execute(
                self.db.insert(table)
                .values(
                    source=source,
                    delivery_id=delivery_id,
                    received_at=at,
                    outcome=outcome,
                    workflow_id=workflow_id,
                )
                .on_conflict_do_nothing(index_elements=["source", "delivery_id"])
                .returning(table.c.delivery_id)
            ).first()
        return inserted is not None

    def forget(self, source: str, *, before: datetime, limit: int) -> int:
        """Forget at most `limit` of the source's deliveries received before `before` (those no
        redelivery can still be told apart by); how many. Run as often as you like: each run
        does at most `limit` rows' work, and what is forgotten stays forgotten."""
        row = WebhookDeliveryRow
        old = (
            select(row.delivery_id)
            .where(row.source == source, row.received_at < before)
            .limit(limit)
        )
        with self.engine.begin() as connection:
            gone = connection.execute(
                delete(row).where(row.source == source, row.delivery_id.in_(old))
            )
        return gone.rowcount
