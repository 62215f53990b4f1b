"""Reads and idempotent writes of the record.

Every write is keyed so that a retried or replayed activity changes nothing the second time:
audit events by (workflow id, seq), postmortems and action items by id, and a row is only
overwritten by a snapshot with a higher sequence number.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import (
    Engine,
    Row,
    String,
    cast,
    create_engine,
    delete,
    event,
    false,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, defer

from followthrough.domain.access import ApiToken, LinkUse
from followthrough.domain.incident import MILESTONES, UnmappedSeverity
from followthrough.domain.metrics import IncidentFacts, ItemFacts
from followthrough.domain.notice import OutboxMessage, OutboxStatus
from followthrough.domain.overview import Escalation
from followthrough.domain.postmortem import (
    RESOLVED_STATES,
    ActionItem,
    ActionItemChange,
    ActionItemState,
    AuditAction,
    AuditEvent,
    Postmortem,
    PostmortemChange,
)
from followthrough.domain.slo import Slo
from followthrough.domain.themes import FactorTags, Theme, theme_window
from followthrough.logging import get_logger
from followthrough.storage.search import SearchHit, index_action_item, index_postmortem
from followthrough.storage.search import search as search_documents
from followthrough.storage.tables import (
    ActionItemRow,
    ApiTokenRow,
    AuditEventRow,
    DashboardSessionRow,
    FactorTagRow,
    IncidentRow,
    OutboxRow,
    PostmortemRow,
    SloRow,
    ThemeRow,
    UsedLinkRow,
    WebhookDeliveryRow,
)

log = get_logger(__name__)

# A token's last use is noted at most this often: who still uses it is a question of days, and a
# write on every request would make each read wait for the database's write lock.
TOKEN_USE_RESOLUTION = timedelta(minutes=5)


def private_file(path: Path) -> None:
    """Create an empty file readable by its owner only (and its directory, 0700, if missing)
    unless it exists; SQLite then gives its -wal and -shm files the same mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = make_url(url).database  # None or ':memory:' in memory; 'file:...' a URI
        if database and database != ":memory:" and not database.startswith("file:"):
            private_file(Path(database))
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets the CLI read while the worker writes; busy_timeout waits out a writer's lock.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@dataclass(frozen=True)
class OpenSession:
    """A live dashboard session: who it is, and the message its next page shows once."""

    person: str
    flash: tuple[str, str] | None  # ("done" or "error", the text)


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._upserts: dict[tuple[str, tuple[str, ...]], Any] = {}  # see _upsert_snapshot

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(select(1))

    def check_writable(self) -> None:
        """Raise unless the database takes a write; the write (deleting no rows) is rolled back,
        so readiness checks leave nothing behind."""
        with self.engine.connect() as connection, connection.begin() as transaction:
            connection.execute(delete(ApiTokenRow).where(false()))
            transaction.rollback()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self.engine) as session, session.begin():
            yield session

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    # --- writes (from activities only) ---------------------------------------------------------

    def record_postmortem(self, change: PostmortemChange) -> bool:
        """Store the postmortem snapshot and its audit event; False if already recorded."""
        with self._session() as session:
            self._write_postmortem(session, change.postmortem)
            return self._append_events(session, [change.event]) == 1

    def record_action_item(self, change: ActionItemChange) -> bool:
        """Store the action item snapshot and its audit event; False if already recorded."""
        with self._session() as session:
            self._write_action_item(session, change.item)
            return self._append_events(session, [change.event]) == 1

    def record_many(
        self,
        changes: Sequence[PostmortemChange | ActionItemChange],
        outbox: Sequence[OutboxMessage] = (),
    ) -> int:
        """Store many changes in one transaction, as record_postmortem and record_action_item
        would one by one, with the messages they sent (as claim_outbox records each, the first
        under a key wins); how many of their audit events were new.

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
        with self._session() as session:
            for pm in postmortems.values():
                self._write_postmortem(session, pm)
            for item in items.values():
                self._write_action_item(session, item)
            if outbox:
                session.execute(
                    self._insert(OutboxRow).on_conflict_do_nothing(index_elements=["dedupe_key"]),
                    [message.model_dump() for message in outbox],
                )
            return self._append_events(session, [change.event for change in changes])

    def _write_postmortem(self, session: Session, pm: Postmortem) -> None:
        incident = pm.incident
        session.execute(
            self._insert(IncidentRow)
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
                **_incident_facts(pm),
            },
        )
        index_postmortem(session.connection(), pm)

    def _write_action_item(self, session: Session, item: ActionItem) -> None:
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
                "last_seq": item.last_seq,
                "data": item.model_dump(mode="json"),
            },
        )
        index_action_item(session.connection(), item)

    def _upsert_snapshot(self, session: Session, row: Any, values: dict[str, Any]) -> None:
        """Insert, or overwrite only with a newer snapshot: order of retries cannot regress it."""
        # A Core statement built once per table and columns, the values bound at execution:
        # building it and the ORM's insert machinery cost more CPU than the round trip (about
        # 3 ms of 5 per action item when `followthrough seed` wrote 50,000 of them).
        key = (row.__tablename__, tuple(values))
        statement = self._upserts.get(key)
        if statement is None:
            table = row.__table__
            insert = self._insert(table)
            statement = self._upserts[key] = insert.on_conflict_do_update(
                index_elements=["id"],
                set_={k: insert.excluded[k] for k in values if k != "id"},
                where=table.c.last_seq < insert.excluded.last_seq,
            )
        session.connection().execute(statement, values)

    def _append_events(self, session: Session, events: Sequence[AuditEvent]) -> int:
        """Append audit events, each once per (workflow id, seq); how many were new."""
        if not events:
            return 0
        # RETURNING tells both databases' answers apart; psycopg reports rowcount -1 here.
        inserted = session.connection().execute(
            self._insert(AuditEventRow.__table__)
            .on_conflict_do_nothing(index_elements=["workflow_id", "seq"])
            .returning(AuditEventRow.__table__.c.seq),
            [audit.model_dump() for audit in events],
        )
        return len(inserted.all())

    def note_factor_tags(self, note: FactorTags) -> list[Theme]:
        """Record an approved postmortem's factor tags; the themes its approval reached.

        Idempotent: a tag is recorded once per postmortem, a theme once per tag and window start,
        and a retry of the same note returns the same themes (those it reached), so the caller's
        notices, keyed per theme, go out once.
        """
        window = timedelta(days=note.window_days)
        reached = []
        with self._session() as session:
            for tag in sorted(set(note.tags)):
                session.execute(
                    self._insert(FactorTagRow)
                    .values(
                        postmortem_id=note.postmortem_id,
                        tag=tag,
                        resolved_at=note.resolved_at,
                        severity=note.severity,
                        team=note.team,
                        services=note.services,
                        recorded_at=note.at,
                    )
                    .on_conflict_do_nothing(index_elements=["postmortem_id", "tag"])
                )
            session.flush()
            for tag in sorted(set(note.tags)):
                theme = self._theme_reached(session, tag, note, window)
                if theme is not None:
                    reached.append(theme)
        return reached

    def _theme_reached(
        self, session: Session, tag: str, note: FactorTags, window: timedelta
    ) -> Theme | None:
        themes = session.scalars(select(ThemeRow).where(ThemeRow.tag == tag)).all()
        at = session.scalar(
            select(FactorTagRow.resolved_at).where(
                FactorTagRow.postmortem_id == note.postmortem_id, FactorTagRow.tag == tag
            )
        )
        assert at is not None
        for row in themes:
            if row.window_start <= at <= row.window_end:  # already part of a theme
                return self._theme(session, row) if row.reached_by == note.postmortem_id else None
        seen = session.execute(
            select(FactorTagRow.postmortem_id, FactorTagRow.resolved_at).where(
                FactorTagRow.tag == tag,
                FactorTagRow.resolved_at >= at - window,
                FactorTagRow.resolved_at <= at + window,
            )
        ).all()
        uncovered = [
            (pm, t)
            for pm, t in seen
            if not any(row.window_start <= t <= row.window_end for row in themes)
        ]
        found = theme_window(uncovered, at, note.threshold, window)
        if found is None:
            return None
        start, _ = found
        session.execute(
            self._insert(ThemeRow)
            .values(
                tag=tag,
                window_start=start,
                window_end=start + window,
                reached_at=note.at,
                reached_by=note.postmortem_id,
            )
            .on_conflict_do_nothing(index_elements=["tag", "window_start"])
        )
        row = session.get_one(ThemeRow, (tag, start))
        return self._theme(session, row) if row.reached_by == note.postmortem_id else None

    def _theme(self, session: Session, row: ThemeRow) -> Theme:
        members = session.scalars(
            select(FactorTagRow.postmortem_id)
            .where(
                FactorTagRow.tag == row.tag,
                FactorTagRow.resolved_at >= row.window_start,
                FactorTagRow.resolved_at <= row.window_end,
            )
            .order_by(FactorTagRow.resolved_at, FactorTagRow.postmortem_id)
        ).all()
        return Theme(
            tag=row.tag,
            window_start=row.window_start,
            window_end=row.window_end,
            reached_at=row.reached_at,
            reached_by=row.reached_by,
            postmortem_ids=list(members),
        )

    def claim_outbox(self, message: OutboxMessage) -> OutboxMessage:
        """Record a message before sending it; return what is recorded under its key.

        The first rendering wins: a retry finds the row and sends nothing if it was already sent.
        """
        with self._session() as session:
            session.execute(
                self._insert(OutboxRow)
                .values(**message.model_dump())
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
            )
            row = session.get_one(OutboxRow, message.dedupe_key)
            return _outbox_message(row)

    def mark_outbox(self, dedupe_key: str, status: OutboxStatus, at: datetime) -> None:
        with self._session() as session:
            row = session.get_one(OutboxRow, dedupe_key)
            row.status = status.value
            row.sent_at = at

    def fail_outbox(self, message: OutboxMessage, error: str) -> None:
        """Keep a message that will not go out as failed, with the reason (recorded first if it
        never got as far as the outbox, e.g. it could not be rendered)."""
        self.claim_outbox(message)
        with self._session() as session:
            row = session.get_one(OutboxRow, message.dedupe_key)
            row.status = OutboxStatus.FAILED.value
            row.error = error

    # --- the HTTP API's own records -------------------------------------------------------------

    def add_api_token(self, token: ApiToken, token_hash: str) -> None:
        with self._session() as session:
            session.add(ApiTokenRow(**token.model_dump(), token_hash=token_hash))

    def person_with_token(self, token_hash: str, at: datetime) -> str | None:
        """Who holds this (unrevoked) token; notes when it was last used, at most every
        TOKEN_USE_RESOLUTION and best effort: a database that takes no writes (a read-only
        replica, a full disk) must not turn every signed-in read into an error."""
        with Session(self.engine) as session:
            row = session.scalar(
                select(ApiTokenRow).where(
                    ApiTokenRow.token_hash == token_hash, ApiTokenRow.revoked_at.is_(None)
                )
            )
            if row is None:
                return None
            person, last_used = row.person, row.last_used_at
        if last_used is None or at - last_used >= TOKEN_USE_RESOLUTION:
            try:
                with self._session() as session:
                    session.execute(
                        update(ApiTokenRow)
                        .where(ApiTokenRow.token_hash == token_hash)
                        .values(last_used_at=at)
                    )
            except SQLAlchemyError as err:
                log.warning("token use not noted", error=str(err).splitlines()[0])
        return person

    def start_session(
        self, id_hash: str, person: str, token_hash: str, at: datetime, expires_at: datetime
    ) -> None:
        """A signed-in browser; sessions that have expired go at the same time."""
        with self._session() as session:
            session.execute(delete(DashboardSessionRow).where(DashboardSessionRow.expires_at <= at))
            session.add(
                DashboardSessionRow(
                    id_hash=id_hash,
                    person=person,
                    token_hash=token_hash,
                    created_at=at,
                    expires_at=expires_at,
                )
            )

    def open_session(self, id_hash: str, at: datetime) -> OpenSession | None:
        """The session if it is live and its API token is not revoked; its one-time message is
        taken, so only this page shows it."""
        with self._session() as session:
            row = session.scalar(
                select(DashboardSessionRow)
                .join(ApiTokenRow, ApiTokenRow.token_hash == DashboardSessionRow.token_hash)
                .where(
                    DashboardSessionRow.id_hash == id_hash,
                    DashboardSessionRow.expires_at > at,
                    ApiTokenRow.revoked_at.is_(None),
                )
            )
            if row is None:
                return None
            flash = None
            if row.flash_kind and row.flash_text is not None:
                flash = (row.flash_kind, row.flash_text)
                row.flash_kind = row.flash_text = None
            return OpenSession(person=row.person, flash=flash)

    def flash_session(self, id_hash: str, kind: str, text: str) -> None:
        """What the session's next page says about the form just posted."""
        with self._session() as session:
            row = session.get(DashboardSessionRow, id_hash)
            if row is not None:
                row.flash_kind, row.flash_text = kind, text

    def end_session(self, id_hash: str) -> None:
        with self._session() as session:
            row = session.get(DashboardSessionRow, id_hash)
            if row is not None:
                session.delete(row)

    def api_tokens(self, person: str | None = None) -> list[ApiToken]:
        query = select(ApiTokenRow).order_by(ApiTokenRow.created_at)
        if person:
            query = query.where(ApiTokenRow.person == person)
        with Session(self.engine) as session:
            return [
                ApiToken.model_validate(row, from_attributes=True) for row in session.scalars(query)
            ]

    def revoke_api_token(self, token_id: str, at: datetime) -> ApiToken | None:
        with self._session() as session:
            row = session.get(ApiTokenRow, token_id)
            if row is None:
                return None
            row.revoked_at = row.revoked_at or at
            return ApiToken.model_validate(row, from_attributes=True)

    def record_delivery(
        self, source: str, delivery_id: str, at: datetime, outcome: str, workflow_id: str | None
    ) -> bool:
        """Remember a webhook delivery; False if this delivery id was seen before."""
        # A Core insert on the table, not through an ORM session: it is on every webhook's path,
        # and the ORM's bulk-insert machinery cost 0.1-0.3 ms of CPU per delivery on SQLite and
        # 0.5-0.9 ms on PostgreSQL (bench/README.md, "Ingest").
        table = WebhookDeliveryRow.__table__
        with self.engine.begin() as connection:
            inserted = connection.execute(
                self._insert(table)
                .values(
                    source=source,
                    delivery_id=delivery_id,
                    received_at=at,
                    outcome=outcome,
                    workflow_id=workflow_id,
                )
                .on_conflict_do_nothing(index_elements=["source", "delivery_id"])
                .returning(table.c.delivery_id)
            ).first()
        return inserted is not None

    def claim_link(self, use: LinkUse) -> LinkUse | None:
        """Claim a one-click link's nonce: None if this call claimed it, else the earlier use."""
        with self._session() as session:
            inserted = session.execute(
                self._insert(UsedLinkRow)
                .values(**use.model_dump())
                .on_conflict_do_nothing(index_elements=["nonce"])
                .returning(UsedLinkRow.nonce)
            ).first()
            if inserted is not None:
                return None
            row = session.get_one(UsedLinkRow, use.nonce)
            return LinkUse.model_validate(row, from_attributes=True)

    def link_use(self, nonce: str) -> LinkUse | None:
        with Session(self.engine) as session:
            row = session.get(UsedLinkRow, nonce)
            return LinkUse.model_validate(row, from_attributes=True) if row else None

    def release_link(self, nonce: str) -> None:
        """Give a claimed link back (its action was refused for what the person typed)."""
        with self._session() as session:
            session.execute(delete(UsedLinkRow).where(UsedLinkRow.nonce == nonce))

    def open_postmortem_counts(self) -> dict[str, int]:
        """Postmortems not yet closed, by state."""
        query = (
            select(PostmortemRow.state, func.count())
            .where(PostmortemRow.state.not_in(("closed", "not_required")))
            .group_by(PostmortemRow.state)
        )
        with Session(self.engine) as session:
            return {state: count for state, count in session.execute(query).all()}

    def overdue_item_counts(self, today: date) -> dict[str, int]:
        """Unresolved action items past their due date, by team."""
        query = (
            select(ActionItemRow.team, func.count())
            .where(
                ActionItemRow.state.not_in(("verified", "risk_accepted")),
                ActionItemRow.due < today,
            )
            .group_by(ActionItemRow.team)
        )
        with Session(self.engine) as session:
            return {team: count for team, count in session.execute(query).all()}

    # --- reads ---------------------------------------------------------------------------------

    def outbox(
        self,
        *,
        postmortem_id: str | None = None,
        action_item_id: str | None = None,
        recipient: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[OutboxMessage]:
        """Messages, newest first; with `recipient` (an address), only those sent to it."""
        query = select(OutboxRow).order_by(OutboxRow.created_at.desc(), OutboxRow.dedupe_key)
        if postmortem_id:
            query = query.where(OutboxRow.postmortem_id == postmortem_id)
        if action_item_id:
            query = query.where(OutboxRow.action_item_id == action_item_id)
        if recipient:
            query = query.where(_lists_address(OutboxRow.recipients, recipient))
        if offset:
            query = query.offset(offset)
        if limit:
            query = query.limit(limit)
        with Session(self.engine) as session:
            return [_outbox_message(row) for row in session.scalars(query)]

    def outbox_message(self, dedupe_key: str) -> OutboxMessage | None:
        with Session(self.engine) as session:
            row = session.get(OutboxRow, dedupe_key)
            return _outbox_message(row) if row is not None else None

    def postmortems(self, state: str | None = None) -> list[Postmortem]:
        query = select(PostmortemRow.data).order_by(PostmortemRow.opened_at.desc())
        if state:
            query = query.where(PostmortemRow.state == state)
        with Session(self.engine) as session:
            return [Postmortem.model_validate(data) for data in session.scalars(query)]

    def postmortem(self, postmortem_id: str) -> Postmortem | None:
        with Session(self.engine) as session:
            data = session.scalar(
                select(PostmortemRow.data).where(PostmortemRow.id == postmortem_id)
            )
        return Postmortem.model_validate(data) if data is not None else None

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
    ) -> list[ActionItem]:
        query = select(ActionItemRow.data).order_by(ActionItemRow.postmortem_id, ActionItemRow.id)
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

    def action_item(self, item_id: str) -> ActionItem | None:
        with Session(self.engine) as session:
            data = session.scalar(select(ActionItemRow.data).where(ActionItemRow.id == item_id))
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

    def themes(self, tag: str | None = None) -> list[Theme]:
        """Recorded recurring themes, oldest first, each with its postmortems (oldest first)."""
        query = select(ThemeRow).order_by(ThemeRow.reached_at, ThemeRow.tag)
        if tag:
            query = query.where(ThemeRow.tag == tag)
        with Session(self.engine) as session:
            return [self._theme(session, row) for row in session.scalars(query).all()]

    def theme(self, tag: str, window_start: datetime) -> Theme | None:
        with Session(self.engine) as session:
            row = session.get(ThemeRow, (tag, window_start))
            return self._theme(session, row) if row is not None else None

    def save_slos(self, slos: list[Slo], at: datetime) -> None:
        """Insert or replace SLOs by id (re-importing a file updates its SLOs)."""
        with self._session() as session:
            for slo in slos:
                statement = self._insert(SloRow).values(
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

    def slos(self, service: str | None = None) -> list[Slo]:
        query = select(SloRow.data).order_by(SloRow.service, SloRow.id)
        if service:
            query = query.where(SloRow.service == service)
        with Session(self.engine) as session:
            return [Slo.model_validate(data) for data in session.scalars(query)]

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

    # --- the dashboard's reads: lean columns, never every snapshot's JSON ------------------------

    def incident_facts(self, start: datetime, end: datetime) -> list[IncidentFacts]:
        """The incidents resolved in [start, end), oldest first, with their factor tags."""
        # Plain columns, and the tags in a query of their own: ORM rows, one per tag, took twice
        # as long for a year of 10,000 postmortems (bench/README.md, "Dashboard").
        within = (PostmortemRow.resolved_at >= start, PostmortemRow.resolved_at < end)
        query = (
            select(*_INCIDENT_FACT_COLUMNS)
            .where(*within)
            .order_by(PostmortemRow.resolved_at, PostmortemRow.id)
        )
        tagged = (
            select(FactorTagRow.postmortem_id, FactorTagRow.tag)
            .join(PostmortemRow, PostmortemRow.id == FactorTagRow.postmortem_id)
            .where(*within)
            .order_by(FactorTagRow.tag)
        )
        tags: dict[str, list[str]] = {}
        with self.engine.connect() as connection:  # Core: the ORM's row loading costs here
            for pm_id, tag in connection.execute(tagged):
                tags.setdefault(pm_id, []).append(tag)
            rows = connection.execute(query).all()
        # One validation of the list, as for the items.
        return _INCIDENT_FACTS.validate_python(
            [_incident_fields(row, tags.get(row.id, [])) for row in rows]
        )

    def record_version(self) -> int:
        """How many audit events there are: it grows with every change to the record."""
        with self.engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(AuditEventRow)) or 0

    def postmortem_facts(
        self,
        *,
        state: str | None = None,
        severity: str | None = None,
        team: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[IncidentFacts], int]:
        """Postmortems, newest incident first, a page of them; and how many match in all."""
        query = select(PostmortemRow)
        for column, value in (
            (PostmortemRow.state, state),
            (PostmortemRow.severity, severity),
            (PostmortemRow.team, team),
        ):
            if value:
                query = query.where(column == value)
        page = query.order_by(PostmortemRow.resolved_at.desc(), PostmortemRow.id).offset(offset)
        if limit is not None:
            page = page.limit(limit)
        # Only the lean columns: the snapshot (data) is the big one and is not needed here.
        page = page.options(defer(PostmortemRow.data))
        with Session(self.engine) as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            found = [_incident_fields(row, []) for row in session.scalars(page)]
        return _INCIDENT_FACTS.validate_python(found), total

    def unmapped_severities(self, postmortem_ids: list[str]) -> dict[str, list[UnmappedSeverity]]:
        """The severities the policy did not map, by postmortem, for those that have any.

        Read from the snapshot's JSON in the database, so a page of postmortems need not load
        their snapshots for it."""
        if not postmortem_ids:
            return {}
        marks = PostmortemRow.data["incident"]["unmapped_severities"]
        query = select(PostmortemRow.id, marks).where(PostmortemRow.id.in_(postmortem_ids))
        with Session(self.engine) as session:
            rows = session.execute(query).all()
        return {pm_id: _UNMAPPED.validate_python(found) for pm_id, found in rows if found}

    def item_facts(
        self,
        *,
        resolved_from: datetime | None = None,
        resolved_before: datetime | None = None,
        team: str | None = None,
        owner: str | None = None,
        state: str | None = None,
        priority: str | None = None,
        overdue_on: date | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[ItemFacts]:
        """Action items, soonest due first; of incidents resolved in a period, if given.

        `overdue_on`: only items still open (not queued, not resolved) due before that day.
        """
        query = select(*_ITEM_FACT_COLUMNS).order_by(ActionItemRow.due, ActionItemRow.id)
        query = _item_filters(
            query, resolved_from, resolved_before, team, owner, state, priority, overdue_on
        )
        query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:  # Core: the ORM's row loading costs here
            result = connection.execute(query)
            names = list(result.keys())
            rows = result.all()
        # One validation of the list: per row it took twice as long for 37,000 items.
        return _ITEM_FACTS.validate_python([dict(zip(names, row, strict=True)) for row in rows])

    def count_items(
        self,
        *,
        team: str | None = None,
        owner: str | None = None,
        state: str | None = None,
        priority: str | None = None,
        overdue_on: date | None = None,
    ) -> int:
        query = select(func.count()).select_from(ActionItemRow)
        query = _item_filters(query, None, None, team, owner, state, priority, overdue_on)
        with Session(self.engine) as session:
            return session.scalar(query) or 0

    def item_counts_by_team(self) -> dict[str, dict[str, int]]:
        """Unresolved action items per team and state: who holds WIP slots, who waits."""
        query = (
            select(ActionItemRow.team, ActionItemRow.state, func.count())
            .where(ActionItemRow.state.not_in(_RESOLVED))
            .group_by(ActionItemRow.team, ActionItemRow.state)
        )
        counts: dict[str, dict[str, int]] = {}
        with Session(self.engine) as session:
            for team, state, count in session.execute(query):
                counts.setdefault(team, {})[state] = count
        return counts

    def escalations_since(self, since: datetime, limit: int = 50) -> list[Escalation]:
        """Ladder steps fired since a moment, newest first, with their action items."""
        query = (
            select(AuditEventRow.at, AuditEventRow.detail, *_ITEM_FACT_COLUMNS)
            .join(ActionItemRow, ActionItemRow.id == AuditEventRow.workflow_id)
            .where(*_escalated_since(since))
            .order_by(AuditEventRow.at.desc(), AuditEventRow.workflow_id)
            .limit(limit)
        )
        with Session(self.engine) as session:
            return [
                Escalation(
                    at=row.at, detail=row.detail, item=ItemFacts.model_validate(row._mapping)
                )
                for row in session.execute(query)
            ]

    def count_escalations_since(self, since: datetime) -> int:
        query = select(func.count()).where(*_escalated_since(since))
        with Session(self.engine) as session:
            return session.scalar(query) or 0

    def search(
        self, query: str, *, kinds: set[str] | None = None, limit: int = 50
    ) -> list[SearchHit]:
        """Postmortems, action items and contributing factors matching the words, best first.

        ValueError names what is wrong with the query, kinds or limit.
        """
        with self.engine.connect() as connection:
            return search_documents(connection, query, kinds=kinds, limit=limit)

    def resolve(self, reference: str, *, action_item: bool = False) -> str:
        """A full workflow id from what a person typed: the id itself or a unique tail of it.

        `INC-7` finds `postmortem-generic-INC-7`; `INC-7-item-2` finds its second action item.
        An id the record does not know yet is passed through for Temporal to judge.
        """
        row = ActionItemRow if action_item else PostmortemRow
        with Session(self.engine) as session:
            if session.scalar(select(row.id).where(row.id == reference)) is not None:
                return reference
            candidates = session.scalars(
                select(row.id).where(row.id.endswith(f"-{reference}", autoescape=True))
            )
            # LIKE ignores case on SQLite; workflow ids do not.
            matches = [found for found in candidates if found.endswith(f"-{reference}")]
        if len(matches) > 1:
            raise LookupError(f"'{reference}' is ambiguous: {', '.join(sorted(matches))}")
        return matches[0] if matches else reference


_RESOLVED = tuple(state.value for state in RESOLVED_STATES)
# What IncidentFacts is made of (_incident_facts_of reads them by name).
_INCIDENT_FACT_COLUMNS = (
    PostmortemRow.id,
    PostmortemRow.incident_id,
    PostmortemRow.title,
    PostmortemRow.severity,
    PostmortemRow.team,
    PostmortemRow.state,
    PostmortemRow.services,
    PostmortemRow.slo_burns,
    PostmortemRow.opened_at,
    *(getattr(PostmortemRow, f"{name}_at") for name in MILESTONES),
)
_ITEM_FACTS = TypeAdapter(list[ItemFacts])
_INCIDENT_FACTS = TypeAdapter(list[IncidentFacts])
_ITEM_FACT_COLUMNS = (
    ActionItemRow.id,
    ActionItemRow.postmortem_id,
    ActionItemRow.title,
    ActionItemRow.team,
    ActionItemRow.owner,
    ActionItemRow.priority,
    ActionItemRow.state,
    ActionItemRow.due,
    ActionItemRow.opened_at,
    ActionItemRow.verified_at,
    ActionItemRow.ticket,
)


def _escalated_since(since: datetime) -> tuple[Any, ...]:
    """Ladder steps that went past the owner (to the manager or the council) since a moment.

    The action item workflow records each step as "<step>: told <names> (<notify>); ...";
    reminders and due notices to the owner are not escalations.
    """
    return (
        AuditEventRow.action == AuditAction.ITEM_ESCALATED,
        AuditEventRow.at >= since,
        AuditEventRow.detail.not_like("%(owner);%"),
    )


def _item_filters(
    query: Any,
    resolved_from: datetime | None,
    resolved_before: datetime | None,
    team: str | None,
    owner: str | None,
    state: str | None,
    priority: str | None,
    overdue_on: date | None,
) -> Any:
    for column, value in (
        (ActionItemRow.team, team),
        (ActionItemRow.owner, owner),
        (ActionItemRow.state, state),
        (ActionItemRow.priority, priority),
    ):
        if value:
            query = query.where(column == value)
    if overdue_on is not None:
        still_open = (*_RESOLVED, ActionItemState.QUEUED.value)  # a queued item's clock waits
        query = query.where(ActionItemRow.state.not_in(still_open), ActionItemRow.due < overdue_on)
    if resolved_from is not None or resolved_before is not None:
        incidents = select(PostmortemRow.id)
        if resolved_from is not None:
            incidents = incidents.where(PostmortemRow.resolved_at >= resolved_from)
        if resolved_before is not None:
            incidents = incidents.where(PostmortemRow.resolved_at < resolved_before)
        query = query.where(ActionItemRow.postmortem_id.in_(incidents))
    return query


def _incident_fields(row: PostmortemRow | Row[Any], factor_tags: list[str]) -> dict[str, Any]:
    """An IncidentFacts' fields from a postmortems row."""
    return {
        "postmortem_id": row.id,
        "incident_id": row.incident_id or row.id,
        "title": row.title,
        "severity": row.severity,
        "team": row.team,
        "state": row.state,
        "services": row.services or [],
        "factor_tags": factor_tags,
        "slo_burns": row.slo_burns or [],
        "resolved_at": row.resolved_at or row.opened_at,
        **{f"{name}_at": getattr(row, f"{name}_at") for name in MILESTONES if name != "resolved"},
    }


def _incident_facts(pm: Postmortem) -> dict[str, Any]:
    """The columns the dashboard's metrics read (migration 0007 fills old rows the same way)."""
    incident = pm.incident
    return {
        "incident_id": incident.id,
        "services": list(incident.services),
        "slo_burns": [
            {
                "slo": review.slo.id,
                "service": review.slo.service,
                "budget_consumed": review.impact.budget_consumed,
                "burn_rate": review.impact.burn_rate,
            }
            for review in pm.slo_review
        ],
        **{f"{name}_at": incident.milestone(name) for name in MILESTONES},
    }


def _lists_address(column: Any, address: str) -> Any:
    """The JSON list of addresses holds this one. Matched on the list's JSON text, quotes
    included, which SQLite and PostgreSQL both store as json.dumps wrote it; portable where the
    two databases' JSON functions are not."""
    needle = json.dumps(address).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return cast(column, String).like(f"%{needle}%", escape="\\")


_UNMAPPED = TypeAdapter(list[UnmappedSeverity])


def _outbox_message(row: OutboxRow) -> OutboxMessage:
    return OutboxMessage(
        dedupe_key=row.dedupe_key,
        kind=row.kind,
        postmortem_id=row.postmortem_id,
        action_item_id=row.action_item_id,
        recipients=row.recipients,
        subject=row.subject,
        text=row.text,
        html=row.html,
        status=row.status,
        created_at=row.created_at,
        sent_at=row.sent_at,
        error=row.error,
    )
