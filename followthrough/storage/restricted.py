"""The record's reads as a reader may see them: `Reader.may_read` (domain/restricted.py) said
in SQL, so lists, counts and pages filter in the database instead of after the fact."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from followthrough.domain.restricted import Reader
from followthrough.storage.tables import PostmortemReaderRow

# The same rule for the search's SQL text (storage/search.py); binds :reader and :groups.
READABLE_SQL = (
    "(d.restricted_to IS NULL OR d.restricted_to IN :groups OR EXISTS ("
    "SELECT 1 FROM postmortem_readers AS r "
    "WHERE r.postmortem_id = d.postmortem_id AND r.person = :reader))"
)


def readable(reader: Reader | None, restricted_to: Any, postmortem_id: Any) -> ColumnElement[bool]:
    """Rows whose postmortem `reader` may read: unrestricted, of one of their groups, or one
    they are on. `reader` None: the system itself (activities, reports that count), all rows."""
    if reader is None:
        return true()
    on_it = exists(
        select(PostmortemReaderRow.person).where(
            PostmortemReaderRow.postmortem_id == postmortem_id,
            PostmortemReaderRow.person == reader.person,
        )
    )
    return or_(restricted_to.is_(None), restricted_to.in_(sorted(reader.groups)), on_it)
