"""The dashboard's saved drafts and reviewers' comments (migration 0012)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from followthrough.storage.tables import Base


class DraftSaveRow(Base):
    """One saved version of a postmortem's draft; a save names the version it was based on."""

    __tablename__ = "draft_saves"

    postmortem_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    saved_by: Mapped[str] = mapped_column(String(128))
    saved_at: Mapped[datetime]
    # The postmortem's submitted draft version when this was saved: a later submission (from the
    # CLI or the API) is newer than this save.
    submitted_version: Mapped[int]
    draft: Mapped[dict[str, Any]]


class ReviewCommentRow(Base):
    """A comment on one section of the draft version under review."""

    __tablename__ = "review_comments"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    postmortem_id: Mapped[str] = mapped_column(String(200), index=True)
    draft_version: Mapped[int]
    section: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class ReviewSeenRow(Base):
    """The submitted draft a reviewer last saw, to show them what changed since."""

    __tablename__ = "review_seen"

    postmortem_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    reviewer: Mapped[str] = mapped_column(String(128), primary_key=True)
    draft_version: Mapped[int]
    draft: Mapped[dict[str, Any]]
