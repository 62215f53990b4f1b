"""What the vendor collectors share: an event within its bounds, and waiting out a 429.

`event(...)` cuts a vendor's text to EVENT_TEXT_MOST, its author to one line, and keeps a link
only when it is a plain http(s) URL.

`RateLimitWaits` waits as long as a 429's Retry-After asks, within a bound: a collector runs
inside the collection activity, which has a time of its own, so a source that asks for longer
than `most` seconds in all (or sends no Retry-After, or keeps limiting) is reported unavailable
for now, and "collect again" finds it later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from followthrough.domain.bounds import cut, one_line
from followthrough.domain.timeline import EVENT_TEXT_MOST, CollectedEvent, EventKind
from followthrough.hrefs import safe_url
from followthrough.integrations.timeline import SourceUnavailable

WAIT_MOST_SECONDS = 60.0  # in all, per collection of one source
WAITS_MOST = 5  # 429s in a row answered by waiting, per collection of one source


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
            raise SourceUnavailable(f"{self.source} is rate limiting us (429) without Retry-After")
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
    """One collected event, the vendor's values cut to the event's bounds."""
    shown_author = one_line(author, AUTHOR_MOST) if author else None
    kept_link = safe_url(link)
    return CollectedEvent(
        source=source,
        source_id=source_id,
        at=at,
        kind=kind,
        author=shown_author or None,
        text=cut(text, EVENT_TEXT_MOST),
        link=kept_link if kept_link and len(kept_link) <= LINK_MOST else None,
    )
