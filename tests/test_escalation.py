"""The escalation ladder on the calendar: who hears about an action item, on which day, when."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from followthrough.domain.calendar import WEEKDAYS, BusinessCalendar
from followthrough.domain.draft import Priority
from followthrough.domain.escalation import (
    DEFAULT_LADDER,
    PRIORITIES,
    EscalationPolicy,
    LadderStep,
    PlannedStep,
    business_deadline,
    days_overdue,
    plan_ladder,
)
from followthrough.domain.policy import Policy

# Tuesday 2026-12-22; Friday 2026-12-25 is a holiday, so Thursday starts a four-day weekend.
DUE = date(2026, 12, 22)
CALENDAR = BusinessCalendar(holidays=[date(2026, 12, 25)])
BERLIN = BusinessCalendar(timezone="Europe/Berlin", holidays=[date(2026, 12, 25)])


def step(name: str, business_days: int, notify: str = "owner") -> dict[str, Any]:
    return {"name": name, "business_days": business_days, "notify": notify}


def refusal(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        EscalationPolicy.model_validate(fields)
    return str(caught.value)


def schedule(planned: list[PlannedStep]) -> list[tuple[str, str, date, datetime]]:
    return [(p.name, p.notify, p.day, p.at) for p in planned]


def nine(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=UTC)


# --- planning the default ladder ------------------------------------------------------------------


def test_default_ladder_around_a_holiday_weekend() -> None:
    planned = plan_ladder(DUE, EscalationPolicy().ladder("P2"), CALENDAR)
    assert schedule(planned) == [
        ("reminder", "owner", date(2026, 12, 18), nine(date(2026, 12, 18))),  # Fri before
        ("due", "owner", DUE, nine(DUE)),
        ("manager", "manager", date(2026, 12, 24), nine(date(2026, 12, 24))),  # Thu
        ("council", "council", date(2026, 12, 30), nine(date(2026, 12, 30))),  # Wed, not Tue
    ]
    assert [p.business_days for p in planned] == [-2, 0, 2, 5]


def test_the_shipped_policy_plans_on_its_own_calendar(policy: Policy) -> None:
    # Its calendar has the 2026-12-25 holiday too.
    planned = plan_ladder(DUE, policy.escalation.ladder("P1"), policy.calendar)
    assert planned == plan_ladder(DUE, EscalationPolicy().ladder("P1"), CALENDAR)


def test_times_are_the_local_workday_start_in_utc() -> None:
    planned = plan_ladder(DUE, DEFAULT_LADDER, BERLIN)
    assert [p.at for p in planned] == [
        nine(date(2026, 12, 18), 8),
        nine(DUE, 8),
        nine(date(2026, 12, 24), 8),
        nine(date(2026, 12, 30), 8),
    ]
    late = BusinessCalendar(workday_starts=time(10, 30))
    assert plan_ladder(DUE, DEFAULT_LADDER, late)[1].at == datetime(
        2026, 12, 22, 10, 30, tzinfo=UTC
    )


def test_a_weekend_due_date_counts_from_the_next_business_day() -> None:
    saturday = date(2026, 3, 7)
    tight = EscalationPolicy.model_validate(
        {"default": [step("due", 0), step("manager", 1, "manager")]}
    )
    planned = plan_ladder(saturday, tight.default, CALENDAR)
    # Not both on Monday: the manager hears a business day after the owner.
    assert [(p.name, p.day) for p in planned] == [
        ("due", date(2026, 3, 9)),
        ("manager", date(2026, 3, 10)),
    ]


def test_steps_given_out_of_order_are_planned_in_time_order() -> None:
    steps = [DEFAULT_LADDER[3], DEFAULT_LADDER[0], DEFAULT_LADDER[2], DEFAULT_LADDER[1]]
    planned = plan_ladder(DUE, steps, CALENDAR)
    assert [p.name for p in planned] == ["reminder", "due", "manager", "council"]


# --- ladders per priority -------------------------------------------------------------------------


def test_p0_uses_its_own_ladder_and_the_rest_the_default() -> None:
    escalation = EscalationPolicy.model_validate(
        {
            "by_priority": {
                "P0": [
                    step("reminder", -1),
                    step("due", 0),
                    step("manager", 1, "manager"),
                    step("council", 2, "council"),
                ]
            }
        }
    )
    p0 = plan_ladder(DUE, escalation.ladder("P0"), CALENDAR)
    assert [(p.name, p.day) for p in p0] == [
        ("reminder", date(2026, 12, 21)),
        ("due", DUE),
        ("manager", date(2026, 12, 23)),
        ("council", date(2026, 12, 24)),
    ]
    assert escalation.ladder("P1") == DEFAULT_LADDER
    assert escalation.ladder(Priority.P0) == escalation.by_priority["P0"]


def test_the_shipped_policy_has_a_tighter_p0_ladder(policy: Policy) -> None:
    p0 = policy.escalation.ladder("P0")
    assert [s.business_days for s in p0] == [-1, 0, 1, 2]
    assert policy.escalation.ladder("P3") == DEFAULT_LADDER


def test_ladder_hands_out_a_copy() -> None:
    escalation = EscalationPolicy()
    escalation.ladder("P1").clear()
    assert escalation.ladder("P1") == DEFAULT_LADDER


def test_priorities_match_the_drafts() -> None:
    assert tuple(p.value for p in Priority) == PRIORITIES


# --- refusals -------------------------------------------------------------------------------------


def test_unknown_priority_key_is_named() -> None:
    message = refusal(by_priority={"P4": [step("due", 0)], "urgent": [step("due", 0)]})
    assert "by_priority: 'P4' is not a priority (one of P0, P1, P2, P3)" in message
    assert "by_priority: 'urgent' is not a priority" in message


def test_duplicate_step_names_are_named_with_their_ladder() -> None:
    message = refusal(by_priority={"P1": [step("due", 0), step("due", 3, "manager")]})
    assert "by_priority.P1: step name 'due' is used more than once" in message


def test_offsets_must_strictly_increase() -> None:
    message = refusal(default=[step("due", 0), step("manager", 2), step("council", 2)])
    assert (
        "default: business_days must strictly increase, but 'council' (+2) follows 'manager' (+2)"
        in message
    )
    message = refusal(by_priority={"P0": [step("due", 0), step("reminder", -1)]})
    assert "by_priority.P0: business_days must strictly increase" in message
    assert "'reminder' (-1) follows 'due' (+0)" in message


def test_empty_ladders_are_refused() -> None:
    message = refusal(default=[], by_priority={"P2": []})
    assert "default: the ladder is empty" in message
    assert "by_priority.P2: the ladder is empty" in message


@pytest.mark.parametrize("name", ["", "Manager", "tell the council", "due!"])
def test_step_names_are_plain(name: str) -> None:
    message = refusal(default=[step(name, 0)])
    assert f"step name '{name}' must be lowercase letters, digits, '_' or '-'" in message


def test_unknown_recipient_is_refused() -> None:
    message = refusal(default=[step("due", 0, "cto")])
    assert "default.0.notify" in message
    assert "'owner', 'manager' or 'council'" in message


def test_offsets_are_bounded() -> None:
    assert "default.0.business_days" in refusal(default=[step("later", 1000)])


# --- days overdue and deadlines -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "overdue"),
    [
        (date(2026, 12, 21), 0),  # before the due date
        (DUE, 0),
        (date(2026, 12, 23), 1),
        (date(2026, 12, 24), 2),
        (date(2026, 12, 25), 2),  # the holiday adds nothing
        (date(2026, 12, 27), 2),  # nor does the weekend
        (date(2026, 12, 28), 3),
    ],
)
def test_days_overdue(today: date, overdue: int) -> None:
    assert days_overdue(DUE, today, CALENDAR) == overdue


def test_a_weekend_due_date_is_not_overdue_on_monday() -> None:
    saturday = date(2026, 3, 7)
    assert days_overdue(saturday, date(2026, 3, 9), CALENDAR) == 0
    assert days_overdue(saturday, date(2026, 3, 10), CALENDAR) == 1


def test_business_deadline_from_a_friday_afternoon() -> None:
    resolved = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)
    assert business_deadline(resolved, 5, CALENDAR) == datetime(2026, 3, 13, 9, 0, tzinfo=UTC)


def test_business_deadline_counts_from_the_local_date() -> None:
    # 23:30 UTC on Thursday is already Friday in Berlin, so one business day later is Monday.
    resolved = datetime(2026, 3, 5, 23, 30, tzinfo=UTC)
    assert business_deadline(resolved, 1, CALENDAR) == datetime(2026, 3, 6, 9, 0, tzinfo=UTC)
    assert business_deadline(resolved, 1, BERLIN) == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    # Across the switch to summer time the local 09:00 is 07:00 UTC.
    before_dst = datetime(2026, 3, 25, 10, 0, tzinfo=UTC)
    assert business_deadline(before_dst, 3, BERLIN) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


def test_business_deadline_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        business_deadline(datetime(2026, 3, 6, 15, 0), 5, CALENDAR)


# --- properties -----------------------------------------------------------------------------------

calendars = st.builds(
    BusinessCalendar,
    timezone=st.sampled_from(["UTC", "Europe/Berlin", "America/Los_Angeles", "Australia/Sydney"]),
    working_days=st.sets(st.sampled_from(WEEKDAYS), min_size=1).map(
        lambda chosen: [d for d in WEEKDAYS if d in chosen]
    ),
    holidays=st.lists(
        st.dates(min_value=date(2025, 12, 1), max_value=date(2027, 2, 28)), max_size=30
    ),
)
ladders = st.lists(
    st.integers(min_value=-20, max_value=30), min_size=1, max_size=6, unique=True
).map(
    lambda offsets: [
        LadderStep(name=f"step-{i}", business_days=n, notify="owner")
        for i, n in enumerate(sorted(offsets))
    ]
)
due_dates = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31))


@settings(max_examples=200, deadline=None)
@given(calendar=calendars, due=due_dates, steps=ladders)
def test_planned_steps_are_in_strictly_increasing_time_on_business_days(
    calendar: BusinessCalendar, due: date, steps: list[LadderStep]
) -> None:
    planned = plan_ladder(due, steps, calendar)

    assert [p.name for p in planned] == [s.name for s in steps]
    assert all(earlier.at < later.at for earlier, later in itertools.pairwise(planned))
    for p in planned:
        assert calendar.is_business_day(p.day)
        assert p.at == calendar.start_of(p.day)
        # A step +k fires on the day the item becomes k business days overdue.
        assert days_overdue(due, p.day, calendar) == max(0, p.business_days)


@settings(max_examples=200, deadline=None)
@given(calendar=calendars, due=due_dates, days=st.integers(min_value=0, max_value=60))
def test_days_overdue_never_negative_and_grows_by_at_most_one_a_day(
    calendar: BusinessCalendar, due: date, days: int
) -> None:
    today = due + timedelta(days=days)
    overdue = days_overdue(due, today, calendar)
    assert 0 <= overdue <= days
    assert days_overdue(due, today + timedelta(days=1), calendar) - overdue in (0, 1)
