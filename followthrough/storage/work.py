"""The reads behind "my work" and the postmortems list's progress: indexed columns (state, owner,
team, postmortem id, the audit log's action), each bounded, so the page stays cheap at 10,000
postmortems (bench/dashboard.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    RESOLVED_STATES,
    ActionItem,
    ActionItemState,
    AuditAction,
    Postmortem,
    PostmortemState,
)
from followthrough.domain.work import Candidates, Progress, draft_lateness
from followthrough.storage.database import Database
from followthrough.storage.restricted import readable
from followthrough.storage.tables import ActionItemRow, AuditEventRow, PostmortemRow

# How many candidates of each kind are read; the domain keeps those that are the person's.
CANDIDATES_MOST = 500
_RESOLVED = tuple(state.value for state in RESOLVED_STATES)
# Named rather than excluded, so that the index on state finds them: most items are resolved.
_UNRESOLVED = tuple(s.value for s in ActionItemState if s not in RESOLVED_STATES)
_DRAFTING = (
    PostmortemState.DRAFTING.value,
    PostmortemState.CHANGES_REQUESTED.value,
)


def candidates(db: Database, person: str, policy: Policy) -> Candidates:
    managed = [name for name, team in policy.teams.items() if team.manager == person]
    teams = policy.teams_of(person)
    council = person in policy.council
    reader = policy.reader(person)
    with Session(db.engine) as session:

        def pms(*where: object) -> list[Postmortem]:
            query = select(PostmortemRow.data).where(*where)  # type: ignore[arg-type]
            query = query.where(readable(reader, PostmortemRow.restricted_to, PostmortemRow.id))
            query = query.order_by(PostmortemRow.draft_due).limit(CANDIDATES_MOST)
            return [Postmortem.model_validate(data) for data in session.scalars(query)]

        def items(*where: object) -> list[ActionItem]:
            query = select(ActionItemRow.data).where(*where)  # type: ignore[arg-type]
            query = query.where(
                readable(reader, ActionItemRow.restricted_to, ActionItemRow.postmortem_id)
            )
            query = query.order_by(ActionItemRow.due, ActionItemRow.id).limit(CANDIDATES_MOST)
            return [ActionItem.model_validate(data) for data in session.scalars(query)]

        drafts = pms(PostmortemRow.state.in_(_DRAFTING), PostmortemRow.owner == person)
        optional = (
            pms(
                PostmortemRow.state == PostmortemState.OPTIONAL.value,
                PostmortemRow.team.in_(teams),
            )
            if teams
            else []
        )
        in_review = (
            pms(PostmortemRow.state == PostmortemState.IN_REVIEW.value)
            if policy.may_review(person)
            else []
        )
        owned = items(ActionItemRow.owner == person, ActionItemRow.state.in_(_UNRESOLVED))
        claimed = items(ActionItemRow.state == ActionItemState.DONE_CLAIMED.value)
        asking: list[ActionItem] = []
        if council or managed:
            scope = [] if council else [ActionItemRow.team.in_(managed)]
            asking = items(
                ActionItemRow.id.in_(_waiting_for_a_decision()),
                ActionItemRow.state.in_(_UNRESOLVED),
                *scope,
            )
    return Candidates(
        drafts=drafts,
        optional=optional,
        in_review=in_review,
        owned_items=owned,
        claimed=claimed,
        asking=asking,
    )


def _waiting_for_a_decision() -> Any:
    """The items whose latest extension event is a request: its snapshot's pending_extension,
    read from the audit log's index instead of every snapshot that ever asked (at 10,000
    postmortems, hundreds of decided ones read and validated for none shown)."""
    extension_events = (
        AuditAction.ITEM_EXTENSION_REQUESTED,
        AuditAction.ITEM_EXTENSION_APPROVED,
        AuditAction.ITEM_EXTENSION_DENIED,
    )
    latest = (
        select(AuditEventRow.workflow_id, func.max(AuditEventRow.seq).label("seq"))
        .where(AuditEventRow.action.in_(extension_events))
        .group_by(AuditEventRow.workflow_id)
        .subquery()
    )
    return (
        select(AuditEventRow.workflow_id)
        .join(
            latest,
            (AuditEventRow.workflow_id == latest.c.workflow_id)
            & (AuditEventRow.seq == latest.c.seq),
        )
        .where(AuditEventRow.action == AuditAction.ITEM_EXTENSION_REQUESTED)
    )


def progress(
    db: Database, postmortem_ids: list[str], today: date, now: datetime
) -> dict[str, Progress]:
    """Each listed postmortem's follow-ups: items, verified, overdue; and a late draft."""
    if not postmortem_ids:
        return {}
    resolved = ActionItemRow.state.in_(_RESOLVED)
    late = ActionItemRow.state.not_in((*_RESOLVED, ActionItemState.QUEUED.value)) & (
        ActionItemRow.due < today
    )
    counted = (
        select(
            ActionItemRow.postmortem_id,
            func.count(),
            func.sum(case((resolved, 1), else_=0)),
            func.sum(case((late, 1), else_=0)),
        )
        .where(ActionItemRow.postmortem_id.in_(postmortem_ids))
        .group_by(ActionItemRow.postmortem_id)
    )
    drafts = select(
        PostmortemRow.id, PostmortemRow.owner, PostmortemRow.state, PostmortemRow.draft_due
    ).where(PostmortemRow.id.in_(postmortem_ids))
    with db.engine.connect() as connection:
        counts = {
            pm: (n, done or 0, over or 0) for pm, n, done, over in connection.execute(counted)
        }
        states = connection.execute(drafts).all()
    found: dict[str, Progress] = {}
    for pm_id, owner, state, draft_due in states:
        n, done, over = counts.get(pm_id, (0, 0, 0))
        found[pm_id] = Progress(
            owner=owner,
            items=n,
            verified=done,
            overdue=over,
            draft_late_days=draft_lateness(state, draft_due, now),
        )
    return found
