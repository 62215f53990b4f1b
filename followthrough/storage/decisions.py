"""Council decisions and the freezes they hold: written only by the decision workflow's record
activity (an upsert of the snapshot, so a retried write changes nothing), read by the API, the
dashboard and `followthrough freeze check`."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from followthrough.domain.decisions import (
    Choice,
    Decision,
    DecisionState,
    Freeze,
    as_seen,
    freeze_as_seen,
    freezes_of,
)
from followthrough.domain.restricted import Reader
from followthrough.storage.database import Database
from followthrough.storage.restricted import readable
from followthrough.storage.tables import DecisionRow, FreezeRow, PostmortemRow


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

    def get(self, decision_id: str, *, reader: Reader | None = None) -> Decision | None:
        """`reader`: as they may see it (domain/decisions.py as_seen); None also when not."""
        with Session(self.engine) as session:
            data = session.scalar(select(DecisionRow.data).where(DecisionRow.id == decision_id))
        if data is None:
            return None
        return self._as_seen([Decision.model_validate(data)], reader).get(decision_id)

    def all(
        self, state: DecisionState | None = None, limit: int = 200, *, reader: Reader | None = None
    ) -> list[Decision]:
        """Newest first; `reader`: those they may see, as they may see them."""
        query = select(DecisionRow.data).order_by(DecisionRow.opened_at.desc(), DecisionRow.id)
        if state is not None:
            query = query.where(DecisionRow.state == state.value)
        with Session(self.engine) as session:
            rows = session.scalars(query.limit(limit)).all()
        found = [Decision.model_validate(data) for data in rows]
        seen = self._as_seen(found, reader)
        return [seen[d.id] for d in found if d.id in seen]

    def _as_seen(self, found: list[Decision], reader: Reader | None) -> dict[str, Decision]:
        ids = {pm_id for d in found for pm_id in d.opening.postmortem_ids}
        hidden: set[str] = set()
        if reader is not None and ids:
            query = select(PostmortemRow.id).where(
                PostmortemRow.id.in_(sorted(ids)),
                ~readable(reader, PostmortemRow.restricted_to, PostmortemRow.id),
            )
            with Session(self.engine) as session:
                hidden = set(session.scalars(query))
        return {d.id: seen for d in found if (seen := as_seen(d, hidden)) is not None}

    def freezes(
        self, service: str | None = None, *, active: bool = True, reader: Reader | None = None
    ) -> list[Freeze]:
        """A service's (or every service's) freezes, active ones only unless `active` is False;
        the oldest first; `reader`: a hidden decision's freezes without its id or reason."""
        found = self._freezes(service, active)
        if reader is None or not found:
            return found
        decisions = [d for f in {f.decision_id for f in found} if (d := self.get(f)) is not None]
        seen = self._as_seen(decisions, reader)
        hidden = {d.id for d in decisions if d.id not in seen}
        return [freeze_as_seen(f, hidden) for f in found]

    def _freezes(self, service: str | None, active: bool) -> list[Freeze]:
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
