"""One-click links: each link's nonce is spent once."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from followthrough.domain.access import LinkUse
from followthrough.storage.database import Database
from followthrough.storage.tables import UsedLinkRow


class LinkStore:
    """The nonces of one-click links that were used."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def claim(self, use: LinkUse) -> LinkUse | None:
        """Claim a one-click link's nonce: None if this call claimed it, else the earlier use."""
        with self.db.transaction() as session:
            inserted = session.execute(
                self.db.insert(UsedLinkRow)
                .values(**use.model_dump())
                .on_conflict_do_nothing(index_elements=["nonce"])
                .returning(UsedLinkRow.nonce)
            ).first()
            if inserted is not None:
                return None
            row = session.get_one(UsedLinkRow, use.nonce)
            return LinkUse.model_validate(row, from_attributes=True)

    def use(self, nonce: str) -> LinkUse | None:
        with Session(self.engine) as session:
            row = session.get(UsedLinkRow, nonce)
            return LinkUse.model_validate(row, from_attributes=True) if row else None

    def release(self, nonce: str) -> None:
        """Give a claimed link back (its action was refused for what the person typed)."""
        with self.db.transaction() as session:
            session.execute(delete(UsedLinkRow).where(UsedLinkRow.nonce == nonce))
