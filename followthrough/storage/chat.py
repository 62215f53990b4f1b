"""The incident channel's transcript, kept with the postmortem: once per message (by its ts),
at most TRANSCRIPT_MESSAGES_MOST per postmortem."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from followthrough.domain.transcript import TRANSCRIPT_MESSAGES_MOST, ChatMessage
from followthrough.storage.database import Database
from followthrough.storage.tables import ChatMessageRow

# What a message may have changed by the time it is collected again.
_CHANGING = ("author", "text", "reactions", "mark", "link")


class ChatStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def keep(self, postmortem_id: str, messages: list[ChatMessage]) -> int:
        """Add the messages not kept yet and update those that are (an edit, a reaction since),
        while the postmortem holds fewer than TRANSCRIPT_MESSAGES_MOST (the latest are kept
        first); how many it holds now. Collecting twice keeps each message once."""
        if len(messages) > TRANSCRIPT_MESSAGES_MOST:
            raise ValueError(
                f"messages: at most {TRANSCRIPT_MESSAGES_MOST} per postmortem, not {len(messages)}"
            )
        now = datetime.now(UTC)
        with self.db.transaction() as session:
            kept = set(
                session.scalars(
                    select(ChatMessageRow.ts).where(ChatMessageRow.postmortem_id == postmortem_id)
                )
            )
            room = TRANSCRIPT_MESSAGES_MOST - len(kept)
            rows = []
            for message in sorted(messages, key=lambda m: (m.at, m.ts), reverse=True):
                if message.ts not in kept:
                    if room <= 0:
                        continue
                    room -= 1
                rows.append(
                    {"postmortem_id": postmortem_id, **message.model_dump(), "kept_at": now}
                )
            if rows:
                statement = self.db.insert(ChatMessageRow)
                session.execute(
                    statement.on_conflict_do_update(
                        index_elements=["postmortem_id", "ts"],
                        set_={name: getattr(statement.excluded, name) for name in _CHANGING},
                    ),
                    rows,
                )
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(ChatMessageRow)
                    .where(ChatMessageRow.postmortem_id == postmortem_id)
                )
                or 0
            )

    def transcript(self, postmortem_id: str) -> list[ChatMessage]:
        """The postmortem's transcript, oldest first."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(ChatMessageRow)
                .where(ChatMessageRow.postmortem_id == postmortem_id)
                .order_by(ChatMessageRow.at, ChatMessageRow.ts)
            )
            return [
                ChatMessage.model_validate(
                    {name: getattr(row, name) for name in ChatMessage.model_fields}
                )
                for row in rows
            ]

    def counts(self, postmortem_id: str) -> tuple[int, int]:
        """How many messages the transcript holds, and how many of them are marked."""
        with Session(self.engine) as session:
            total, marked = session.execute(
                select(func.count(), func.count(ChatMessageRow.mark)).where(
                    ChatMessageRow.postmortem_id == postmortem_id
                )
            ).one()
            return int(total), int(marked)
