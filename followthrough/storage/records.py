"""The record of postmortems and action items: their snapshots and audit trail, written
idempotently from activities, and read back by id, by filter or by words.

Every write is keyed so that a retried or replayed activity changes nothing the second time:
audit events by (workflow id, seq), postmortems and action items by id, and a row is only
overwritten by a snapshot with a higher sequence number. A snapshot, its search index entry and
its audit event are written in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from followthrough.domain.access import people_on_item, people_on_postmortem
from followthrough.domain.audit_log import item_closed
from followthrough.domain.incident import MILESTONES
from followthrough.domain.notice import OutboxMessage
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    ActionItem,
    ActionItemChange,
    AuditAction,
    AuditEvent,
    Postmortem,
    PostmortemChange,
)
from followthrough.domain.response import postmortem_milestones
from followthrough.domain.restricted import Reader
from followthrough.storage.audit_log import append
from followthrough.storage.database import Database
from followthrough.storage.restricted import readable
from followthrough.storage.search import (
    RANKED_MOST,
    SearchHit,
    index_action_item,
    index_postmortem,
)
from followthrough.storage.search import documents as search_table
from followthrough.storage.search import search as search_documents
from followthrough.storage.tables import (
    ActionItemRow,
    AuditEventRow,
    IncidentRow,
    OutboxRow,
    PostmortemReaderRow,
    PostmortemRow,
)


class RecordStore:
    """Postmortems, action items and their audit events."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine
        self._upserts: dict[tuple[str, tuple[str, ...]], Any] = {}  # see _upsert_snapshot

    # --- writes (from activities only) ---------------------------------------------------------

    def record_postmortem(self, change: PostmortemChange) -> bool:
        """Store the postmortem snapshot and its audit event; False if already recorded."""
        with self.db.transaction() as session:
            self._write_postmortem(session, change.postmortem)
            return self._append_events(session, [change.event]) == 1

    def record_action_item(self, change: ActionItemChange) -> bool:
        """Store the action item snapshot and its audit event; False if already recorded."""
        with self.db.transaction() as session:
            self._write_action_item(session, change.item)
            return self._append_events(session, [change.event]) == 1

    def record_many(
        self,
        changes: Sequence[PostmortemChange | ActionItemChange],
        outbox: Sequence[OutboxMessage] = (),
    ) -> int:
        """Store many changes in one transaction, as record_postmortem and record_action_item
        would one by one, with the messages they sent (as store.outbox.claim records each, the
        first under a key wins); how many of their audit events were new.

        For bulk writes (`followthrough seed`), where a transaction per change is too slow. Each
        workflow's newest snapshot is written once, which is what writing them all in turn leaves
        behind; postmortems go before their action items.
        """
        postmortems: dict[str, Postmortem] = {}
        items: dict[str, ActionItem] = {}
        for change in changes:
            if isinstance(change, PostmortemChange):
                pm = change.postmortem
                if pm.id not in postmortems or postmortems[pm.id].last_seq < pm.last_seq:
                    postmortems[pm.id] = pm
            else:
                item = change.item
                if item.id not in items or items[item.id].last_seq < item.last_seq:
                    items[item.id] = item
        with self.db.transaction() as session:
            for pm in postmortems.values():
                self._write_postmortem(session, pm)
            restricted = {pm.id: pm.restricted_to for pm in postmortems.values()}
            for item in items.values():
                self._write_action_item(session, item, restricted)
            if outbox:
                session.execute(
                    self.db.insert(OutboxRow).on_conflict_do_nothing(index_elements=["dedupe_key"]),
                    [message.model_dump() for message in outbox],
                )
            return self._append_events(session, [change.event for change in changes])

    def _write_postmortem(self, session: Session, pm: Postmortem) -> None:
        incident = pm.incident
        session.execute(
            self.db.insert(IncidentRow)
            .values(
                source=incident.source,
                external_id=incident.id,
                postmortem_id=pm.id,
                title=incident.title,
                severity=incident.severity,
                resolved_at=incident.resolved_at,
                data=incident.model_dump(mode="json"),
            )
            .on_conflict_do_nothing()
        )
        self._upsert_snapshot(
            session,
            PostmortemRow,
            {
                "id": pm.id,
                "title": incident.title,
                "severity": pm.severity,
                "team": pm.team,
                "owner": pm.owner,
                "state": pm.state.value,
                "opened_at": pm.opened_at,
                "draft_due": pm.draft_due,
                "closed_at": pm.closed_at,
                "last_seq": pm.last_seq,
                "data": pm.model_dump(mode="json"),
                "caused_by_change": pm.draft.caused_by_change if pm.draft else None,
                "restricted_to": pm.restricted_to,
                **_incident_facts(pm),
            },
        )
        restricted_to = pm.restricted_to or session.scalar(
            select(PostmortemRow.restricted_to).where(PostmortemRow.id == pm.id)
        )
        index_postmortem(session.connection(), pm, restricted_to)
        if restricted_to is not None:
            self._add_readers(session, pm.id, people_on_postmortem(pm))

    def _write_action_item(
        self, session: Session, item: ActionItem, restricted: dict[str, str | None] | None = None
    ) -> None:
        """`restricted`: the restriction of postmortems known already (record_many's); any other
        is read from its row, written before its items."""
        if restricted is not None and item.postmortem_id in restricted:
            restricted_to = restricted[item.postmortem_id]
        else:
            restricted_to = session.scalar(
                select(PostmortemRow.restricted_to).where(PostmortemRow.id == item.postmortem_id)
            )
        spec = item.spec
        self._upsert_snapshot(
            session,
            ActionItemRow,
            {
                "id": item.id,
                "postmortem_id": item.postmortem_id,
                "title": spec.title,
                "owner": item.owner,
                "team": item.team,
                "priority": spec.priority.value,
                "due": item.due,
                "state": item.state.value,
                "opened_at": item.opened_at,
                "verified_at": item.verified_at,
                "ticket": item.ticket.key if item.ticket else None,
                "removes_class": spec.removes_class,
                "restricted_to": restricted_to,
                "last_seq": item.last_seq,
                "data": item.model_dump(mode="json"),
            },
        )
        index_action_item(session.connection(), item, restricted_to)
        if restricted_to is not None:
            self._add_readers(session, item.postmortem_id, people_on_item(item))

    def _add_readers(self, session: Session, postmortem_id: str, people: set[str]) -> None:
        """The people on a restricted postmortem, added (never removed: who was on it reads it)."""
        session.execute(
            self.db.insert(PostmortemReaderRow).on_conflict_do_nothing(),
            [{"postmortem_id": postmortem_id, "person": person} for person in sorted(people)],
        )

    def _upsert_snapshot(self, session: Session, row: Any, values: dict[str, Any]) -> None:
        """Insert, or overwrite only with a newer snapshot: order of retries cannot regress it."""
        # A Core statement built once per table and columns, the values bound at execution:
        # building it and the ORM's insert machinery cost more CPU than the round trip (about
        # 3 ms of 5 per action item when `followthrough seed` wrote 50,000 of them).
        key = (row.__tablename__, tuple(values))
        statement = self._upserts.get(key)
        if statement is None:
            table = row.__table__
            insert = self.db.insert(table)
            # A restriction is never lifted by a later snapshot: restrict_existing may have
            # stamped a row whose workflow's own snapshot (opened before the rule) says none.
            set_ = {k: insert.excluded[k] for k in values if k != "id"}
            if "restricted_to" in set_:
                set_["restricted_to"] = func.coalesce(
                    table.c.restricted_to, insert.excluded.restricted_to
                )
            statement = self._upserts[key] = insert.on_conflict_do_update(
                index_elements=["id"],
                set_=set_,
                where=table.c.last_seq < insert.excluded.last_seq,
            )
        session.connection().execute(statement, values)

    def _append_events(self, session: Session, events: Sequence[AuditEvent]) -> int:
        """Append audit events, each once per (workflow id, seq); how many were new. An item
        closed by hand (its risk accepted) goes to the administrative log too, in the same
        transaction: the record activity's retries bring it there exactly once."""
        if not events:
            return 0
        closed = [
            item_closed(e.workflow_id, e.seq, e.actor, e.at, e.detail)
            for e in events
            if e.action == AuditAction.ITEM_RISK_ACCEPTED
        ]
        append(self.db, session, closed)
        # RETURNING tells both databases' answers apart; psycopg reports rowcount -1 here.
        inserted = session.connection().execute(
            self.db.insert(AuditEventRow.__table__)
            .on_conflict_do_nothing(index_elements=["workflow_id", "seq"])
            .returning(AuditEventRow.__table__.c.seq),
            [audit.model_dump() for audit in events],
        )
        return len(inserted.all())

    # --- reads ---------------------------------------------------------------------------------

    def postmortems(
        self, state: str | None = None, *, reader: Reader | None = None
    ) -> list[Postmortem]:
        """`reader`: only those they may read (None: every one, for the system itself)."""
        query = (
            select(PostmortemRow.data, PostmortemRow.restricted_to)
            .where(readable(reader, PostmortemRow.restricted_to, PostmortemRow.id))
            .order_by(PostmortemRow.opened_at.desc())
        )
        if state:
            query = query.where(PostmortemRow.state == state)
        with Session(self.engine) as session:
            return [_postmortem(data, group) for data, group in session.execute(query)]

    def postmortem(self, postmortem_id: str, *, reader: Reader | None = None) -> Postmortem | None:
        """None also when `reader` may not read it: to them it does not exist."""
        with Session(self.engine) as session:
            found = session.execute(
                select(PostmortemRow.data, PostmortemRow.restricted_to).where(
                    PostmortemRow.id == postmortem_id,
                    readable(reader, PostmortemRow.restricted_to, PostmortemRow.id),
                )
            ).first()
        return _postmortem(*found) if found is not None else None

    def restrict_existing(self, policy: Policy) -> int:
        """Stamp the restriction the policy's rules give on the postmortems recorded without one
        (opened before a rule), with their items, search documents and readers; how many. Never
        lifts one. The worker runs it as it starts, so a rule added later applies to them too."""
        if not policy.restricted:
            return 0
        labels = PostmortemRow.data["incident"]["labels"]
        query = select(PostmortemRow.id, PostmortemRow.severity, labels).where(
            PostmortemRow.restricted_to.is_(None)
        )
        with self.db.transaction() as session:
            found = {
                pm_id: group
                for pm_id, severity, tags in session.execute(query)
                if (group := policy.restriction_for(severity, tags or [])) is not None
            }
            for pm_id, group in found.items():
                session.execute(
                    update(PostmortemRow)
                    .where(PostmortemRow.id == pm_id)
                    .values(restricted_to=group)
                )
                session.execute(
                    update(ActionItemRow)
                    .where(ActionItemRow.postmortem_id == pm_id)
                    .values(restricted_to=group)
                )
                session.execute(
                    update(search_table)
                    .where(search_table.c.postmortem_id == pm_id)
                    .values(restricted_to=group)
                )
                pm = self._postmortem_in(session, pm_id)
                people = people_on_postmortem(pm)
                items = session.scalars(
                    select(ActionItemRow.data).where(ActionItemRow.postmortem_id == pm_id)
                )
                for data in items:
                    people |= people_on_item(ActionItem.model_validate(data))
                self._add_readers(session, pm_id, people)
        return len(found)

    def _postmortem_in(self, session: Session, postmortem_id: str) -> Postmortem:
        data = session.scalar(select(PostmortemRow.data).where(PostmortemRow.id == postmortem_id))
        return Postmortem.model_validate(data)

    def postmortem_ids(self, prefix: str = "") -> set[str]:
        """The ids of the recorded postmortems, of those starting with `prefix` if given."""
        query = select(PostmortemRow.id)
        if prefix:
            query = query.where(PostmortemRow.id.startswith(prefix, autoescape=True))
        with Session(self.engine) as session:
            # LIKE ignores case on SQLite; ids do not.
            return {found for found in session.scalars(query) if found.startswith(prefix)}

    def action_items(
        self,
        *,
        postmortem_id: str | None = None,
        state: str | None = None,
        owner: str | None = None,
        team: str | None = None,
        reader: Reader | None = None,
    ) -> list[ActionItem]:
        query = (
            select(ActionItemRow.data)
            .where(readable(reader, ActionItemRow.restricted_to, ActionItemRow.postmortem_id))
            .order_by(ActionItemRow.postmortem_id, ActionItemRow.id)
        )
        for column, value in (
            (ActionItemRow.postmortem_id, postmortem_id),
            (ActionItemRow.state, state),
            (ActionItemRow.owner, owner),
            (ActionItemRow.team, team),
        ):
            if value:
                query = query.where(column == value)
        with Session(self.engine) as session:
            return [ActionItem.model_validate(data) for data in session.scalars(query)]

    def action_item(self, item_id: str, *, reader: Reader | None = None) -> ActionItem | None:
        with Session(self.engine) as session:
            data = session.scalar(
                select(ActionItemRow.data).where(
                    ActionItemRow.id == item_id,
                    readable(reader, ActionItemRow.restricted_to, ActionItemRow.postmortem_id),
                )
            )
        return ActionItem.model_validate(data) if data is not None else None

    def items_with_tickets(self, keys: list[str], state: str | None = None) -> dict[str, str]:
        """Ticket key -> action item id, for the keys that are ours (in `state`, if given)."""
        if not keys:
            return {}
        query = select(ActionItemRow.ticket, ActionItemRow.id).where(ActionItemRow.ticket.in_(keys))
        if state:
            query = query.where(ActionItemRow.state == state)
        with Session(self.engine) as session:
            return {ticket: item_id for ticket, item_id in session.execute(query).all() if ticket}

    def audit_trail(self, postmortem_id: str) -> list[AuditEvent]:
        """Who did what and when, for a postmortem and all its action items."""
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.postmortem_id == postmortem_id)
            .order_by(AuditEventRow.at, AuditEventRow.workflow_id, AuditEventRow.seq)
        )
        with Session(self.engine) as session:
            return [
                AuditEvent(
                    workflow_id=r.workflow_id,
                    postmortem_id=r.postmortem_id,
                    seq=r.seq,
                    at=r.at,
                    actor=r.actor,
                    action=r.action,
                    detail=r.detail,
                )
                for r in session.scalars(query)
            ]

    def version(self) -> int:
        """How many audit events there are: it grows with every change to the record."""
        with self.engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(AuditEventRow)) or 0

    def search(
        self,
        query: str,
        *,
        reader: Reader | None = None,
        kinds: set[str] | None = None,
        limit: int = 50,
        ranked: int = RANKED_MOST,
    ) -> list[SearchHit]:
        """Postmortems, action items and contributing factors matching the words, best first,
        of those `reader` may read (None: of every one, for the system); the best of the
        `ranked` most recently written, when more match.

        ValueError names what is wrong with the query, kinds or limit.
        """
        with self.engine.connect() as connection:
            return search_documents(
                connection, query, reader=reader, kinds=kinds, limit=limit, ranked=ranked
            )

    def resolve(
        self, reference: str, *, action_item: bool = False, reader: Reader | None = None
    ) -> str:
        """A full workflow id from what a person typed: the id itself or a unique tail of it.

        `INC-7` finds `postmortem-generic-INC-7`; `INC-7-item-2` finds its second action item.
        An id the record does not know yet is passed through for Temporal to judge.
        `reader`: among those they may read only (an ambiguity names no other).
        """
        row = ActionItemRow if action_item else PostmortemRow
        pm_id = ActionItemRow.postmortem_id if action_item else PostmortemRow.id
        allowed = readable(reader, row.restricted_to, pm_id)
        with Session(self.engine) as session:
            if session.scalar(select(row.id).where(row.id == reference, allowed)) is not None:
                return reference
            candidates = session.scalars(
                select(row.id).where(row.id.endswith(f"-{reference}", autoescape=True), allowed)
            )
            # LIKE ignores case on SQLite; workflow ids do not.
            matches = [found for found in candidates if found.endswith(f"-{reference}")]
        if len(matches) > 1:
            raise LookupError(f"'{reference}' is ambiguous: {', '.join(sorted(matches))}")
        return matches[0] if matches else reference


