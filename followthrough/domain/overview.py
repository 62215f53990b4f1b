"""The dashboard's overview, built from the record's counts and lean rows. Data in, data out."""

from __future__ import annotations

from datetime import date

from pydantic import AwareDatetime, BaseModel, ConfigDict

from followthrough.domain.escalation import days_overdue
from followthrough.domain.metrics import ItemFacts
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItemState, PostmortemState

# States that hold one of the team's WIP slots: admitted and not yet resolved.
HOLDING_A_SLOT = (ActionItemState.OPEN.value, ActionItemState.DONE_CLAIMED.value)
# Each team's most overdue items named on the overview; the action items page lists the rest.
SHOWN_OVERDUE = 5
OPEN_POSTMORTEM_STATES = [
    s.value
    for s in PostmortemState
    if s not in (PostmortemState.CLOSED, PostmortemState.NOT_REQUIRED)
]


class Escalation(BaseModel):
    """A ladder step that fired, with the action item it fired for."""

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    detail: str
    item: ItemFacts


class OverdueItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    item: ItemFacts
    days_overdue: int  # business days, as the escalation ladder counts them


class OverdueTeam(BaseModel):
    model_config = ConfigDict(frozen=True)

    team: str
    count: int
    worst_days_overdue: int
    items: list[OverdueItem]  # worst first, at most `shown` of them


class WipTeam(BaseModel):
    """A team with a WIP cap, and how full it is."""

    model_config = ConfigDict(frozen=True)

    team: str
    cap: int
    holding: int  # items admitted and unresolved
    queued: int  # items waiting for a slot

    @property
    def at_cap(self) -> bool:
        return self.holding >= self.cap


class Overview(BaseModel):
    model_config = ConfigDict(frozen=True)

    open_postmortems: dict[str, int]  # every open state, in lifecycle order, zeros included
    overdue: list[OverdueTeam]  # most overdue items first
    overdue_total: int
    escalated: list[Escalation]  # this week's, newest first (at most the page's limit)
    escalated_total: int
    wip: list[WipTeam]  # teams with a cap, fullest first


def overview(
    *,
    open_postmortems: dict[str, int],
    overdue_counts: dict[str, int],
    overdue_items: list[ItemFacts],
    escalated: list[Escalation],
    escalated_total: int,
    items_by_team: dict[str, dict[str, int]],
    policy: Policy,
    today: date,
    shown: int = SHOWN_OVERDUE,
) -> Overview:
    """What needs attention now: open postmortems, overdue items, escalations, full teams.

    `overdue_counts`: each team's overdue items. `overdue_items`: not all of them, but each
    team's `shown` first by due date, priority and id, and every later one as late as the last
    of those (escalation.last_due_as_late; FactStore.most_overdue reads them), which is enough
    to rank them by business days overdue.
    """
    by_team: dict[str, list[OverdueItem]] = {}
    late_by_due: dict[date, int] = {}  # items share due dates; counting days walks the calendar
    for item in overdue_items:
        if item.due not in late_by_due:
            late_by_due[item.due] = days_overdue(item.due, today, policy.calendar)
        late = OverdueItem(item=item, days_overdue=late_by_due[item.due])
        by_team.setdefault(item.team, []).append(late)
    teams = []
    for team, late_items in by_team.items():
        late_items.sort(key=lambda o: (-o.days_overdue, o.item.priority, o.item.id))
        teams.append(
            OverdueTeam(
                team=team,
                count=overdue_counts[team],
                worst_days_overdue=late_items[0].days_overdue,
                items=late_items[:shown],
            )
        )
    teams.sort(key=lambda t: (-t.count, -t.worst_days_overdue, t.team))
    wip = [
        WipTeam(
            team=name,
            cap=team.wip_cap,
            holding=sum(items_by_team.get(name, {}).get(state, 0) for state in HOLDING_A_SLOT),
            queued=items_by_team.get(name, {}).get(ActionItemState.QUEUED.value, 0),
        )
        for name, team in policy.teams.items()
        if team.wip_cap is not None
    ]
    wip.sort(key=lambda w: (-w.holding / w.cap, -w.queued, w.team))
    return Overview(
        open_postmortems={
            state: open_postmortems.get(state, 0) for state in OPEN_POSTMORTEM_STATES
        },
        overdue=teams,
        overdue_total=sum(overdue_counts.values()),
        escalated=escalated,
        escalated_total=escalated_total,
        wip=wip,
    )
