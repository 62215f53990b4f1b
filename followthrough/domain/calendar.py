"""Business days: which days count, and when a business day starts, in the team's time zone.

Deadlines and escalations are counted in business days so that a weekend or a holiday never
eats into the time someone has, and notices go out at the start of a working day, local time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MON_TO_FRI: tuple[Weekday, ...] = WEEKDAYS[:5]

_ONE_DAY = timedelta(days=1)


def _zone(name: str) -> tzinfo:
    # UTC needs no tz database, so the default calendar works even where none is installed;
    # ZoneInfo caches zones by name, so calling this per use is cheap.
    return UTC if name == "UTC" else ZoneInfo(name)


class BusinessCalendar(BaseModel):
    """Working weekdays minus holidays, in one time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = Field(default="UTC", description="IANA time zone name, e.g. Europe/Berlin")
    working_days: list[Weekday] = Field(default_factory=lambda: list(MON_TO_FRI))
    holidays: list[date] = Field(default_factory=list, description="non-working dates")
    workday_starts: time = Field(
        default=time(9, 0), description="local time when a business day's notices go out"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            _zone(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone '{value}'; use an IANA name such as 'UTC' or 'Europe/Berlin'"
            ) from None
        return value

    @field_validator("working_days")
    @classmethod
    def _sensible_working_days(cls, value: list[Weekday]) -> list[Weekday]:
        # At least one working weekday is what guarantees every day walk below terminates:
        # holidays are finite, so a working weekday past the last holiday always exists.
        if not value:
            raise ValueError("at least one working day is needed")
        repeated = sorted({d for d in value if value.count(d) > 1}, key=WEEKDAYS.index)
        if repeated:
            raise ValueError(f"listed more than once: {', '.join(repeated)}")
        return value

    @field_validator("workday_starts", mode="before")
    @classmethod
    def _time_as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 10:30 as the number 630, which pydantic would take as seconds.
        if isinstance(value, int | float):
            raise ValueError(
                "write the time in quotes, e.g. '09:00' (YAML reads 10:30 as a number)"
            )
        return value

    @field_validator("workday_starts")
    @classmethod
    def _local_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("give a local time without an offset; the calendar's timezone applies")
        return value

    def is_business_day(self, day: date) -> bool:
        # Plain list lookups: the lists are short, and nothing derived can go stale after a
        # model_copy(update=...), which skips validation.
        return WEEKDAYS[day.weekday()] in self.working_days and day not in self.holidays

    def add_business_days(self, day: date, n: int) -> date:
        """The n-th business day after `day` (before it when n < 0).

        With n == 0: `day` itself when it is a business day, else the next business day.
        """
        try:
            if n == 0:
                while not self.is_business_day(day):
                    day += _ONE_DAY
                return day
            step = _ONE_DAY if n > 0 else -_ONE_DAY
            remaining = abs(n)
            while remaining:
                day += step
                if self.is_business_day(day):
                    remaining -= 1
            return day
        except OverflowError:  # an odd stored date at the calendar's end: stay at that end
            return date.min if n < 0 else date.max

    def business_days_between(self, start: date, end: date) -> int:
        """Business days d with start < d <= end; negative, mirrored, when end is before start.

        Counted by whole weeks, not day by day, so an odd stored date (year 1) costs no more
        than a recent one: a workflow task must finish in well under two seconds.
        """
        if end < start:
            return -self.business_days_between(end, start)
        weeks, rest = divmod((end - start).days, 7)
        count = weeks * len(self.working_days)
        last_full_week = start + timedelta(days=7 * weeks)
        count += sum(
            1
            for i in range(1, rest + 1)
            if WEEKDAYS[(last_full_week + timedelta(days=i)).weekday()] in self.working_days
        )
        holidays = {h for h in self.holidays if start < h <= end}
        return count - sum(1 for h in holidays if WEEKDAYS[h.weekday()] in self.working_days)

    def local_date(self, moment: datetime) -> date:
        """The calendar date of `moment` in the calendar's zone."""
        return self.local_time(moment).date()

    def midnight(self, day: date) -> datetime:
        """When `day` begins in the calendar's zone, as an aware UTC datetime."""
        return self._in_utc(datetime.combine(day, time(0), tzinfo=_zone(self.timezone)))

    def local_time(self, moment: datetime) -> datetime:
        """`moment` on the calendar zone's clock (what pages and reports show)."""
        try:
            return self._aware(moment).astimezone(_zone(self.timezone))
        except OverflowError:  # within hours of the calendar's first or last day: as given
            return moment

    def start_of(self, day: date) -> datetime:
        """When `day`'s business day starts (workday_starts, local), as an aware UTC datetime.

        zoneinfo picks the offset in force on that day, so 09:00 in Berlin is 08:00Z in winter
        and 07:00Z in summer. A start time inside a DST gap resolves to the pre-gap offset.
        """
        return self._in_utc(datetime.combine(day, self.workday_starts, tzinfo=_zone(self.timezone)))

    @staticmethod
    def _in_utc(moment: datetime) -> datetime:
        try:
            return moment.astimezone(UTC)
        except OverflowError:  # the first or last day of the calendar, in a zone off UTC
            edge = datetime.max if moment.year == date.max.year else datetime.min
            return edge.replace(tzinfo=UTC)

    @staticmethod
    def _aware(moment: datetime) -> datetime:
        # A naive datetime would be read in the host's zone, which differs between machines.
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{moment.isoformat()} has no time zone; pass an aware datetime")
        return moment
