"""The WIP cap in seeded records: what the product (TeamSlotsWorkflow and the queue and admit
steps) guarantees must hold in a seeded history too. At every moment, and at `now`, a team's items
holding a slot (from their start, or their admission after a wait, until they are verified or
their risk accepted; still open at `now`: for good) are at most its cap; the rest wait in line.

Checked with the default policy, whose caps are far below what the seeded volume asks (most
items wait, and the seed command says so), and with caps sized to the volume (most work flows).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from itertools import islice

import pytest

from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItem, ActionItemState, AuditAction, AuditEvent
from followthrough.seed import seeded_incidents, sized_for

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
FOREVER = datetime.max.replace(tzinfo=UTC)

Interval = tuple[datetime, datetime]


def slot_held(item: ActionItem, events: list[AuditEvent]) -> Interval | None:
    """When the item held one of its team's slots; None while it waits in line."""
    actions = {e.action: e.at for e in events}
    if AuditAction.ITEM_QUEUED in actions and AuditAction.ITEM_ADMITTED not in actions:
        return None
    start = actions.get(AuditAction.ITEM_ADMITTED, item.opened_at)
    end = item.verified_at or (item.risk_acceptance.at if item.risk_acceptance else FOREVER)
    return start, end


def most_at_once(intervals: list[Interval]) -> int:
    """The most intervals holding at any one moment (an interval ending frees its slot first)."""
    moments = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    held = most = 0
    for _, change in sorted(moments, key=lambda m: (m[0], m[1])):
        held += change
        most = max(most, held)
    return most


@pytest.mark.parametrize("sized", [False, True], ids=["default caps", "caps sized to it"])
def test_no_team_holds_more_items_than_its_wip_cap(policy: Policy, sized: bool) -> None:
    postmortems = 150
    if sized:
        policy = sized_for(policy, postmortems)
    held: dict[str, list[Interval]] = defaultdict(list)
    states: dict[str, list[ActionItemState]] = defaultdict(list)
    for made in islice(seeded_incidents(policy, NOW), postmortems):
        events: dict[str, list[AuditEvent]] = defaultdict(list)
        for change in made.changes:
            events[change.event.workflow_id].append(change.event)
        for item in made.items:
            states[item.team].append(item.state)
            if (interval := slot_held(item, events[item.id])) is not None:
                held[item.team].append(interval)
    most = {team: most_at_once(intervals) for team, intervals in held.items()}
    caps = {team: policy.teams[team].wip_cap for team in held}
    assert all(most[team] <= cap for team, cap in caps.items() if cap is not None), (most, caps)
    waiting = {team: s.count(ActionItemState.QUEUED) / len(s) for team, s in states.items()}
    if sized:  # the caps are reached at the peaks, and most work flows
        assert any(most[team] == caps[team] for team in held)
        assert all(share < 0.1 for share in waiting.values()), waiting
    else:  # the default caps are full, and most items wait in line
        assert most == caps
        assert all(share > 0.5 for share in waiting.values()), waiting
