"""Webhook deliveries seen, so that a redelivery starts nothing twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from followthrough.storage.database import Database
from followthrough.storage.tables import WebhookDeliveryRow


# eq=False: compared by identity, so two deliveries of one id written together are told apart.
@dataclass(frozen=True, eq=False)
class Delivery:
    """A webhook delivery as received: its source's id for it, and what came of it."""

    source: str
    delivery_id: str
    received_at: datetime
    outcome: str
    workflow_id: str | None


class DeliveryStore:
    """Webhook deliveries by (source, delivery id)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine
        table = WebhookDeliveryRow.__table__
        # A Core insert on the table, not through an ORM session: it is on every webhook's path,
        # and the ORM's bulk-insert machinery cost 0.1-0.3 ms of CPU per delivery on SQLite and
        # 0.5-0.9 ms on PostgreSQL. One statement, compiled once and executed for every row
        # (bench/README.md, "Ingest").
        self._insert = (
            self.db.insert(table)
            .on_conflict_do_nothing(index_elements=["source", "delivery_id"])
            .returning(table.c.source, table.c.delivery_id)
        )

    def record(
        self, source: str, delivery_id: str, at: datetime, outcome: str, workflow_id: str | None
    ) -> bool:
        """Remember a webhook delivery; False if this delivery id was seen before."""
        delivery = Delivery(source, delivery_id, at, outcome, workflow_id)
        return bool(self.record_all([delivery]))

    def record_all(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Remember the deliveries in one transaction; those whose id was not seen before (of
        two with one id, only the first)."""
        first: dict[tuple[str, str], Delivery] = {}
        for delivery in deliveries:
            first.setdefault((delivery.source, delivery.delivery_id), delivery)
        if not first:
            return []
        rows = [
            {
                "source": d.source,
                "delivery_id": d.delivery_id,
                "received_at": d.received_at,
                "outcome": d.outcome,
                "workflow_id": d.workflow_id,
            }
            for d in first.values()
        ]
        with self.engine.begin() as connection:
            new = {(source, key) for source, key in connection.execute(self._insert, rows)}
        return [d for key, d in first.items() if key in new]

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
