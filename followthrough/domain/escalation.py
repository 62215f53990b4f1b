"""The escalation ladder: who is told about an action item, and when, relative to its due date.

Offsets are business days on the policy's calendar, so nobody is escalated over a weekend.
"""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from followthrough.domain.calendar import BusinessCalendar

Recipient = Literal["owner", "manager", "council"]

# The action-item priorities (draft.Priority); spelled out because draft imports the policy,
# which imports this module.
PRIORITIES = ("P0", "P1", "P2", "P3")

# About a working year: far enough for any real ladder, near enough to keep day walks short.
MAX_OFFSET = 250

_STEP_NAME = re.compile(r"[a-z0-9_-]+")
_ONE_DAY = timedelta(days=1)


class LadderStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="e.g. reminder, due, manager, council")
    business_days: int = Field(
        ge=-MAX_OFFSET,
        le=MAX_OFFSET,
        description="relative to the due date: -2 is two business days before",
    )
    notify: Recipient

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not _STEP_NAME.fullmatch(value):
            raise ValueError(
                f"step name '{value}' must be lowercase letters, digits, '_' or '-' "
                "(it names the notice in history and search)"
            )
        return value


DEFAULT_LADDER: list[LadderStep] = [
    LadderStep(name="reminder", business_days=-2, notify="owner"),
    LadderStep(name="due", business_days=0, notify="owner"),
    LadderStep(name="manager", business_days=2, notify="manager"),
    LadderStep(name="council", business_days=5, notify="council"),
]


def _ladder_problems(where: str, steps: list[LadderStep]) -> list[str]:
    if not steps:
        return [f"{where}: the ladder is empty; give at least one step"]
    problems: list[str] = []
    seen: set[str] = set()
    for step in steps:
        if step.name in seen:
            problems.append(f"{where}: step name '{step.name}' is used more than once")
        seen.add(step.name)
    for before, after in itertools.pairwise(steps):
        if after.business_days <= before.business_days:
            problems.append(
                f"{where}: business_days must strictly increase, but '{after.name}' "
                f"({after.business_days:+d}) follows '{before.name}' ({before.business_days:+d})"
            )
    return problems


class EscalationPolicy(BaseModel):
    """The default ladder and, per action-item priority, a ladder that replaces it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: list[LadderStep] = Field(default_factory=lambda: list(DEFAULT_LADDER))
    by_priority: dict[str, list[LadderStep]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ladders_make_sense(self) -> EscalationPolicy:
        problems = _ladder_problems("default", self.default)
        for priority, steps in self.by_priority.items():
            if priority not in PRIORITIES:
                problems.append(
                    f"by_priority: '{priority}' is not a priority (one of {', '.join(PRIORITIES)})"
                )
            else:
                problems.extend(_ladder_problems(f"by_priority.{priority}", steps))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def ladder(self, priority: str) -> list[LadderStep]:
        """The ladder for an action item of this priority; a copy, so callers cannot edit ours."""
        return list(self.by_priority.get(str(priority), self.default))


class PlannedStep(BaseModel):
    """One step of a ladder, placed on the calendar."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    notify: Recipient
    business_days: int
    day: date
    at: AwareDatetime = Field(description="UTC start of `day`'s business day")


def plan_ladder(
    due: date, steps: list[LadderStep], calendar: BusinessCalendar
) -> list[PlannedStep]:
    """When each step fires, in time order.

    A due date that is not a business day counts as the next business day, and every offset is
    taken from that day: otherwise `due` (+0) and a +1 step would both land on the Monday after
    a Saturday due date.
    """
    anchor = calendar.add_business_days(due, 0)
    planned = []
    for step in steps:
        day = calendar.add_business_days(anchor, step.business_days)
        planned.append(
            PlannedStep(
                name=step.name,
                notify=step.notify,
                business_days=step.business_days,
                day=day,
                at=calendar.start_of(day),
            )
        )
    return sorted(planned, key=lambda p: p.at)


def days_overdue(due: date, today: date, calendar: BusinessCalendar) -> int:
    """Business days past due, 0 when not overdue.

    Counted like plan_ladder counts: from the due date, or the next business day when it is
    not one, so a +2 step fires on the day the item is 2 business days overdue.
    """
    anchor = calendar.add_business_days(due, 0)
    return max(0, calendar.business_days_between(anchor, today))


def last_due_as_late(due: date, today: date, calendar: BusinessCalendar) -> date:
    """The latest due date before `today` whose items are as many business days overdue as those
    due on `due`: a Saturday's tie with the Monday after it, so a list ranked by lateness that
    stops at `due` must also read the items due up to this day."""
    late = days_overdue(due, today, calendar)
    last = due
    # Lateness only stays level over days that are not business days (or at 0, just before
    # `today`): a few steps.
    while last + _ONE_DAY < today and days_overdue(last + _ONE_DAY, today, calendar) == late:
        last += _ONE_DAY
    return last


def business_deadline(start: datetime, business_days: int, calendar: BusinessCalendar) -> datetime:
    """The start of the business day `business_days` after the local date of `start` (UTC).

    For drafts and reviews: resolved on Friday afternoon with 5 business days gives the next
    Friday's workday start, whatever the hour of resolution.
    """
    day = calendar.add_business_days(calendar.local_date(start), business_days)
    return calendar.start_of(day)
