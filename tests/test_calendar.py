"""Business days as a user counts them: weekends and holidays skipped, days start at 09:00 local."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from followthrough.domain.calendar import WEEKDAYS, BusinessCalendar

MON_FRI = BusinessCalendar()
CHRISTMAS = date(2026, 12, 25)  # a Friday
WITH_CHRISTMAS = BusinessCalendar(holidays=[CHRISTMAS])
BERLIN = BusinessCalendar(timezone="Europe/Berlin")

FRI = date(2026, 3, 6)
SAT = date(2026, 3, 7)
SUN = date(2026, 3, 8)
MON = date(2026, 3, 9)
TUE = date(2026, 3, 10)


def refusal(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        BusinessCalendar(**fields)
    return str(caught.value)


# --- which days count -----------------------------------------------------------------------------


def test_weekends_and_holidays_are_not_business_days() -> None:
    assert [MON_FRI.is_business_day(d) for d in (FRI, SAT, SUN, MON)] == [True, False, False, True]
    assert MON_FRI.is_business_day(CHRISTMAS)
    assert not WITH_CHRISTMAS.is_business_day(CHRISTMAS)


def test_working_days_need_not_be_mon_to_fri() -> None:
    sun_to_thu = BusinessCalendar(working_days=["sun", "mon", "tue", "wed", "thu"])
    assert sun_to_thu.is_business_day(SUN)
    assert not sun_to_thu.is_business_day(FRI)
    assert sun_to_thu.add_business_days(date(2026, 3, 5), 1) == SUN  # Thursday + 1


# --- add_business_days ----------------------------------------------------------------------------


def test_friday_plus_one_is_monday() -> None:
    assert MON_FRI.add_business_days(FRI, 1) == MON


def test_a_holiday_is_skipped() -> None:
    thursday = date(2026, 12, 24)
    assert MON_FRI.add_business_days(thursday, 1) == CHRISTMAS
    assert WITH_CHRISTMAS.add_business_days(thursday, 1) == date(2026, 12, 28)  # Monday


@pytest.mark.parametrize(("day", "expected"), [(SAT, MON), (SUN, MON), (TUE, TUE)])
def test_zero_days_gives_the_day_or_the_next_business_day(day: date, expected: date) -> None:
    assert MON_FRI.add_business_days(day, 0) == expected


def test_zero_days_on_a_holiday_gives_the_next_business_day() -> None:
    assert WITH_CHRISTMAS.add_business_days(CHRISTMAS, 0) == date(2026, 12, 28)


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (MON, -1, FRI),
        (TUE, -2, FRI),
        (SAT, -1, FRI),  # counting back from a weekend: Friday is the first day before it
        (SUN, -2, date(2026, 3, 5)),
        (date(2026, 12, 29), -2, date(2026, 12, 24)),  # Tuesday, back over Christmas
    ],
)
def test_negative_offsets_count_backwards(day: date, n: int, expected: date) -> None:
    assert WITH_CHRISTMAS.add_business_days(day, n) == expected


def test_twenty_business_days_is_four_weeks() -> None:
    assert MON_FRI.add_business_days(MON, 20) == MON + timedelta(weeks=4)
    assert MON_FRI.add_business_days(MON, -20) == MON - timedelta(weeks=4)


# --- business_days_between ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (FRI, FRI, 0),
        (FRI, SAT, 0),
        (FRI, SUN, 0),
        (FRI, MON, 1),
        (FRI, TUE, 2),
        (SAT, MON, 1),
        (date(2026, 12, 24), date(2026, 12, 29), 2),  # Thu -> Tue over Christmas and a weekend
    ],
)
def test_business_days_between(start: date, end: date, expected: int) -> None:
    assert WITH_CHRISTMAS.business_days_between(start, end) == expected
    assert WITH_CHRISTMAS.business_days_between(end, start) == -expected


# --- local dates and the start of a business day --------------------------------------------------


def test_local_date_is_in_the_calendars_zone() -> None:
    late_friday_utc = datetime(2026, 3, 6, 23, 30, tzinfo=UTC)
    assert MON_FRI.local_date(late_friday_utc) == FRI
    assert BERLIN.local_date(late_friday_utc) == SAT
    new_york = BusinessCalendar(timezone="America/New_York")
    assert new_york.local_date(datetime(2026, 3, 7, 3, 0, tzinfo=UTC)) == FRI


def test_local_date_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        MON_FRI.local_date(datetime(2026, 3, 6, 12, 0))


def test_start_of_is_workday_start_in_utc() -> None:
    assert MON_FRI.start_of(FRI) == datetime(2026, 3, 6, 9, 0, tzinfo=UTC)
    early = BusinessCalendar(workday_starts=time(7, 30))
    assert early.start_of(FRI) == datetime(2026, 3, 6, 7, 30, tzinfo=UTC)


def test_start_of_follows_daylight_saving_time() -> None:
    # Berlin moves to summer time on Sunday 2026-03-29.
    friday_before = date(2026, 3, 27)
    monday_after = BERLIN.add_business_days(friday_before, 1)
    assert monday_after == date(2026, 3, 30)
    assert BERLIN.start_of(friday_before) == datetime(2026, 3, 27, 8, 0, tzinfo=UTC)
    assert BERLIN.start_of(monday_after) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    # ...and back on Sunday 2026-10-25.
    assert BERLIN.start_of(date(2026, 10, 23)) == datetime(2026, 10, 23, 7, 0, tzinfo=UTC)
    assert BERLIN.start_of(date(2026, 10, 26)) == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)


# --- refusals -------------------------------------------------------------------------------------


def test_unknown_timezone_is_named() -> None:
    message = refusal(timezone="Europe/Atlantis")
    assert "unknown time zone 'Europe/Atlantis'" in message
    assert "IANA name" in message


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "Europe"])
def test_malformed_timezones_are_refused(bad: str) -> None:
    assert f"unknown time zone '{bad}'" in refusal(timezone=bad)


def test_no_working_days_is_refused() -> None:
    assert "at least one working day is needed" in refusal(working_days=[])


def test_duplicate_working_days_are_named() -> None:
    message = refusal(working_days=["tue", "mon", "tue", "fri", "mon"])
    assert "listed more than once: mon, tue" in message


def test_unknown_weekday_is_refused() -> None:
    assert "working_days.1" in refusal(working_days=["mon", "Tuesday"])


def test_unquoted_yaml_time_is_refused_not_misread() -> None:
    # YAML 1.1 reads 10:30 as 630 (base 60); pydantic would take that as 00:10:30.
    unquoted = yaml.safe_load("workday_starts: 10:30")["workday_starts"]
    assert "write the time in quotes" in refusal(workday_starts=unquoted)
    assert BusinessCalendar(workday_starts="10:30").workday_starts == time(10, 30)


def test_workday_start_with_an_offset_is_refused() -> None:
    assert "without an offset" in refusal(workday_starts="09:00+02:00")


def test_unknown_fields_are_refused() -> None:
    assert "Extra inputs are not permitted" in refusal(weekend=["sat", "sun"])


# --- properties -----------------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]
SPAN = (date(2025, 6, 1), date(2026, 6, 30))

days = st.dates(min_value=SPAN[0], max_value=SPAN[1])
calendars = st.one_of(
    st.just(MON_FRI),
    st.builds(
        BusinessCalendar,
        timezone=st.sampled_from(ZONES),
        working_days=st.sets(st.sampled_from(WEEKDAYS), min_size=1).map(
            lambda chosen: [d for d in WEEKDAYS if d in chosen]
        ),
        # Holidays around the days tested, up to a few weeks' worth, so some runs hit long gaps.
        holidays=st.lists(
            st.dates(min_value=SPAN[0] - timedelta(days=90), max_value=SPAN[1] + timedelta(90)),
            max_size=40,
            unique=True,
        ),
        workday_starts=st.sampled_from([time(8, 0), time(9, 0), time(9, 30), time(10, 0)]),
    ),
)
offsets = st.integers(min_value=-60, max_value=60)


def business_day(calendar: BusinessCalendar, day: date) -> date:
    return calendar.add_business_days(day, 0)


@settings(max_examples=200, deadline=None)
@given(calendar=calendars, day=days, n=offsets)
def test_the_result_is_always_a_business_day(calendar: BusinessCalendar, day: date, n: int) -> None:
    assert calendar.is_business_day(calendar.add_business_days(day, n))


@settings(max_examples=200, deadline=None)
@given(calendar=calendars, day=days, n=offsets)
def test_between_counts_back_what_add_added(calendar: BusinessCalendar, day: date, n: int) -> None:
    start = business_day(calendar, day)
    assert calendar.business_days_between(start, calendar.add_business_days(start, n)) == n


@settings(max_examples=200, deadline=None)
@given(calendar=calendars, day=days, a=offsets, b=offsets)
def test_add_is_monotonic_in_n(calendar: BusinessCalendar, day: date, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert calendar.add_business_days(day, low) <= calendar.add_business_days(day, high)
    start = business_day(calendar, day)
    if low < high:  # from a business day every step moves to another day
        assert calendar.add_business_days(start, low) < calendar.add_business_days(start, high)


@settings(max_examples=200, deadline=None)
@given(
    calendar=calendars,
    day=days,
    a=st.integers(min_value=0, max_value=30),
    b=st.integers(min_value=0, max_value=30),
)
def test_adding_in_two_steps_is_adding_once(
    calendar: BusinessCalendar, day: date, a: int, b: int
) -> None:
    start = business_day(calendar, day)
    twice = calendar.add_business_days(calendar.add_business_days(start, a), b)
    assert twice == calendar.add_business_days(start, a + b)


@settings(max_examples=200, deadline=None)
@given(calendar=calendars, day=days, n=st.integers(min_value=0, max_value=60))
def test_back_then_forward_returns_to_the_day(
    calendar: BusinessCalendar, day: date, n: int
) -> None:
    start = business_day(calendar, day)
    assert calendar.add_business_days(calendar.add_business_days(start, -n), n) == start


@settings(max_examples=200, deadline=None)
@given(calendar=calendars, start=days, end=days)
def test_between_is_antisymmetric(calendar: BusinessCalendar, start: date, end: date) -> None:
    forward = calendar.business_days_between(start, end)
    assert forward == -calendar.business_days_between(end, start)
    assert (forward > 0) <= (end > start)


@settings(max_examples=200, deadline=None)
@given(calendar=calendars, day=days)
def test_start_of_is_workday_start_on_that_local_day(calendar: BusinessCalendar, day: date) -> None:
    moment = calendar.start_of(day)
    assert moment.utcoffset() == timedelta(0)
    assert calendar.local_date(moment) == day
    assert moment.astimezone(ZoneInfo(calendar.timezone)).time() == calendar.workday_starts
