"""Checking what crosses the edge against followthrough/domain/limits.py, naming each field.

The models themselves stay lenient: they are also what the store reads back and what recorded
workflow histories replay, and an odd value written before a limit existed must still load. So
the limits are checked here, by the edges (API, dashboard, CLI, webhooks) and by the workflows'
validators, and every problem names its field: `action_items[0].title: at most 200 characters`.

Titles are one line. People's titles are refused when they are not (`check_title`); a vendor's
are made one line (`one_line`), because an authentic delivery is never dropped for its wording.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from followthrough.domain import limits

# C0 and C1 control characters and the Unicode line and paragraph separators (email headers and
# log lines split on them); long text may keep its tabs and line breaks. Lone surrogates too: JSON
# readers let them through, but nothing can encode them as UTF-8, Temporal's payloads included.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]+")


def serialized_size(model: BaseModel) -> int:
    """Bytes of the model as JSON, which is how Temporal carries it; a lone surrogate (which
    the text checks refuse by name) is counted rather than raised on."""
    try:
        return len(model.model_dump_json().encode("utf-8"))
    except PydanticSerializationError:
        as_json = json.dumps(model.model_dump(mode="json"), ensure_ascii=False)
        return len(as_json.encode("utf-8", "surrogatepass"))


def kib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB"


def one_line(text: str, limit: int = limits.TITLE_CHARS) -> str:
    """A vendor's text as a title: whitespace and control characters become single spaces, and
    what is longer than `limit` is cut with an ellipsis."""
    flat = _SPACE_OR_CONTROL.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def cut(text: str, limit: int) -> str:
    """A vendor's long text: control characters dropped (line breaks kept), cut to `limit`."""
    clean = _CONTROL_BUT_LINES.sub("", text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


class Bounds:
    """Collects every limit a value passes, as 'field: problem' lines."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def text(self, where: str, value: str | None, limit: int, *, lines: bool = False) -> None:
        """Text of at most `limit` characters; one line unless `lines` (tabs and line breaks)."""
        if value is None:
            return
        if len(value) > limit:
            self.problems.append(f"{where}: at most {limit} characters (this is {len(value)})")
        control = (_CONTROL_BUT_LINES if lines else _CONTROL).search(value)
        if control is not None:
            what = "a control character" if lines else "a line break or control character"
            self.problems.append(
                f"{where}: contains {what} ({control.group(0)!r} at {control.start()})"
            )

    def title(self, where: str, value: str | None) -> None:
        self.text(where, value, limits.TITLE_CHARS)

    def name(self, where: str, value: str | None) -> None:
        self.text(where, value, limits.NAME_CHARS)

    def count(self, where: str, items: list[Any] | dict[Any, Any], limit: int) -> bool:
        """True when within the limit (so its entries are worth checking one by one)."""
        if len(items) > limit:
            self.problems.append(f"{where}: at most {limit} entries (this has {len(items)})")
            return False
        return True

    def number(
        self, where: str, value: float | None, low: float | None = None, high: float | None = None
    ) -> None:
        if value is None:
            return
        if not math.isfinite(value):
            self.problems.append(f"{where}: must be a finite number, not {value}")
            return
        low = -limits.NUMBER_MAGNITUDE if low is None else low
        high = limits.NUMBER_MAGNITUDE if high is None else high
        if not low <= value <= high:
            self.problems.append(f"{where}: {value:g} is outside {low:g} to {high:g}")

    def day(self, where: str, value: date | None) -> None:
        if value is None:
            return
        first, last = limits.EARLIEST_DATE, limits.LATEST_DATE
        if not first <= value <= last:
            self.problems.append(
                f"{where}: {value.isoformat()} is outside {first.isoformat()} to {last.isoformat()}"
            )

    def moment(self, where: str, value: datetime | None) -> None:
        """A time whose calendar date is in the window wherever in the world it is read."""
        if value is None:
            return
        first = datetime.combine(limits.EARLIEST_DATE, datetime.min.time(), value.tzinfo)
        last = datetime.combine(limits.LATEST_DATE, datetime.max.time(), value.tzinfo)
        if not first <= value <= last:
            self.problems.append(
                f"{where}: {value.isoformat()} is outside {limits.EARLIEST_DATE.isoformat()} "
                f"to {limits.LATEST_DATE.isoformat()}"
            )

    def json_value(self, where: str, value: Any, depth: int = 0) -> None:
        """Free-form JSON (an acceptance criterion as written): finite numbers, bounded text."""
        if depth > limits.CRITERION_DEPTH:
            self.problems.append(f"{where}: nested more than {limits.CRITERION_DEPTH} deep")
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, int | float):
            self.number(where, float(value) if abs(value) < 1e300 else math.inf)
        elif isinstance(value, str):
            self.text(where, value, limits.PARAGRAPH_CHARS, lines=True)
        elif isinstance(value, list):
            if self.count(where, value, limits.LIST_ENTRIES):
                for i, entry in enumerate(value):
                    self.json_value(f"{where}[{i}]", entry, depth + 1)
        elif isinstance(value, dict) and self.count(where, value, limits.LIST_ENTRIES):
            for key, entry in value.items():
                self.json_value(f"{where}.{key}", entry, depth + 1)

    def within_budget(self, where: str, model: BaseModel, budget: int) -> None:
        size = serialized_size(model)
        if size > budget:
            self.problems.append(f"{where}: {kib(size)} serialized, over the {kib(budget)} budget")


def due_date_problem(where: str, due: date, today: date) -> str | None:
    """A due date (or an extension's) too far ahead to be a follow-up."""
    latest = today + timedelta(days=limits.DUE_AHEAD_DAYS)
    if due > latest:
        return (
            f"{where}: {due.isoformat()} is more than {limits.DUE_AHEAD_DAYS} days ahead "
            f"(at most {latest.isoformat()})"
        )
    return None


# Fields of people's messages (postmortem.py: DoneClaim, ExtensionRequest, ...) that name someone.
_NAMES = ("by", "to", "team")


def update_problems(argument: BaseModel) -> list[str]:
    """What is wrong with a person's action before it is sent to its workflow: its serialized
    size, and each of its own fields (a draft's sections are judged by draft_bounds)."""
    check = Bounds()
    check.within_budget(type(argument).__name__, argument, limits.UPDATE_BUDGET_BYTES)
    for field, value in argument:
        if isinstance(value, str) and field in _NAMES:
            check.name(field, value)
        elif isinstance(value, str):
            check.text(field, value, limits.NOTE_CHARS, lines=True)
        elif isinstance(value, date):
            check.day(field, value)
    return check.problems
