"""Times written relative to now (`now-1h`, `today+8w`) in the files people hand the CLI, so an
example incident or draft never goes stale. ISO 8601 times and dates are left as they are.

Pure: the caller passes the clock. A value that starts with `now` or `today` but is not one of
these forms is refused naming its field; offsets reach at most RELATIVE_MAX_DAYS away.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

RELATIVE_MAX_DAYS = 3 * 365  # as far as a due date may lie ahead (limits.DUE_AHEAD_DAYS)
_FORM = re.compile(r"^(now|today)(?:([+-])(\d{1,6})([mhdw]))?$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_HOW = "write an ISO 8601 time, or now/today with +/-N and m, h, d or w (e.g. now-1h, today+8w)"
_DAY_KEYS = frozenset({"due", "until"})  # fields that are a calendar day; the others are times


class RelativeTimeError(ValueError):
    """A relative time that is malformed or reaches too far."""


def looks_relative(value: object) -> bool:
    return isinstance(value, str) and re.match(r"^(now|today)\b", value.strip()) is not None


def relative_time(text: str, now: datetime) -> datetime:
    """`now`, `now-1h`, `today`, `today+8w` (m, h, d, w) as a time in `now`'s zone; `today` is
    its midnight."""
    found = _FORM.match(text.strip())
    if found is None:
        raise RelativeTimeError(f"'{text}' is not a time: {_HOW}")
    base, sign, amount, unit = found.groups()
    start = now if base == "now" else datetime.combine(now.date(), time(), now.tzinfo)
    if amount is None:
        return start
    offset = timedelta(**{_UNITS[unit]: int(amount)})
    if offset > timedelta(days=RELATIVE_MAX_DAYS):
        raise RelativeTimeError(f"'{text}' reaches more than {RELATIVE_MAX_DAYS} days away")
    return start + offset if sign == "+" else start - offset


def relative_day(text: str, now: datetime) -> date:
    return relative_time(text, now).date()


def with_relative_times(data: Any, now: datetime, where: str = "") -> tuple[Any, list[str]]:
    """`data` (a file's mapping) with each relative value of a time field (`at`, `*_at`) or a day
    field (`due`, `until`) written out in ISO 8601, and the problems, each naming its field."""
    problems: list[str] = []

    def walk(value: Any, path: str, key: str) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k), str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{path}[{i}]", key) for i, v in enumerate(value)]
        timed = key == "at" or key.endswith("_at")
        if not (timed or key in _DAY_KEYS) or not looks_relative(value):
            return value
        try:
            moment = relative_time(value, now)
        except RelativeTimeError as err:
            problems.append(f"{path}: {err}")
            return value
        return moment.isoformat() if timed else moment.date().isoformat()

    return walk(data, where, ""), problems
