"""SLOs imported from files (OpenSLO, Sloth, ...), by id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from followthrough.domain.audit_log import AdminAction
from followthrough.domain.slo import Slo
from followthrough.storage.audit_log import append
from followthrough.storage.database import Database
from followthrough.storage.tables import SloRow


class SloStore:
    """SLOs by id and service."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def save(self, slos: list[Slo], at: datetime, imported: AdminAction | None = None) -> None:
        """Insert or replace SLOs by id (re-importing a file updates its SLOs); a person's
        import is in the audit log (`imported`), in the same transaction."""
        with self.db.transaction() as session:
            if imported is not None:
                append(self.db, session, [imported])
            for slo in slos:
                statement = self.db.insert(SloRow).values(
                    id=slo.id,
                    service=slo.service,
                    source=slo.source,
                    imported_at=at,
                    data=slo.model_dump(mode="json"),
                )
                session.execute(
                    statement.on_conflict_do_update(
                        index_elements=["id"],
                        set_={
                            k: statement.excluded[k]
                            for k in ("service", "source", "imported_at", "data")
                        },
                    )
                )

    def all(self, service: str | None = None) -> list[Slo]:
        query = select(SloRow.data).order_by(SloRow.service, SloRow.id)
        if service:
            query = query.where(SloRow.service == service)
        with Session(self.engine) as session:
            return [Slo.model_validate(data) for data in session.scalars(query)]
