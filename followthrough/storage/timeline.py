"""Collected timeline events and each source's latest report, per postmortem (migration 0015).

Collecting again never duplicates: an event is found by (postmortem, source, source id) and
updated in place, keeping whether the owner dropped it; a source's report replaces its last one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from followthrough.domain.timeline import CollectedEvent, EventKind, SourceReport
from followthrough.storage.database import Database
from followthrough.storage.tables import SourceReportRow, TimelineEventRow

_UPDATED = ("at", "kind", "author", "text", "link", "collected_at")


class TimelineStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def keep(
        self, postmortem_id: str, report: SourceReport, events: list[CollectedEvent], at: datetime
    ) -> None:
        """One source's collection: its events (added or updated) and its report, together."""
        with self.db.transaction() as session:
            for event in events:
                values = {
                    "postmortem_id": postmortem_id,
                    **event.model_dump(mode="python"),
                    "kind": event.kind.value,
                    "collected_at": at,
                    "dropped": False,
                }
                insert = self.db.insert(TimelineEventRow).values(**values)
                session.execute(
                    insert.on_conflict_do_update(
                        index_elements=["postmortem_id", "source", "source_id"],
                        set_={name: values[name] for name in _UPDATED},
                    )
                )
            row = {"postmortem_id": postmortem_id, **report.model_dump(), "at": at}
            insert = self.db.insert(SourceReportRow).values(**row)
            session.execute(
                insert.on_conflict_do_update(
                    index_elements=["postmortem_id", "source"],
                    set_={name: row[name] for name in ("status", "detail", "events", "at")},
                )
            )

    def events(self, postmortem_id: str) -> list[CollectedEvent]:
        """The postmortem's collected events the owner has not dropped, oldest first."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(TimelineEventRow)
                .where(
                    TimelineEventRow.postmortem_id == postmortem_id,
                    TimelineEventRow.dropped.is_(False),
                )
                .order_by(TimelineEventRow.at, TimelineEventRow.source, TimelineEventRow.source_id)
            )
            return [
                CollectedEvent(
                    source=row.source,
                    source_id=row.source_id,
                    at=row.at,
                    kind=EventKind(row.kind),
                    author=row.author,
                    text=row.text,
                    link=row.link,
                )
                for row in rows
            ]

    def reports(self, postmortem_id: str) -> list[SourceReport]:
        """How each source went the last time, by source name."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(SourceReportRow)
                .where(SourceReportRow.postmortem_id == postmortem_id)
                .order_by(SourceReportRow.source)
            )
            return [
                SourceReport(source=r.source, status=r.status, detail=r.detail, events=r.events)
                for r in rows
            ]

    def drop(self, postmortem_id: str, keys: list[tuple[str, str]]) -> None:
        """The owner does not want these proposed again (collecting again keeps them dropped)."""
        with self.db.transaction() as session:
            for source, source_id in keys:
                session.execute(
                    update(TimelineEventRow)
                    .where(
                        TimelineEventRow.postmortem_id == postmortem_id,
                        TimelineEventRow.source == source,
                        TimelineEventRow.source_id == source_id,
                    )
                    .values(dropped=True)
                )
