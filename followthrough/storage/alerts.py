"""Alert events: every firing and resolved alert kept, once per episode, and pruned in batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import and_, case, delete, func, or_, select, tuple_

from followthrough.domain.alert_quality import AlertEvent, merge_alert
from followthrough.storage.database import Database
from followthrough.storage.tables import AlertEventRow

_EVENTS = TypeAdapter(list[AlertEvent])
_COLUMNS = [column.name for column in AlertEventRow.__table__.columns]
# Facts a later delivery may add to an episode that lacked them (an Opsgenie acknowledgement
# carries no priority; the alert's creation does).
_FILLED = ("service", "severity", "paged")


class AlertStore:
    """Alert events by (source, fingerprint, starts_at)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine
        self._upsert = self._merging_upsert()

    def keep(self, events: list[AlertEvent]) -> int:
        """Keep each episode once, each later delivery merged in as `merge_alert` merges it:
        resolved is final, acknowledged stays so, a missing fact is filled in. One transaction
        for all of them (the API hands over several deliveries at once, see
        api/group_commit.py). How many episodes the events were."""
        unique: dict[tuple[str, str, datetime], AlertEvent] = {}
        for event in events:
            key = (event.source, event.fingerprint, event.starts_at)
            kept = unique.get(key)
            unique[key] = event if kept is None else merge_alert(kept, event)
        if not unique:
            return 0
        rows = [e.model_dump() for e in unique.values()]
        with self.engine.begin() as connection:
            # One statement, compiled once and executed for every row (executemany): a
            # multi-row VALUES would be compiled afresh for each batch, half a write's CPU.
            connection.execute(self._upsert, rows)
        return len(unique)

    def _merging_upsert(self) -> Any:
        """The insert that merges a later delivery into the stored episode, in SQL."""
        table = AlertEventRow.__table__
        c = table.c
        insert = self.db.insert(table)
        new = insert.excluded
        resolves = and_(c.status == "firing", new.status == "resolved")
        acknowledges = and_(new.acknowledged.is_(True), c.acknowledged.is_not(True))
        fills = [and_(c[name].is_(None), new[name].is_not(None)) for name in _FILLED]
        return insert.on_conflict_do_update(
            index_elements=["source", "fingerprint", "starts_at"],
            set_={
                "status": case((resolves, new.status), else_=c.status),
                "ends_at": case((resolves, new.ends_at), else_=c.ends_at),
                "received_at": new.received_at,
                "acknowledged": case(
                    (new.acknowledged.is_(True), new.acknowledged),
                    else_=func.coalesce(c.acknowledged, new.acknowledged),
                ),
                **{name: func.coalesce(c[name], new[name]) for name in _FILLED},
            },
            # Only a delivery that changes something writes (a redelivery costs no row write).
            where=or_(resolves, acknowledges, *fills),
        )

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
