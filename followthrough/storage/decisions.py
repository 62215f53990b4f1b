"""Council decisions and the freezes they hold: written only by the decision workflow's record
activity (an upsert of the snapshot, so a retried write changes nothing), read by the API, the
dashboard and `followthrough freeze check`."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from followthrough.domain.decisions import Choice, Decision, DecisionState, Freeze, freezes_of
from followthrough.storage.database import Database
from followthrough.storage.tables import DecisionRow, FreezeRow


class DecisionStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def save(self, decision: Decision) -> None:
        """Store the snapshot; a decided pause or freeze adds its services' freezes (once), and
        lifting it marks them lifted. One transaction: the endpoint never sees one without the
        other."""
        values = {
            "trigger": decision.opening.trigger.value,
            "state": decision.state.value,
            "subject": decision.opening.subject,
            "opened_at": decision.opening.opened_at,
            "decided_at": decision.decided_at,
            "data": decision.model_dump(mode="json"),
        }
        with self.db.transaction() as session:
            statement = self.db.insert(DecisionRow).values(id=decision.id, **values)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["id"], set_={k: statement.excluded[k] for k in values}
                )
            )
            for freeze in freezes_of(decision):
                session.execute(
                    self.db.insert(FreezeRow)
                    .values(
                        decision_id=freeze.decision_id,
                        service=freeze.service,
                        kind=freeze.kind.value,
                        decided_by=freeze.decided_by,
                        decided_at=freeze.at,
                        reason=freeze.reason,
                        lifts_when=freeze.lifts_when,
                        lifted_at=None,
                    )
                    .on_conflict_do_nothing(index_elements=["decision_id", "service"])
                )
            if decision.state is DecisionState.LIFTED:
                session.execute(
                    update(FreezeRow)
                    .where(FreezeRow.decision_id == decision.id)
                    .where(FreezeRow.lifted_at.is_(None))
                    .values(lifted_at=decision.lifted_at)
                )

    def get(self, decision_id: str) -> Decision | None:
        with Session(self.engine) as session:
            data = session.scalar(select(DecisionRow.data).where(DecisionRow.id == decision_id))
        return Decision.model_validate(data) if data is not None else None

    def all(self, state: DecisionState | None = None, limit: int = 200) -> list[Decision]:
        """Newest first."""
        query = select(DecisionRow.data).order_by(DecisionRow.opened_at.desc(), DecisionRow.id)
        if state is not None:
            query = query.where(DecisionRow.state == state.value)
        with Session(self.engine) as session:
            rows = session.scalars(query.limit(limit)).all()
        return [Decision.model_validate(data) for data in rows]

    def freezes(self, service: str | None = None, *, active: bool = True) -> list[Freeze]:
        """A service's (or every service's) freezes, active ones only unless `active` is False;
        the oldest first."""
        query = select(FreezeRow).order_by(FreezeRow.decided_at, FreezeRow.decision_id)
        if service is not None:
            query = query.where(FreezeRow.service == service)
        if active:
            query = query.where(FreezeRow.lifted_at.is_(None))
        with Session(self.engine) as session:
            rows = session.scalars(query).all()
            return [
                Freeze(
                    kind=Choice(row.kind),
                    service=row.service,
                    decided_by=row.decided_by,
                    at=row.decided_at,
                    reason=row.reason,
                    lifts_when=row.lifts_when,
                    decision_id=row.decision_id,
                    lifted_at=row.lifted_at,
                )
                for row in rows
            ]
