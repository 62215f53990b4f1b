"""What the incident tools' collectors (incident.io, FireHydrant) do alike with a vendor's REST
API: which HTTP answers are refusals and which may pass, waiting out a 429's Retry-After a few
times, and turning what the vendor said into a bounded `CollectedEvent`.

The base URLs come from the operator's settings, like Jira's and Slack's, so they are not judged
by the policy's outbound rules (those are for URLs a postmortem's author writes).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from followthrough.domain.bounds import cut, one_line
from followthrough.domain.timeline import EVENT_TEXT_MOST, CollectedEvent, EventKind
from followthrough.integrations.outbound import network_failure, retry_after
from followthrough.integrations.timeline import SourceRefused, SourceUnavailable

REQUEST_SECONDS = 10.0  # one request; the collection activity bounds the whole
RETRY_AFTER_MOST = 30.0  # a 429 asking for longer is not waited: the source is unavailable
RETRY_AFTER_UNSAID = 1.0  # a 429 without Retry-After
RATE_LIMIT_WAITS = 3  # 429s waited out per collection; the next one makes it unavailable
AUTHOR_MOST = 200  # CollectedEvent.author
LINK_MOST = 2000  # CollectedEvent.link
_WEB = re.compile(r"^https?://\S+$")

Sleep = Callable[[float], None]


class RateLimits:
    """Waits out a vendor's 429s, briefly and a few times; after that the source is unavailable
    (collecting again later may succeed)."""

    def __init__(self, vendor: str, sleep: Sleep = time.sleep) -> None:
        self.vendor = vendor
        self.sleep = sleep
        self.waited: list[float] = []

    def wait(self, response: httpx.Response) -> None:
        asked = retry_after(response)
        wait = RETRY_AFTER_UNSAID if asked is None else asked
        if len(self.waited) >= RATE_LIMIT_WAITS:
            raise SourceUnavailable(
                f"{self.vendor} kept rate limiting (429 after {len(self.waited)} waits)"
            )
        if wait > RETRY_AFTER_MOST:
            raise SourceUnavailable(
                f"{self.vendor} is rate limiting and asked us to retry after {wait:g}s"
            )
        self.waited.append(wait)
        self.sleep(wait)


def failed_answer(vendor: str, status: int, incident_id: str, setting: str) -> Exception:
    """A vendor's HTTP error as SourceRefused (it will repeat) or SourceUnavailable (it may
    pass). Never the body: it may echo what we sent."""
    if status in (401, 403):
        return SourceRefused(f"{vendor} refused the API key ({status}): check {setting}")
    if status == 404:
        return SourceRefused(f"{vendor} knows no incident {incident_id} (404)")
    if status >= 500 or status in (408, 409):
        return SourceUnavailable(f"{vendor} answered {status}")
    return SourceRefused(f"{vendor} refused the request ({status})")


def unreachable(vendor: str, base_url: str, err: Exception) -> SourceUnavailable:
    if isinstance(err, httpx.TimeoutException):
        return SourceUnavailable(f"{vendor} at {base_url} did not answer within the time allowed")
    return SourceUnavailable(f"could not reach {vendor} at {base_url}: {network_failure(err)}")


def unreadable(vendor: str, err: Exception) -> SourceUnavailable:
    return SourceUnavailable(f"{vendor}'s answer is not what its API documents ({err!r:.200})")


def collected(
    *,
    source: str,
    source_id: str,
    at: datetime,
    kind: EventKind,
    author: str | None,
    text: str,
    link: str | None,
) -> CollectedEvent:
    """A vendor's event, bounded: text cut to EVENT_TEXT_MOST, the author one line, a time
    without a zone read as UTC (both vendors document UTC), a link only when http(s)."""
    return CollectedEvent(
        source=source,
        source_id=source_id,
        at=at if at.tzinfo is not None else at.replace(tzinfo=UTC),
        kind=kind,
        author=one_line(author, AUTHOR_MOST) or None if author else None,
        text=cut(text.strip(), EVENT_TEXT_MOST),
        link=link if link and _WEB.match(link) and len(link) <= LINK_MOST else None,
    )


def oldest_first(events: list[CollectedEvent], most: int) -> list[CollectedEvent]:
    return sorted(events, key=lambda event: (event.at, event.source_id))[:most]
