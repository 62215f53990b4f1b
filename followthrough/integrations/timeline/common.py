"""What the vendor collectors share: an event within its bounds, and waiting out a 429.

`event(...)` cuts a vendor's text to EVENT_TEXT_MOST, its author to one line, and keeps a link
only when it is a plain http(s) URL.

`RateLimitWaits` waits as long as a 429's Retry-After asks (a short while when it gives none),
within a bound: a collector runs inside the collection activity, which has a time of its own,
so a source that asks for longer than `most` seconds in all (or keeps limiting) is reported
unavailable for now, and "collect again" finds it later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from followthrough.domain.bounds import cut, one_line
from followthrough.domain.problems import format_validation_error
from followthrough.domain.timeline import EVENT_TEXT_MOST, CollectedEvent, EventKind
from followthrough.hrefs import safe_url
from followthrough.integrations.timeline import SourceRefused, SourceUnavailable

WAIT_MOST_SECONDS = 60.0  # in all, per collection of one source
WAITS_MOST = 5  # 429s in a row answered by waiting, per collection of one source
# Opsgenie documents its 429 with X-RateLimit-State, not Retry-After: its limits are per second
# and per minute, so a 429 without Retry-After waits this long before the next try.
UNHINTED_WAIT_SECONDS = 2.0


@dataclass
class RateLimitWaits:
    """The waits one collection has spent; `sleep` is replaceable so tests need not sleep."""

    source: str
    most: float = WAIT_MOST_SECONDS
    sleep: Callable[[float], None] = time.sleep
    waited: list[float] = field(default_factory=list)

    def wait(self, retry_after: float | None) -> None:
        """Sleep as asked, or raise SourceUnavailable when that would go past the bound."""
        if retry_after is None:
            retry_after = UNHINTED_WAIT_SECONDS
        if len(self.waited) >= WAITS_MOST or sum(self.waited) + retry_after > self.most:
            raise SourceUnavailable(
                f"{self.source} is rate limiting us (429, retry after {retry_after:g}s); "
                f"already waited {sum(self.waited):g}s"
            )
        self.waited.append(retry_after)
        self.sleep(retry_after)


AUTHOR_MOST = 200
LINK_MOST = 2000


def event(
    source: str,
    source_id: str,
    at: datetime,
    kind: EventKind,
    *,
    author: str | None,
    text: str,
    link: str | None,
) -> CollectedEvent:
    """One collected event, the vendor's values cut to the event's bounds; SourceRefused naming
    the field when what is left does not fit (an id longer than any vendor's)."""
    shown_author = one_line(author, AUTHOR_MOST) if author else None
    kept_link = safe_url(link)
    try:
        return CollectedEvent(
            source=source,
            source_id=source_id,
            at=at,
            kind=kind,
            author=shown_author or None,
            text=cut(text, EVENT_TEXT_MOST),
            link=kept_link if kept_link and len(kept_link) <= LINK_MOST else None,
        )
    except ValidationError as err:
        problems = "; ".join(format_validation_error(err))
        raise SourceRefused(f"{source} sent an event we cannot keep: {problems}") from None


def vendor_time(source: str, what: str, value: object) -> datetime:
    """A vendor's ISO 8601 time with its zone; SourceRefused naming the field otherwise."""
    if isinstance(value, datetime):
        when: datetime | None = value
    else:
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            when = None
    if when is None or when.tzinfo is None:
        raise SourceRefused(f"{source} sent {what} {str(value)[:40]!r}, not a time with a zone")
    return when


def vendor_id(source: str, what: str, value: object) -> str:
    """A vendor's id for an event; SourceRefused naming the field when it has none."""
    if not isinstance(value, str | int) or not str(value).strip():
        raise SourceRefused(f"{source} sent {what} without an id")
    return str(value)
