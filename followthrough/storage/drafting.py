"""Drafts saved as they are written, and what reviewers said and saw (the dashboard's editor).

A save names the version it was based on; if someone saved since, it is refused with the version
that is there now (StaleDraft), never written over. Only the last KEPT_VERSIONS saves of a
postmortem are kept, and comments are capped per postmortem, so neither grows without bound.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from followthrough.storage.database import Database
from followthrough.storage.draft_tables import DraftSaveRow, ReviewCommentRow, ReviewSeenRow

KEPT_VERSIONS = 50
COMMENTS_PER_POSTMORTEM = 500


class SavedDraft(BaseModel):
    postmortem_id: str
    version: int
    saved_by: str
    saved_at: datetime
    submitted_version: int
    draft: dict[str, Any]


class Comment(BaseModel):
    draft_version: int
    section: str
    author: str
    text: str
    at: datetime


class Seen(BaseModel):
    draft_version: int
    draft: dict[str, Any]


class StaleDraft(Exception):
    """Someone saved a later version than the one this save was based on."""

    def __init__(self, latest: SavedDraft | None) -> None:
        super().__init__("a later version of this draft was saved")
        self.latest = latest


class TooManyComments(Exception):
    pass


class DraftStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def latest(self, postmortem_id: str) -> SavedDraft | None:
        with self.db.transaction() as session:
            row = session.scalar(
                select(DraftSaveRow)
                .where(DraftSaveRow.postmortem_id == postmortem_id)
                .order_by(DraftSaveRow.version.desc())
                .limit(1)
            )
            return SavedDraft.model_validate(row, from_attributes=True) if row else None

    def version(self, postmortem_id: str, version: int) -> SavedDraft | None:
        with self.db.transaction() as session:
            row = session.get(DraftSaveRow, (postmortem_id, version))
            return SavedDraft.model_validate(row, from_attributes=True) if row else None

    def save(
        self,
        postmortem_id: str,
        based_on: int,
        draft: dict[str, Any],
        by: str,
        at: datetime,
        submitted_version: int,
    ) -> SavedDraft:
        """Version based_on + 1, unless based_on is not the latest (StaleDraft)."""
        saved = SavedDraft(
            postmortem_id=postmortem_id,
            version=based_on + 1,
            saved_by=by,
            saved_at=at,
            submitted_version=submitted_version,
            draft=draft,
        )
        try:
            with self.db.transaction() as session:
                latest = session.scalar(
                    select(func.max(DraftSaveRow.version)).where(
                        DraftSaveRow.postmortem_id == postmortem_id
                    )
                )
                if (latest or 0) != based_on:
                    raise StaleDraft(None)
                session.add(DraftSaveRow(**saved.model_dump()))
                session.flush()  # two saves of the same version: the second fails on the key
                session.execute(
                    delete(DraftSaveRow).where(
                        DraftSaveRow.postmortem_id == postmortem_id,
                        DraftSaveRow.version <= saved.version - KEPT_VERSIONS,
                    )
                )
        except (StaleDraft, IntegrityError):
            raise StaleDraft(self.latest(postmortem_id)) from None
        return saved

    def comments(self, postmortem_id: str) -> list[Comment]:
        with self.db.transaction() as session:
            rows = session.scalars(
                select(ReviewCommentRow)
                .where(ReviewCommentRow.postmortem_id == postmortem_id)
                .order_by(ReviewCommentRow.id)
            )
            return [Comment.model_validate(row, from_attributes=True) for row in rows]

    def comment(self, postmortem_id: str, comment: Comment) -> None:
        with self.db.transaction() as session:
            count = session.scalar(
                select(func.count()).where(ReviewCommentRow.postmortem_id == postmortem_id)
            )
            if (count or 0) >= COMMENTS_PER_POSTMORTEM:
                raise TooManyComments(f"at most {COMMENTS_PER_POSTMORTEM} comments")
            session.add(ReviewCommentRow(postmortem_id=postmortem_id, **comment.model_dump()))

    def seen(self, postmortem_id: str, reviewer: str) -> Seen | None:
        with self.db.transaction() as session:
            row = session.get(ReviewSeenRow, (postmortem_id, reviewer))
            return Seen.model_validate(row, from_attributes=True) if row else None

    def mark_seen(self, postmortem_id: str, reviewer: str, seen: Seen) -> None:
        with self.db.transaction() as session:
            row = session.get(ReviewSeenRow, (postmortem_id, reviewer))
            if row is None:
                session.add(
                    ReviewSeenRow(
                        postmortem_id=postmortem_id, reviewer=reviewer, **seen.model_dump()
                    )
                )
            else:
                row.draft_version, row.draft = seen.draft_version, seen.draft
