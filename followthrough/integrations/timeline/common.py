"""What the vendor collectors (PagerDuty, Opsgenie, incident.io, FireHydrant) share, done one way:

- `event(...)`: a vendor's event within CollectedEvent's bounds (text cut to EVENT_TEXT_MOST,
  the author one line, a link only when a plain http(s) URL), refused naming the field when what
  is left does not fit; `vendor_time` and `vendor_id` read a record's time and id the same way.
- `RateLimitWaits`: a 429 waits its Retry-After (a short while when it gives none), at most
  WAITS_MOST times and WAIT_MOST_SECONDS in all per collection of one source. A collector runs
  inside the collection activity, which has a time of its own, so past that the source is
  unavailable for now and "collect again" finds it later.
- `VendorCollector`: what each collector is given (credential, base URL, request time, sleep).
- `failed_answer`, `unreachable`, `unreadable`: which HTTP answers are refusals (they will
  repeat) and which may pass, in the same words for every vendor.

The base URLs come from the operator's settings, like Jira's and Slack's, so they are not judged
by the outbound policy's allow-list (that is for URLs a postmortem's author writes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import structlog
from pydantic import ValidationError

from followthrough.domain.bounds import cut, one_line
from followthrough.domain.incident import Incident
from followthrough.domain.problems import format_validation_error
from followthrough.domain.timeline import (
    EVENT_TEXT_MOST,
    EVENTS_PER_SOURCE_MOST,
    CollectedEvent,
    EventKind,
)
from followthrough.hrefs import safe_url
from followthrough.integrations.outbound import network_failure, retry_after
from followthrough.integrations.timeline import SourceRefused, SourceUnavailable

log = structlog.get_logger(__name__)

REQUEST_SECONDS = 30.0  # one request; the collection activity bounds the whole
WAIT_MOST_SECONDS = 60.0  # in all, per collection of one source
WAITS_MOST = 5  # 429s answered by waiting, per collection of one source
# Opsgenie documents its 429 with X-RateLimit-State, not Retry-After: its limits are per second
# and per minute, so a 429 without Retry-After waits this long before the next try.
UNHINTED_WAIT_SECONDS = 2.0
AUTHOR_MOST = 200  # CollectedEvent.author
LINK_MOST = 2000  # CollectedEvent.link
SAID_MOST = 300  # a vendor's own error message, as quoted in ours

Sleep = Callable[[float], None]


@dataclass
class RateLimitWaits:
    """The waits one collection of one source has spent; `sleep` is replaceable so tests need
    not sleep."""

    vendor: str
    sleep: Sleep = time.sleep
    waited: list[float] = field(default_factory=list)

    def wait(self, answer: object) -> None:
        """Sleep as the 429 `answer` (anything with `headers`) asks, or raise SourceUnavailable
        when that would go past the bound."""
        asked = retry_after(answer)
        wait = UNHINTED_WAIT_SECONDS if asked is None else asked
        spent = sum(self.waited)
        if len(self.waited) >= WAITS_MOST:
            raise SourceUnavailable(
                f"{self.vendor} kept rate limiting (429 after {len(self.waited)} waits, "
                f"{spent:g}s in all)"
            )
        if spent + wait > WAIT_MOST_SECONDS:
            raise SourceUnavailable(
                f"{self.vendor} is rate limiting (429) and asked us to retry after {wait:g}s; "
                f"already waited {spent:g}s of at most {WAIT_MOST_SECONDS:g}s"
            )
        self.waited.append(wait)
        self.sleep(wait)


class VendorCollector:
    """What every vendor collector is given and does alike: a credential from the settings, the
    vendor's base URL (its real one unless the settings say otherwise), the time one request may
    take, and a fresh `RateLimitWaits` for each collection. Each sets `source` (the webhook
    source whose incidents it knows), `vendor` (its name in messages) and `default_url`."""

    source: str
    vendor: str
    default_url: str

    def __init__(
        self,
        credential: str,
        base_url: str | None = None,
        *,
        timeout: float = REQUEST_SECONDS,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.credential = credential
        self.base_url = (base_url or self.default_url).rstrip("/")
        self.timeout = timeout
        self.sleep = sleep

    def applies_to(self, incident: Incident) -> bool:
        return incident.source == self.source

    def rate_limit_waits(self) -> RateLimitWaits:
        return RateLimitWaits(self.vendor, self.sleep)


def failed_answer(
    vendor: str, status: int, *, what: str, setting: str, said: str = ""
) -> Exception:
    """A vendor's HTTP error status as SourceRefused (it will repeat) or SourceUnavailable (it
    may pass). `what` is what was read ("incident P123"); `said` is the vendor's own error
    message where its API documents one, never the raw body (it may echo what we sent)."""
    tail = f": {said[:SAID_MOST]}" if said else ""
    if status == 401:
        return SourceRefused(f"{vendor} refused the credentials (401): check {setting}")
    if status in (402, 403):  # Opsgenie answers 402 when the plan does not include the API
        return SourceRefused(
            f"{vendor} forbids reading {what} with these credentials ({status}){tail}; "
            f"check {setting}"
        )
    if status == 404:
        return SourceRefused(f"{vendor} has no {what} (404){tail}")
    if status in (408, 409, 429) or status >= 500:
        return SourceUnavailable(f"{vendor} answered {status}{tail}")
    return SourceRefused(f"{vendor} refused reading {what} ({status}){tail}")


def unreachable(vendor: str, base_url: str, err: BaseException) -> SourceUnavailable:
    if isinstance(err, httpx.TimeoutException):
        return SourceUnavailable(f"{vendor} at {base_url} did not answer within the time allowed")
    return SourceUnavailable(f"could not reach {vendor} at {base_url}: {network_failure(err)}")


def unreadable(vendor: str, err: BaseException) -> SourceUnavailable:
    """An answer that is not the vendor's documented JSON (a proxy's page, a record its client
    library cannot read): it may be a passing fault, so collecting again may succeed."""
    return SourceUnavailable(f"{vendor}'s answer is not what its API documents ({err!r:.200})")


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
            text=cut(text.strip(), EVENT_TEXT_MOST),
            link=kept_link if kept_link and len(kept_link) <= LINK_MOST else None,
        )
    except ValidationError as err:
        problems = "; ".join(format_validation_error(err))
        raise SourceRefused(f"{source} sent an event we cannot keep: {problems}") from None


def read_time(value: object) -> datetime | None:
    """A vendor's ISO 8601 time in UTC, or None when it is not one. A time without a zone is
    read as UTC: every one of these vendors documents its times in UTC."""
    if isinstance(value, datetime):
        when: datetime = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    # dateutil (Opsgenie's SDK) reads "Z" as tzlocal() on a machine whose zone is UTC.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def vendor_time(source: str, what: str, value: object) -> datetime:
    """A vendor's time (read_time); SourceRefused naming the field when it is not one."""
    when = read_time(value)
    if when is None:
        raise SourceRefused(f"{source} sent {what} {str(value)[:40]!r}, not a time")
    return when


def vendor_id(source: str, what: str, value: object) -> str:
    """A vendor's id for an event; SourceRefused naming the field when it has none."""
    if not isinstance(value, str | int) or not str(value).strip():
        raise SourceRefused(f"{source} sent {what} without an id")
    return str(value)


def oldest_first(source: str, events: list[CollectedEvent]) -> list[CollectedEvent]:
    """The events oldest first (ties by id, so collecting again orders them alike), at most
    EVENTS_PER_SOURCE_MOST: the oldest are kept."""
    events = sorted(events, key=lambda e: (e.at, e.source_id))
    if len(events) > EVENTS_PER_SOURCE_MOST:
        log.info("timeline.events_cut", source=source, found=len(events))
    return events[:EVENTS_PER_SOURCE_MOST]