def _postmortem(data: dict[str, Any], restricted_to: str | None) -> Postmortem:
    """The snapshot, with its row's restriction (restrict_existing may have stamped one later)."""
    pm = Postmortem.model_validate(data)
    if restricted_to is not None and pm.restricted_to != restricted_to:
        return pm.model_copy(update={"restricted_to": restricted_to})
    return pm


def _incident_facts(pm: Postmortem) -> dict[str, Any]:
    """The columns the dashboard's metrics read (migration 0007 fills old rows the same way).

    The milestones are the postmortem's figures: the incident's until its draft is approved, then
    the reviewed timeline's (migration 0017 recomputes approved rows the same way)."""
    incident = pm.incident
    milestones = postmortem_milestones(pm)
    return {
        "incident_id": incident.id,
        "services": list(incident.services),
        "users_affected": pm.draft.users_affected if pm.draft else None,
        "slo_burns": [
            {
                "slo": review.slo.id,
                "service": review.slo.service,
                "budget_consumed": review.impact.budget_consumed,
                "burn_rate": review.impact.burn_rate,
                # what 100 % of the budget is, for the reports
                "name": review.slo.name,
                "objective": review.slo.objective,
                "period_days": review.slo.period.total_seconds() / 86400,
            }
            for review in pm.slo_review
        ],
        **{f"{name}_at": milestones.at(name) for name in MILESTONES},
    }
