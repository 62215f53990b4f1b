"""Notices posted to Slack: claimed once per (notice, DM or channel), then marked."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from followthrough.storage.database import Database
from followthrough.storage.tables import SlackMessageRow


class SlackMessage(BaseModel):
    dedupe_key: str
    target: str  # the user id or channel it was addressed to
    person: str | None  # None: a team's channel
    kind: str
    postmortem_id: str
    action_item_id: str | None
    status: str  # pending, posted or failed
    channel: str | None = None
    ts: str | None = None
    created_at: AwareDatetime
    posted_at: AwareDatetime | None = None
    error: str | None = None


class SlackStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def claim(self, message: SlackMessage) -> SlackMessage:
        """Record the message as pending unless it is recorded already; the stored one."""
        with self.db.transaction() as session:
            session.execute(
                self.db.insert(SlackMessageRow)
                .values(**message.model_dump())
                .on_conflict_do_nothing(index_elements=["dedupe_key", "target"])
            )
            row = session.get_one(SlackMessageRow, (message.dedupe_key, message.target))
            return SlackMessage.model_validate(row, from_attributes=True)

    def posted(self, dedupe_key: str, target: str, channel: str, ts: str, at: datetime) -> None:
        self._set(dedupe_key, target, status="posted", channel=channel, ts=ts, posted_at=at)

    def failed(self, dedupe_key: str, target: str, error: str) -> None:
        self._set(dedupe_key, target, status="failed", error=error)

    def _set(self, dedupe_key: str, target: str, **values: object) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(SlackMessageRow)
                .where(SlackMessageRow.dedupe_key == dedupe_key, SlackMessageRow.target == target)
                .values(**values)
            )

    def at(self, channel: str, ts: str) -> SlackMessage | None:
        """The notice posted as this message, if it is one of ours."""
        with Session(self.engine) as session:
            row = session.scalars(
                select(SlackMessageRow).where(
                    SlackMessageRow.channel == channel, SlackMessageRow.ts == ts
                )
            ).first()
            return SlackMessage.model_validate(row, from_attributes=True) if row else None

    def messages(self, dedupe_key: str | None = None) -> list[SlackMessage]:
        with Session(self.engine) as session:
            query = select(SlackMessageRow).order_by(SlackMessageRow.created_at)
            if dedupe_key is not None:
                query = query.where(SlackMessageRow.dedupe_key == dedupe_key)
            return [
                SlackMessage.model_validate(row, from_attributes=True)
                for row in session.scalars(query)
            ]
