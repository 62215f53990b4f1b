"""The record's reads as a reader may see them: `Reader.may_read` (domain/restricted.py) said
in SQL, so lists, counts and pages filter in the database instead of after the fact."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import exists, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from followthrough.domain.restricted import RESTRICTED_ITEM_TITLE, RESTRICTED_TITLE, Reader
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


# Counted, not shown: figures (metrics, reports, the alert review) keep a restricted postmortem
# under a stand-in id, the same for its incident and its items within this process, that nobody
# can work back to the id (the key is random and never leaves the process).
_STAND_IN_KEY = secrets.token_bytes(32)


def stand_in_id(postmortem_id: str) -> str:
    digest = hmac.new(_STAND_IN_KEY, postmortem_id.encode(), hashlib.sha256).hexdigest()
    return f"restricted-{digest[:16]}"


def counted_incident(fields: dict[str, Any]) -> dict[str, Any]:
    """An incident's facts as figures may show them: no title, no id, no change named."""
    stand_in = stand_in_id(fields["postmortem_id"])
    return {
        **fields,
        "postmortem_id": stand_in,
        "incident_id": stand_in,
        "title": RESTRICTED_TITLE,
    }


def counted_item(fields: dict[str, Any]) -> dict[str, Any]:
    """An action item's facts as figures may show them: no title, no id, no ticket."""
    stand_in = stand_in_id(fields["postmortem_id"])
    number = fields["id"].rpartition("-item-")[2]
    return {
        **fields,
        "postmortem_id": stand_in,
        "id": f"{stand_in}-item-{number}",
        "title": RESTRICTED_ITEM_TITLE,
        "ticket": None,
    }
