"""The administrative audit log: appended to, read newest first; nothing updates or deletes it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from followthrough.domain.audit_log import (
    AdminAction,
    AdminActionKind,
    policy_changed,
    recorded_policy,
)
from followthrough.domain.limits import AUDIT_PAGE_MOST
from followthrough.storage.database import Database
from followthrough.storage.tables import AdminActionRow


def append(db: Database, session: Session, entries: list[AdminAction]) -> None:
    """Add entries inside the caller's transaction (the change they record commits with them);
    an entry whose key is already there is left as it was."""
    if entries:
        session.connection().execute(
            db.insert(AdminActionRow.__table__).on_conflict_do_nothing(index_elements=["key"]),
            [entry.model_dump() for entry in entries],
        )


class AuditLogStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def record(self, entry: AdminAction) -> None:
        with self.db.transaction() as session:
            append(self.db, session, [entry])

    def page(self, limit: int, after: tuple[datetime, str] | None = None) -> list[AdminAction]:
        """Newest first; `after` is the (at, key) of the last entry of the page before."""
        query = select(AdminActionRow).order_by(AdminActionRow.at.desc(), AdminActionRow.key.desc())
        if after is not None:
            at, key = after
            query = query.where(
                or_(
                    AdminActionRow.at < at,
                    and_(AdminActionRow.at == at, AdminActionRow.key < key),
                )
            )
        with Session(self.engine) as session:
            rows = session.scalars(query.limit(max(1, min(limit, AUDIT_PAGE_MOST))))
            return [AdminAction.model_validate(row, from_attributes=True) for row in rows]

    def note_policy(self, digest: str, source: str, by: str, at: datetime) -> AdminAction | None:
        """Record the policy's content hash if it differs from the last recorded: the entry, or
        None when it is the same policy."""
        with self.db.transaction() as session:
            row = session.scalar(
                select(AdminActionRow)
                .where(AdminActionRow.kind == AdminActionKind.POLICY_CHANGED.value)
                .order_by(AdminActionRow.at.desc(), AdminActionRow.key.desc())
                .limit(1)
            )
            previous = AdminAction.model_validate(row, from_attributes=True) if row else None
            if recorded_policy(previous) == digest:
                return None
            entry = policy_changed(previous, digest, source, by, at)
            append(self.db, session, [entry])
            return entry
