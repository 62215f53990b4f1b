"""Reading a vendor's JSON by path, so that every complaint names the field it is about
(`event.data.id: missing`, `alerts[1].labels.severity: must be a string, not a number`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from followthrough.webhooks.errors import Malformed

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FieldValue:
    """A vendor's value and where in the payload it was, for messages about it."""

    text: str
    path: str


def parse_body(body: bytes) -> Fields:
    """The verified body as a JSON object."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        raise Malformed(f"the body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise Malformed(f"the body must be a JSON object, not {_kind(data)}")
    return Fields(data)


class Fields:
    """A JSON object and its path from the payload's root."""

    def __init__(self, data: Mapping[str, Any], path: str = "") -> None:
        self.data = data
        self.path = path

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    # Objects and lists of objects

    def obj(self, key: str) -> Fields:
        found = self.maybe_obj(key)
        if found is None:
            raise Malformed(f"{self.where(key)}: missing")
        return found

    def maybe_obj(self, key: str) -> Fields | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise Malformed(f"{self.where(key)}: must be an object, not {_kind(value)}")
        return Fields(value, self.where(key))

    def section(self, key: str) -> Fields:
        """An optional object, read as empty when it is missing (labels, annotations)."""
        return self.maybe_obj(key) or Fields({}, self.where(key))

    def objects(self, key: str) -> list[Fields]:
        """A required, non-empty list of objects."""
        found = self.maybe_objects(key)
        if not found:
            what = "missing" if self.data.get(key) is None else "must not be empty"
            raise Malformed(f"{self.where(key)}: {what}")
        return found

    def maybe_objects(self, key: str) -> list[Fields]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise Malformed(f"{self.where(key)}: must be a list, not {_kind(value)}")
        found = []
        for index, item in enumerate(value):
            where = f"{self.where(key)}[{index}]"
            if not isinstance(item, dict):
                raise Malformed(f"{where}: must be an object, not {_kind(item)}")
            found.append(Fields(item, where))
        return found

    # Text

    def text(self, key: str) -> str:
        """A required string, stripped; empty counts as missing."""
        found = self.maybe_text(key)
        if found is None:
            what = "missing" if self.data.get(key) is None else "must not be empty"
            raise Malformed(f"{self.where(key)}: {what}")
        return found

    def maybe_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise Malformed(f"{self.where(key)}: must be a string, not {_kind(value)}")
        return value.strip() or None

    def value(self, key: str) -> FieldValue:
        return FieldValue(self.text(key), self.where(key))

    def maybe_value(self, key: str) -> FieldValue | None:
        found = self.maybe_text(key)
        return None if found is None else FieldValue(found, self.where(key))

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise Malformed(f"{self.where(key)}: must be a list of strings")
        return [item.strip() for item in value if item.strip()]

    # Times

    def time(self, key: str) -> datetime:
        found = self.maybe_time(key)
        if found is None:
            raise Malformed(f"{self.where(key)}: missing")
        return found

    def maybe_time(self, key: str) -> datetime | None:
        text = self.maybe_text(key)
        return None if text is None else parse_time(text, self.where(key))

    def epoch(self, key: str, per_second: int) -> datetime:
        found = self.maybe_epoch(key, per_second)
        if found is None:
            raise Malformed(f"{self.where(key)}: missing")
        return found

    def maybe_epoch(self, key: str, per_second: int) -> datetime | None:
        """A Unix time as an integer count of 1/per_second seconds (1000: ms, 10**9: ns)."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise Malformed(f"{self.where(key)}: must be an integer Unix time, not {_kind(value)}")
        try:
            # Integer arithmetic: a float would lose the microseconds of a nanosecond time.
            return _EPOCH + timedelta(microseconds=value * 1_000_000 // per_second)
        except OverflowError:
            raise Malformed(f"{self.where(key)}: {value} is out of range") from None


def parse_time(text: str, where: str) -> datetime:
    """ISO 8601 with a zone (Z, +02:00, nanoseconds too), or FireHydrant's "... UTC" form."""
    iso = text[: -len(" UTC")] + "+00:00" if text.endswith(" UTC") else text
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise Malformed(f"{where}: {shown(text)} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise Malformed(f"{where}: {shown(text)} has no time zone")
    return moment


def shown(value: str, limit: int = 80) -> str:
    """A vendor value quoted for a message, cut short so a huge value cannot flood a log."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"
