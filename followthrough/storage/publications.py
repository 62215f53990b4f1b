"""Where each postmortem is published: one row per postmortem, rewritten by each publishing."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel
from sqlalchemy import select

from followthrough.domain.publishing import PublishedPage
from followthrough.storage.database import Database
from followthrough.storage.tables import PublicationRow


class Publication(BaseModel):
    postmortem_id: str
    space: str | None
    page_id: str | None
    title: str | None
    url: str | None  # the page people read; None: not published (yet)
    version: int | None
    published_at: AwareDatetime | None
    error: str | None  # why Confluence refused the last attempt, for the operators
    updated_at: AwareDatetime


class PublicationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def published(self, page: PublishedPage, at: datetime) -> None:
        """Record the page (idempotent: the same page recorded again is the same row)."""
        values = {
            "space": page.space,
            "page_id": page.page_id,
            "title": page.title[:255],
            "url": page.url[:2000],
            "version": page.version,
            "published_at": at,
            "error": None,
            "updated_at": at,
        }
        self._upsert(page.postmortem_id, values)

    def refused(self, postmortem_id: str, error: str, at: datetime) -> None:
        """Keep why publishing was refused; a page published before keeps its link."""
        self._upsert(postmortem_id, {"error": error[:4000], "updated_at": at})

    def of(self, postmortem_id: str) -> Publication | None:
        with self.db.transaction() as session:
            row = session.get(PublicationRow, postmortem_id)
            return None if row is None else _publication(row)

    def all(self) -> list[Publication]:
        with self.db.transaction() as session:
            rows = session.scalars(select(PublicationRow).order_by(PublicationRow.postmortem_id))
            return [_publication(row) for row in rows]

    def _upsert(self, postmortem_id: str, values: dict[str, object]) -> None:
        with self.db.transaction() as session:
            session.execute(
                self.db.insert(PublicationRow)
                .values(postmortem_id=postmortem_id, **values)
                .on_conflict_do_update(index_elements=["postmortem_id"], set_=values)
            )


def _publication(row: PublicationRow) -> Publication:
    return Publication(
        postmortem_id=row.postmortem_id,
        space=row.space,
        page_id=row.page_id,
        title=row.title,
        url=row.url,
        version=row.version,
        published_at=row.published_at,
        error=row.error,
        updated_at=row.updated_at,
    )
