"""The dashboard's and the metrics' reads of the record: lean columns, never every snapshot's
JSON (bench/README.md, "Dashboard", measured why)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, Row, and_, func, or_, select
from sqlalchemy.orm import Session, defer

from followthrough.domain.backlog import OpenItem
from followthrough.domain.calendar import BusinessCalendar
from followthrough.domain.changes import IncidentChange
from followthrough.domain.impact import BudgetBurn, ImpactFacts, most_recurring
from followthrough.domain.incident import MILESTONES, UnmappedSeverity
from followthrough.domain.metrics import IncidentFacts, ItemFacts, PeriodSums, SloBurn
from followthrough.domain.overview import OPEN_POSTMORTEM_STATES, Escalation
from followthrough.domain.postmortem import RESOLVED_STATES, ActionItemState, AuditAction
from followthrough.domain.restricted import Reader
from followthrough.storage.database import Database
from followthrough.storage.figures import period_sums
from followthrough.storage.restricted import counted_incident, counted_item, readable
from followthrough.storage.tables import ActionItemRow, AuditEventRow, FactorTagRow, PostmortemRow


class FactStore:
    """Facts and counts about incidents, action items and escalations."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def incidents(self, start: datetime, end: datetime) -> list[IncidentFacts]:
        """The incidents resolved in [start, end), oldest first, with their factor tags; for
        figures, so a restricted one is counted, not shown (storage/restricted.py)."""
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
        found = []
        for row in rows:
            fields = _incident_fields(row, tags.get(row.id, []))
            found.append(counted_incident(fields) if row.restricted_to else fields)
        return _INCIDENT_FACTS.validate_python(found)

    def period_sums(
        self, start: datetime, end: datetime, *, as_of: datetime, calendar: BusinessCalendar
    ) -> PeriodSums:
        """The reliability figures of the incidents resolved in [start, end) and their action
        items, added up in the database (storage/figures.py)."""
        with self.engine.connect() as connection:
            return period_sums(connection, start, end, as_of=as_of, calendar=calendar)

    def incident_changes(self, start: datetime, end: datetime) -> list[IncidentChange]:
        """The incidents resolved in [start, end) as the change metrics see them."""
        query = select(
            PostmortemRow.services,
            PostmortemRow.started_at,
            PostmortemRow.detected_at,
            PostmortemRow.resolved_at,
            PostmortemRow.opened_at,
            PostmortemRow.caused_by_change,
        ).where(PostmortemRow.resolved_at >= start, PostmortemRow.resolved_at < end)
        query = query.order_by(PostmortemRow.resolved_at, PostmortemRow.id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            IncidentChange(
                services=row.services or [],
                started_at=row.started_at or row.detected_at or row.resolved_at or row.opened_at,
                resolved_at=row.resolved_at or row.opened_at,
                caused_by_change=row.caused_by_change,
            )
            for row in rows
        ]

    def postmortems(
        self,
        *,
        state: str | None = None,
        severity: str | None = None,
        team: str | None = None,
        offset: int = 0,
        limit: int | None = None,
        reader: Reader | None = None,
    ) -> tuple[list[IncidentFacts], int]:
        """Postmortems, newest incident first, a page of them; and how many match in all."""
        query = select(PostmortemRow).where(
            readable(reader, PostmortemRow.restricted_to, PostmortemRow.id)
        )
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

    def items(
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
        reader: Reader | None = None,
        counted: bool = False,
    ) -> list[ItemFacts]:
        """Action items, soonest due first; of incidents resolved in a period, if given.

        `overdue_on`: only items still open (not queued, not resolved) due before that day.
        `reader`: only those they may read. `counted`: for figures, each of a restricted
        postmortem counted, not shown (storage/restricted.py).
        """
        query = select(*_ITEM_FACT_COLUMNS, ActionItemRow.restricted_to).order_by(
            ActionItemRow.due, ActionItemRow.id
        )
        query = _item_filters(
            query, resolved_from, resolved_before, team, owner, state, priority, overdue_on, reader
        )
        query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:  # Core: the ORM's row loading costs here
            result = connection.execute(query)
            names = list(result.keys())
            rows = result.all()
        found = []
        for row in rows:
            fields = dict(zip(names, row, strict=True))
            restricted = fields.pop("restricted_to")
            found.append(counted_item(fields) if counted and restricted else fields)
        # One validation of the list: per row it took twice as long for 37,000 items.
        return _ITEM_FACTS.validate_python(found)

    def count_items(
        self,
        *,
        team: str | None = None,
        owner: str | None = None,
        state: str | None = None,
        priority: str | None = None,
        overdue_on: date | None = None,
        reader: Reader | None = None,
    ) -> int:
        query = select(func.count()).select_from(ActionItemRow)
        query = _item_filters(query, None, None, team, owner, state, priority, overdue_on, reader)
        with Session(self.engine) as session:
            return session.scalar(query) or 0

    def most_overdue(
        self,
        today: date,
        *,
        most: int,
        tied_through: Callable[[date], date],
        reader: Reader | None = None,
    ) -> tuple[dict[str, int], list[ItemFacts]]:
        """Overdue action items (as `items(overdue_on=today)`) by team: how many, and each team's
        `most` first by due date, priority and id, with every later one due on or before
        `tied_through(the last one's due)` (as late as it, escalation.last_due_as_late says).

        Two queries whose rows do not grow with the record, instead of every overdue item: the
        overview took four times as long at 10,000 postmortems (bench/README.md, "Dashboard")."""
        by_team = ActionItemRow.team
        ranked = select(
            *_ITEM_FACT_COLUMNS,
            func.row_number()
            .over(
                partition_by=by_team,
                order_by=(ActionItemRow.due, ActionItemRow.priority, ActionItemRow.id),
            )
            .label("rank"),
            func.count().over(partition_by=by_team).label("in_team"),
        )
        first = _item_filters(ranked, None, None, None, None, None, None, today, reader).subquery()
        query = select(*(first.c[c.key] for c in _ITEM_FACT_COLUMNS), first.c.in_team).where(
            first.c.rank <= most
        )
        counts: dict[str, int] = {}
        found: list[dict[str, Any]] = []
        last: dict[str, date] = {}  # the last one read of a team with more
        with self.engine.connect() as connection:  # Core: the ORM's row loading costs here
            for row in connection.execute(query).mappings():
                fields = dict(row)
                counts[fields["team"]] = fields.pop("in_team")
                found.append(fields)
                last[fields["team"]] = max(fields["due"], last.get(fields["team"], fields["due"]))
            tied = [
                (team, due, tied_through(due))
                for team, due in sorted(last.items())
                if counts[team] > most
            ]
            spans = [
                and_(ActionItemRow.team == team, ActionItemRow.due > due, ActionItemRow.due <= end)
                for team, due, end in tied
                if end > due
            ]
            if spans:
                more = select(*_ITEM_FACT_COLUMNS).where(or_(*spans))
                more = _item_filters(more, None, None, None, None, None, None, today, reader)
                found += [dict(row) for row in connection.execute(more).mappings()]
        return counts, _ITEM_FACTS.validate_python(found)

    def item_counts_by_team(self) -> dict[str, dict[str, int]]:
        """Unresolved action items per team and state: who holds WIP slots, who waits."""
        query = (
            select(ActionItemRow.team, ActionItemRow.state, func.count())
            .where(ActionItemRow.state.in_(_UNRESOLVED))
            .group_by(ActionItemRow.team, ActionItemRow.state)
        )
        counts: dict[str, dict[str, int]] = {}
        with Session(self.engine) as session:
            for team, state, count in session.execute(query):
                counts.setdefault(team, {})[state] = count
        return counts

    def escalations_since(
        self, since: datetime, limit: int = 50, *, reader: Reader | None = None
    ) -> list[Escalation]:
        """Ladder steps fired since a moment, newest first, with their action items."""
        query = (
            select(AuditEventRow.at, AuditEventRow.detail, *_ITEM_FACT_COLUMNS)
            .join(ActionItemRow, ActionItemRow.id == AuditEventRow.workflow_id)
            .where(*_escalated_since(since))
            .where(readable(reader, ActionItemRow.restricted_to, ActionItemRow.postmortem_id))
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

    def open_items(
        self,
        *,
        window: timedelta,
        most: int,
        postmortem_id: str | None = None,
        reader: Reader | None = None,
    ) -> tuple[list[OpenItem], bool]:
        """Unresolved action items with the facts their impact score stands on, soonest due
        first, at most `most` of them; and whether more were left unread.

        Three queries whatever the count (items with their incidents; the incidents' tags; the
        approved postmortems sharing those tags near them), the JSON read by path in the database.
        `postmortem_id`: that postmortem's items only (resolved or not), for its page.
        """
        query = (
            select(
                *_ITEM_FACT_COLUMNS,
                ActionItemRow.removes_class,
                PostmortemRow.title.label("postmortem_title"),
                PostmortemRow.services,
                *_IMPACT_COLUMNS[1:],
            )
            .join(PostmortemRow, PostmortemRow.id == ActionItemRow.postmortem_id)
            .where(readable(reader, PostmortemRow.restricted_to, PostmortemRow.id))
            .order_by(ActionItemRow.due, ActionItemRow.id)
        )
        if postmortem_id is not None:
            query = query.where(ActionItemRow.postmortem_id == postmortem_id)
        else:
            query = query.where(ActionItemRow.state.in_(_UNRESOLVED))
        query = query.limit(most + 1)
        with self.engine.connect() as connection:
            read = connection.execute(query).all()
            rows, truncated = read[:most], len(read) > most
            incidents = _impact_facts(connection, rows, window)
        found = []
        for row in rows:
            removes = {"removes_class": row.removes_class}
            facts = incidents[row.postmortem_id].model_copy(update=removes)
            found.append(
                OpenItem(
                    id=row.id,
                    postmortem_id=row.postmortem_id,
                    postmortem_title=row.postmortem_title,
                    title=row.title,
                    owner=row.owner,
                    team=row.team,
                    due=row.due,
                    priority=row.priority,
                    state=row.state,
                    services=row.services or [],
                    facts=facts,
                )
            )
        return found, truncated

    def postmortem_impact(self, postmortem_id: str, *, window: timedelta) -> ImpactFacts | None:
        """What a postmortem's items' impact scores stand on (None: not in the record); an
        item adds only whether it removes a class of failure."""
        query = select(*_IMPACT_COLUMNS).where(PostmortemRow.id == postmortem_id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            return _impact_facts(connection, rows, window).get(postmortem_id)

    def open_postmortem_counts(self) -> dict[str, int]:
        """Postmortems not yet closed, by state."""
        query = (
            select(PostmortemRow.state, func.count())
            .where(PostmortemRow.state.in_(OPEN_POSTMORTEM_STATES))  # by the index, not every row
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


# Named rather than excluded, so that the index on state finds them: most items are resolved.
_UNRESOLVED = tuple(s.value for s in ActionItemState if s not in RESOLVED_STATES)
# The states an item can be overdue in: neither resolved nor queued (a queued item's clock waits).
# Named rather than excluded, so that ix_action_items_state_due finds them by state and due.
_CLOCK_RUNNING = tuple(
    s.value for s in ActionItemState if s not in (*RESOLVED_STATES, ActionItemState.QUEUED)
)
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
    PostmortemRow.caused_by_change,
    PostmortemRow.opened_at,
    PostmortemRow.restricted_to,
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


# What an incident's impact facts are read from (_impact_facts reads them by name).
_IMPACT_COLUMNS = (
    PostmortemRow.id.label("postmortem_id"),
    PostmortemRow.severity,
    PostmortemRow.slo_burns,
    PostmortemRow.resolved_at,
    PostmortemRow.opened_at.label("pm_opened_at"),
    PostmortemRow.users_affected,
)


def _impact_facts(
    connection: Connection, rows: Sequence[Any], window: timedelta
) -> dict[str, ImpactFacts]:
    """Per postmortem of `rows`, the facts its items' scores stand on: two queries for the factor
    tags (theirs, then the approved postmortems sharing them within `window`)."""
    pm_ids = sorted({row.postmortem_id for row in rows})
    own: dict[str, list[str]] = {}
    for pm_id, tag in connection.execute(
        select(FactorTagRow.postmortem_id, FactorTagRow.tag).where(
            FactorTagRow.postmortem_id.in_(pm_ids)
        )
    ):
        own.setdefault(pm_id, []).append(tag)
    tags = sorted({t for found in own.values() for t in found})
    times = [row.resolved_at or row.pm_opened_at for row in rows]
    seen: dict[str, list[tuple[str, datetime]]] = {}
    if tags and times:
        for tag, pm_id, at in connection.execute(
            select(FactorTagRow.tag, FactorTagRow.postmortem_id, FactorTagRow.resolved_at)
            .where(FactorTagRow.tag.in_(tags))
            .where(FactorTagRow.resolved_at >= min(times) - window)
            .where(FactorTagRow.resolved_at <= max(times) + window)
        ):
            seen.setdefault(tag, []).append((pm_id, at))
    facts = {}
    for row in rows:
        at = row.resolved_at or row.pm_opened_at
        recurring, recurrence = most_recurring(own.get(row.postmortem_id, []), at, seen, window)
        facts[row.postmortem_id] = ImpactFacts(
            severity=row.severity,
            slo_burns=[_budget_burn(burn) for burn in row.slo_burns or []],
            users_affected=row.users_affected,
            recurring_tag=recurring,
            recurrence=recurrence,
        )
    return facts


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
    reader: Reader | None = None,
) -> Any:
    query = query.where(readable(reader, ActionItemRow.restricted_to, ActionItemRow.postmortem_id))
    for column, value in (
        (ActionItemRow.team, team),
        (ActionItemRow.owner, owner),
        (ActionItemRow.state, state),
        (ActionItemRow.priority, priority),
    ):
        if value:
            query = query.where(column == value)
    if overdue_on is not None:
        query = query.where(ActionItemRow.state.in_(_CLOCK_RUNNING), ActionItemRow.due < overdue_on)
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
        "caused_by_change": row.caused_by_change,
        "resolved_at": row.resolved_at or row.opened_at,
        **{f"{name}_at": getattr(row, f"{name}_at") for name in MILESTONES if name != "resolved"},
    }


_UNMAPPED = TypeAdapter(list[UnmappedSeverity])


def _budget_burn(stored: dict[str, Any]) -> BudgetBurn:
    """The SLO review's burn as the impact score reads it (records read as SloBurn reads them)."""
    burn = SloBurn.model_validate(stored)
    return BudgetBurn(
        slo=burn.slo,
        name=burn.name,
        service=burn.service,
        budget_consumed=burn.budget_consumed,
        period_days=burn.period_days,
    )
