"""Records built through the store's write path, for tests that measure them: postmortems with
their incident's milestones, action items in any state, contributing-factor tags."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from followthrough.domain.criteria import Manual
from followthrough.domain.draft import ActionItemSpec, Priority
from followthrough.domain.incident import MILESTONES, parse_incident
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    SYSTEM_ACTOR,
    ActionItem,
    ActionItemChange,
    ActionItemState,
    AuditEvent,
    Postmortem,
    PostmortemChange,
    PostmortemState,
    RiskAcceptance,
    open_postmortem,
)
from followthrough.domain.slo_review import SloAssessment
from followthrough.domain.themes import FactorTags
from followthrough.storage import Store
from tests.factories import incident_data


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """A moment in UTC, noon unless told."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def record_postmortem(
    store: Store,
    policy: Policy,
    incident_id: str,
    severity: str,
    milestones: dict[str, datetime],
    slo_review: list[SloAssessment] | None = None,
    **incident: Any,
) -> Postmortem:
    """A tracking postmortem whose incident has these milestones ('started', 'resolved', ...) and
    no others, and what its SLO review found."""
    data = incident_data(
        milestones["resolved"],
        id=incident_id,
        severity=severity,
        **{
            f"{name}_at": (m.isoformat() if (m := milestones.get(name)) else None)
            for name in MILESTONES
        },
        **incident,
    )
    pm = open_postmortem(parse_incident(data, policy), policy, milestones["resolved"])
    pm = pm.model_copy(
        update={"state": PostmortemState.TRACKING, "last_seq": 1, "slo_review": slo_review or []}
    )
    event = AuditEvent(
        workflow_id=pm.id,
        postmortem_id=pm.id,
        seq=1,
        at=pm.opened_at,
        actor=SYSTEM_ACTOR,
        action="opened",
    )
    store.records.record_postmortem(PostmortemChange(postmortem=pm, event=event))
    return pm


def record_item(
    store: Store,
    pm: Postmortem,
    number: int,
    *,
    state: ActionItemState,
    opened: datetime,
    due: date,
    verified: datetime | None = None,
    title: str = "",
    risk: RiskAcceptance | None = None,
    owner: str = "bob",
    team: str = "payments",
    priority: Priority = Priority.P1,
    accepted_when: str = "it is done",
    removes_class: str | None = None,
) -> ActionItem:
    """One of the postmortem's action items (bob's, payments, P1 unless said), as its workflow
    records it."""
    spec = ActionItemSpec(
        number=number,
        title=title or f"Action {number} for {pm.incident.id}",
        owner=owner,
        team=team,
        due=due,
        priority=priority,
        acceptance_criterion=Manual(description=accepted_when),
        removes_class=removes_class,
    )
    item = ActionItem(
        id=pm.action_item_id(number),
        postmortem_id=pm.id,
        spec=spec,
        owner=owner,
        team=team,
        due=due,
        state=state,
        opened_at=opened,
        verified_at=verified,
        risk_acceptance=risk,
        last_seq=1,
    )
    event = AuditEvent(
        workflow_id=item.id,
        postmortem_id=pm.id,
        seq=1,
        at=opened,
        actor=SYSTEM_ACTOR,
        action="opened",
    )
    store.records.record_action_item(ActionItemChange(item=item, event=event))
    return item


def note_tags(store: Store, pm_id: str, resolved: datetime, approved: datetime, tag: str) -> None:
    """An approved postmortem's factor tag; two postmortems sharing one make a theme."""
    store.themes.note_factor_tags(
        FactorTags(
            postmortem_id=pm_id,
            resolved_at=resolved,
            tags=[tag],
            team="payments",
            severity="SEV2",
            at=approved,
            threshold=2,
            window_days=90,
        )
    )


def minutes_after(start: datetime, **offsets: int) -> dict[str, datetime]:
    """Milestones from a start: minutes_after(t, detected=5, resolved=60)."""
    return {"started": start} | {name: start + timedelta(minutes=m) for name, m in offsets.items()}
