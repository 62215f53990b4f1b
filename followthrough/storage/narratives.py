"""The council's quarterly narratives: one row a quarter, saved only against the version read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from followthrough.domain.narrative import CouncilNarrative, NarrativeEdit
from followthrough.storage.database import Database
from followthrough.storage.tables import CouncilNarrativeRow


class NarrativeStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def read(self, quarter: str) -> CouncilNarrative:
        """The quarter's narrative; version 0 and no text when none was written."""
        with Session(self.engine) as session:
            row = session.get(CouncilNarrativeRow, quarter)
            if row is None:
                return CouncilNarrative(quarter=quarter)
            return CouncilNarrative(
                quarter=row.quarter,
                text=row.text,
                version=row.version,
                written_by=row.written_by,
                written_at=row.written_at,
            )

    def save(self, edit: NarrativeEdit, at: datetime) -> CouncilNarrative | None:
        """Save as the next version if `edit.version` is still the latest; None when another
        save came first (the caller reads it again to say whose). One statement decides, so two
        saves against the same version cannot both win (RETURNING: psycopg's rowcount is -1)."""
        values = {"text": edit.text, "written_by": edit.by, "written_at": at}
        with self.db.transaction() as session:
            if edit.version == 0:
                inserted = session.execute(
                    self.db.insert(CouncilNarrativeRow)
                    .values(quarter=edit.quarter, version=1, **values)
                    .on_conflict_do_nothing(index_elements=["quarter"])
                    .returning(CouncilNarrativeRow.version)
                )
                won = len(inserted.all()) == 1
            else:
                updated = session.execute(
                    update(CouncilNarrativeRow)
                    .where(CouncilNarrativeRow.quarter == edit.quarter)
                    .where(CouncilNarrativeRow.version == edit.version)
                    .values(version=edit.version + 1, **values)
                    .returning(CouncilNarrativeRow.version)
                )
                won = len(updated.all()) == 1
        if not won:
            return None
        return CouncilNarrative(
            quarter=edit.quarter,
            version=edit.version + 1,
            text=edit.text,
            written_by=edit.by,
            written_at=at,
        )
