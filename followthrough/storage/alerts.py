"""Alert events: every firing and resolved alert kept, once per episode, and pruned in batches."""

from __future__ import annotations

from datetime import datetime

from pydantic import TypeAdapter
from sqlalchemy import and_, delete, func, select, tuple_

from followthrough.domain.alert_quality import AlertEvent
from followthrough.storage.database import Database
from followthrough.storage.tables import AlertEventRow

_EVENTS = TypeAdapter(list[AlertEvent])
_COLUMNS = [column.name for column in AlertEventRow.__table__.columns]


class AlertStore:
    """Alert events by (source, fingerprint, starts_at)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def keep(self, events: list[AlertEvent]) -> int:
        """Keep each episode once; a resolution updates its firing episode, and nothing (a late
        redelivery of the firing notification) turns a resolved one back. The rows written."""
        unique = {(e.source, e.fingerprint, e.starts_at): e for e in events}
        if not unique:
            return 0
        table = AlertEventRow.__table__
        # One Core statement per delivery: this is on every alert's path (bench/alerts.py).
        insert = self.db.insert(table).values([e.model_dump() for e in unique.values()])
        upsert = insert.on_conflict_do_update(
            index_elements=["source", "fingerprint", "starts_at"],
            set_={
                "status": insert.excluded.status,
                "ends_at": insert.excluded.ends_at,
                "received_at": insert.excluded.received_at,
                "acknowledged": insert.excluded.acknowledged,
            },
            where=and_(table.c.status == "firing", insert.excluded.status == "resolved"),
        )
        with self.engine.begin() as connection:
            written = connection.execute(upsert)
        return max(written.rowcount, 0)

    def started_between(self, start: datetime, end: datetime, limit: int) -> list[AlertEvent]:
        """The episodes that started in [start, end), oldest first, at most `limit`."""
        row = AlertEventRow
        query = (
            select(*[getattr(row, name) for name in _COLUMNS])
            .where(row.starts_at >= start, row.starts_at < end)
            .order_by(row.starts_at, row.source, row.fingerprint)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return _EVENTS.validate_python([dict(r) for r in rows])

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(AlertEventRow)).one()[0])

    def prune(self, before: datetime, limit: int) -> int:
        """Forget at most `limit` episodes received before `before`; how many. Each run does at
        most `limit` rows' work, so a year of backlog goes in many small transactions."""
        row = AlertEventRow
        old = (
            select(row.source, row.fingerprint, row.starts_at)
            .where(row.received_at < before)
            .order_by(row.received_at)
            .limit(limit)
        )
        key = tuple_(row.source, row.fingerprint, row.starts_at)
        with self.engine.begin() as connection:
            gone = connection.execute(delete(row).where(key.in_(old)))
        return gone.rowcount
