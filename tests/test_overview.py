"""The overview's figures from data: overdue items by team, WIP caps, open postmortems."""

from __future__ import annotations

from datetime import UTC, date, datetime

from followthrough.domain.escalation import last_due_as_late
from followthrough.domain.metrics import ItemFacts
from followthrough.domain.overview import overview
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItemState

# Monday 2026-11-23; the default calendar works Monday to Friday.
TODAY = date(2026, 11, 23)
OPENED = datetime(2026, 10, 1, tzinfo=UTC)


def item(n: int, team: str, due: date, priority: str = "P2") -> ItemFacts:
    return ItemFacts(
        id=f"pm-{n}-item-1",
        postmortem_id=f"pm-{n}",
        title=f"item {n}",
        team=team,
        owner="bob",
        priority=priority,
        state=ActionItemState.OPEN,
        due=due,
        opened_at=OPENED,
        verified_at=None,
    )


def test_nothing_to_show(policy: Policy) -> None:
    view = overview(
        open_postmortems={},
        overdue_counts={},
        overdue_items=[],
        escalated=[],
        escalated_total=0,
        items_by_team={},
        policy=policy,
        today=TODAY,
    )
    assert view.open_postmortems == {
        "optional": 0,
        "drafting": 0,
        "in_review": 0,
        "changes_requested": 0,
        "tracking": 0,
    }
    assert view.overdue == [] and view.overdue_total == 0
    # Every team with a cap is listed, empty.
    assert [(w.team, w.holding, w.cap, w.at_cap) for w in view.wip] == [
        ("payments", 0, 3, False),
        ("platform", 0, 5, False),
        ("sre", 0, 4, False),
    ]


def test_overdue_items_by_team_in_business_days(policy: Policy) -> None:
    items = [
        # due Friday 20th: Monday 23rd is 1 business day overdue
        item(1, "payments", date(2026, 11, 20)),
        # due Monday 16th: 5 business days (16 -> 23)
        item(2, "payments", date(2026, 11, 16), "P1"),
        # due Saturday 21st: counted from Monday 23rd, so 0 days overdue yet
        item(3, "payments", date(2026, 11, 21)),
        # due Wednesday 18th: 3 business days
        item(4, "platform", date(2026, 11, 18)),
    ]
    view = overview(
        open_postmortems={"tracking": 4, "closed": 9},
        # The store reads each team's first few and counts the rest: payments has 7 in all.
        overdue_counts={"payments": 7, "platform": 1},
        overdue_items=items,
        escalated=[],
        escalated_total=0,
        items_by_team={},
        policy=policy,
        today=TODAY,
        shown=2,
    )
    assert view.overdue_total == 8
    assert view.open_postmortems["tracking"] == 4 and "closed" not in view.open_postmortems
    payments, platform = view.overdue
    assert (payments.team, payments.count, payments.worst_days_overdue) == ("payments", 7, 5)
    # Worst first, and only `shown` of them.
    assert [(o.item.id, o.days_overdue) for o in payments.items] == [
        ("pm-2-item-1", 5),
        ("pm-1-item-1", 1),
    ]
    assert (platform.team, platform.count, platform.worst_days_overdue) == ("platform", 1, 3)


def test_teams_at_their_wip_cap_come_first(policy: Policy) -> None:
    view = overview(
        open_postmortems={},
        overdue_counts={},
        overdue_items=[],
        escalated=[],
        escalated_total=0,
        items_by_team={
            "payments": {"open": 2, "done_claimed": 1, "queued": 2},  # 3 of 3: at cap, 2 wait
            "platform": {"open": 1},  # 1 of 5
            "sre": {"done_claimed": 3},  # 3 of 4
            "unknown-team": {"open": 7},  # no cap in the policy: not listed
        },
        policy=policy,
        today=TODAY,
    )
    assert [(w.team, w.holding, w.queued, w.at_cap) for w in view.wip] == [
        ("payments", 3, 2, True),
        ("sre", 3, 0, False),
        ("platform", 1, 0, False),
    ]


def test_items_as_late_as_one_due_on_a_day(policy: Policy) -> None:
    """How far the overview's store must read past a team's last shown item to rank ties."""
    calendar = policy.calendar

    def through(due: date) -> date:
        return last_due_as_late(due, TODAY, calendar)

    # Saturday 14th, Sunday 15th and Monday 16th are all 5 business days overdue on the 23rd.
    assert through(date(2026, 11, 14)) == date(2026, 11, 16)
    assert through(date(2026, 11, 16)) == date(2026, 11, 16)
    # Friday 20th is 1 day overdue; Saturday 21st and Sunday 22nd both 0, up to the day before.
    assert through(date(2026, 11, 20)) == date(2026, 11, 20)
    assert through(date(2026, 11, 21)) == date(2026, 11, 22)
    # On Tuesday the 29th, Thursday 24th is 2 days overdue; Friday 25th (a holiday) to Monday
    # 28th are all 1.
    assert last_due_as_late(date(2026, 12, 24), date(2026, 12, 29), calendar) == date(2026, 12, 24)
    assert last_due_as_late(date(2026, 12, 25), date(2026, 12, 29), calendar) == date(2026, 12, 28)
