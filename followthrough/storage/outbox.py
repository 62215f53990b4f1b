"""The outbox: every notice, recorded before it is sent, with what became of it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Row, String, bindparam, cast, select, update
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session

from followthrough.domain.notice import OutboxMessage, OutboxStatus
from followthrough.domain.restricted import Reader
from followthrough.storage.database import Database
from followthrough.storage.restricted import readable
from followthrough.storage.tables import HeldNoticeRow, OutboxRow, PostmortemRow

# A message with one of these has gone out (or is kept for good): it is never sent again.
DELIVERED = (OutboxStatus.SENT.value, OutboxStatus.KEPT.value)


class OutboxStore:
    """Messages by dedupe key: claimed once, then marked sent or failed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine
        # Core statements built once, the values bound at execution: every notice is claimed and
        # marked, and building the ORM's statements cost more CPU than the round trips (about
        # 3 of the 8 ms a burst of escalations spent per notice on these two).
        table = OutboxRow.__table__
        self._insert = db.insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
        self._by_key = select(table).where(table.c.dedupe_key == bindparam("key"))
        self._mark = (
            update(OutboxRow)
            .where(OutboxRow.dedupe_key == bindparam("key"))
            .values(status=bindparam("status"), sent_at=bindparam("at"))
        )

    def claim(self, message: OutboxMessage) -> OutboxMessage:
        """Record a message before sending it; return what is recorded under its key.

        The first rendering wins: a retry finds the row and sends nothing if it was already sent.
        """
        with self.db.transaction() as session:
            connection = session.connection()
            connection.execute(self._insert, message.model_dump())
            return _outbox_message(
                connection.execute(self._by_key, {"key": message.dedupe_key}).one()
            )

    def mark(self, dedupe_key: str, status: OutboxStatus, at: datetime) -> None:
        with self.db.transaction() as session:
            marked = session.connection().execute(
                self._mark, {"key": dedupe_key, "status": status.value, "at": at}
            )
            if marked.rowcount != 1:
                raise NoResultFound(f"no outbox message {dedupe_key!r}")
            if status.value in DELIVERED:  # a digest that went out delivered what it took
                session.execute(
                    update(HeldNoticeRow)
                    .where(HeldNoticeRow.digest_key == dedupe_key)
                    .values(delivered=True)
                )

    def fail(self, message: OutboxMessage, error: str) -> None:
        """Keep a message that will not go out as failed, with the reason (recorded first if it
        never got as far as the outbox, e.g. it could not be rendered)."""
        self.claim(message)
        with self.db.transaction() as session:
            row = session.get_one(OutboxRow, message.dedupe_key)
            row.status = OutboxStatus.FAILED.value
            row.error = error

    def messages(
        self,
        *,
        postmortem_id: str | None = None,
        action_item_id: str | None = None,
        recipient: str | None = None,
        offset: int = 0,
        limit: int | None = None,
        reader: Reader | None = None,
    ) -> list[OutboxMessage]:
        """Messages, newest first; with `recipient` (an address), only those sent to it; with
        `reader`, none about a postmortem they may not read."""
        query = select(OutboxRow).order_by(OutboxRow.created_at.desc(), OutboxRow.dedupe_key)
        if reader is not None:
            hidden = select(PostmortemRow.id).where(
                ~readable(reader, PostmortemRow.restricted_to, PostmortemRow.id)
            )
            query = query.where(OutboxRow.postmortem_id.not_in(hidden))
        if postmortem_id:
            query = query.where(OutboxRow.postmortem_id == postmortem_id)
        if action_item_id:
            query = query.where(OutboxRow.action_item_id == action_item_id)
        if recipient:
            query = query.where(_lists_address(OutboxRow.recipients, recipient))
        if offset:
            query = query.offset(offset)
        if limit:
            query = query.limit(limit)
        with Session(self.engine) as session:
            return [_outbox_message(row) for row in session.scalars(query)]

    def message(self, dedupe_key: str) -> OutboxMessage | None:
        with Session(self.engine) as session:
            row = session.get(OutboxRow, dedupe_key)
            return _outbox_message(row) if row is not None else None


def _lists_address(column: Any, address: str) -> Any:
    """The JSON list of addresses holds this one. Matched on the list's JSON text, quotes
    included, which SQLite and PostgreSQL both store as json.dumps wrote it; portable where the
    two databases' JSON functions are not."""
    needle = json.dumps(address).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return cast(column, String).like(f"%{needle}%", escape="\\")


def _outbox_message(row: OutboxRow | Row[Any]) -> OutboxMessage:
    return OutboxMessage(
        dedupe_key=row.dedupe_key,
        kind=row.kind,
        postmortem_id=row.postmortem_id,
        action_item_id=row.action_item_id,
        recipients=row.recipients,
        subject=row.subject,
        text=row.text,
        html=row.html,
        status=row.status,
        created_at=row.created_at,
        sent_at=row.sent_at,
        error=row.error,
    )
