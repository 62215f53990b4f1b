"""Opsgenie's own record of an alert: its log and notes (Alert API v2), read with Opsgenie's
Python SDK (`opsgenie-sdk` 2.1.5, its AlertApi).

    GET /v2/alerts/{id}/logs?identifierType=id&order=asc    (offset, paging.next)
    GET /v2/alerts/{id}/notes?identifierType=id&order=asc   (offset, paging.next)

The incident id is the alert's id (the webhook keeps `alert.alertId`). The SDK is from 2021 and
still installs and works with urllib3 2.x; its defaults do not suit an activity, so its retries
(random exponential backoff for up to a minute, Retry-After ignored) are switched off: a 429
waits its Retry-After here (`RateLimitWaits`, bounded) and is tried again. It wraps every failure
in tenacity's RetryError, which is unwrapped, and decodes the body as JSON before it looks at the
status, so a proxy's HTML error page surfaces as a ValueError: both become our errors.

A log entry has no action field, only Opsgenie's sentence ("Alert acknowledged via web",
"Alert closed by john.doe@example.com", "Escalated to next ..."), so its kind is read from that
wording; notifications ("Sent notification ...") are left out (one per person and channel), and
so is "note added", since /notes gives the note whole. What is not recognised is not proposed.
Neither a log entry nor a note has an id: each is known by its `offset` (unique per alert).
The base URL is the operator's setting, so the outbound policy's allow-list does not apply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import opsgenie_sdk
import structlog
import tenacity
import urllib3

from followthrough.domain.incident import Incident
from followthrough.domain.timeline import EVENTS_PER_SOURCE_MOST, CollectedEvent, EventKind
from followthrough.integrations.outbound import network_failure, retry_after
from followthrough.integrations.timeline import SourceRefused, SourceUnavailable
from followthrough.integrations.timeline.common import (
    RateLimitWaits,
    event,
    vendor_id,
    vendor_time,
)

log = structlog.get_logger(__name__)

SOURCE = "opsgenie"
DEFAULT_URL = "https://api.opsgenie.com"
SETTINGS_HINT = "check FOLLOWTHROUGH_OPSGENIE_API_KEY"
PAGE_SIZE = 100  # the most Opsgenie serves per page
PAGES_MOST = 2 * EVENTS_PER_SOURCE_MOST // PAGE_SIZE  # notifications are many; kept ones fewer

# First match wins: notifications and notes are left out (None).
_LOG_KINDS: list[tuple[re.Pattern[str], EventKind | None]] = [
    (re.compile(r"\bnotification\b|\bnotified\b", re.I), None),
    (re.compile(r"\bnote\b", re.I), None),
    (re.compile(r"\backnowledged\b", re.I), EventKind.ACKNOWLEDGE),
    (re.compile(r"\bclosed\b", re.I), EventKind.RESOLVE),
    (re.compile(r"\bescalat|\bassigned\b|\bownership\b", re.I), EventKind.ESCALATION),
    (re.compile(r"\bcreated\b", re.I), EventKind.ALERT),
]


class OpsgenieCollector:
    source = SOURCE

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_URL,
        *,
        timeout: float = 30.0,
        waits: RateLimitWaits | None = None,
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.waits = waits

    def applies_to(self, incident: Incident) -> bool:
        return incident.source == SOURCE

    def collect(self, incident: Incident) -> list[CollectedEvent]:
        waits = self.waits or RateLimitWaits(SOURCE)
        configuration = opsgenie_sdk.configuration.Configuration()
        configuration.host = self.base_url
        configuration.api_key["Authorization"] = self.api_key
        configuration.api_key_prefix["Authorization"] = "GenieKey"
        configuration.retry_enabled = False
        client = opsgenie_sdk.api_client.ApiClient(configuration=configuration)
        alerts = opsgenie_sdk.AlertApi(api_client=client)
        try:
            events = [
                found
                for entry in self._pages(alerts.list_logs, incident.id, waits)
                if (found := _from_log(entry, incident.url)) is not None
            ]
            events += [
                _from_note(note, incident.url)
                for note in self._pages(alerts.list_notes, incident.id, waits)
            ]
        finally:
            client.rest_client.pool_manager.clear()
        events.sort(key=lambda e: e.at)
        if len(events) > EVENTS_PER_SOURCE_MOST:
            log.info("timeline.events_cut", source=SOURCE, found=len(events))
        return events[:EVENTS_PER_SOURCE_MOST]

    def _pages(
        self, listing: Callable[..., Any], alert_id: str, waits: RateLimitWaits
    ) -> Iterator[Any]:
        """Every item of a paginated listing, oldest first, following paging.next's offset."""
        offset: str | None = None
        for _ in range(PAGES_MOST):
            page = self._call(listing, alert_id, offset, waits)
            yield from page.data or []
            following = _next_offset(page.paging.next if page.paging else None)
            if not page.data or following is None or following == offset:
                return
            offset = following

    def _call(
        self,
        listing: Callable[..., Any],
        alert_id: str,
        offset: str | None,
        waits: RateLimitWaits,
    ) -> Any:
        while True:
            try:
                kwargs: dict[str, Any] = {"offset": offset} if offset is not None else {}
                return listing(
                    alert_id,
                    identifier_type="id",
                    direction="next",
                    limit=PAGE_SIZE,
                    order="asc",
                    _request_timeout=self.timeout,
                    **kwargs,
                )
            except Exception as err:  # the SDK raises tenacity's RetryError around everything
                failure = _unwrapped(err)
                if getattr(failure, "status", None) == 429:
                    waits.wait(retry_after(_Headers(failure)))
                    continue
                raise _translated(failure, alert_id, self.base_url) from None


class _Headers:
    """The SDK's exception as something with `headers`, for retry_after."""

    def __init__(self, err: BaseException) -> None:
        self.headers = getattr(err, "headers", None) or {}


def _unwrapped(err: BaseException) -> BaseException:
    if isinstance(err, tenacity.RetryError):
        inner = err.last_attempt.exception()
        return inner if inner is not None else err
    return err


def _translated(err: BaseException, alert_id: str, base: str) -> Exception:
    if isinstance(err, urllib3.exceptions.HTTPError):
        return SourceUnavailable(f"could not reach Opsgenie at {base}: {network_failure(err)}")
    if isinstance(err, ValueError):  # the SDK decodes every body as JSON, error pages too
        return SourceUnavailable(f"Opsgenie at {base} answered with something other than JSON")
    if not isinstance(err, opsgenie_sdk.exceptions.OpenApiException):
        raise err  # a bug here, not Opsgenie's answer: let it be seen
    status = getattr(err, "status", None)
    if not isinstance(status, int):  # an answer the SDK could not read (a field's type)
        reason = str(getattr(err, "reason", "") or type(err).__name__)[:300]
        return SourceRefused(f"Opsgenie's answer is not as documented: {reason}")
    said = _said(err)
    tail = f": {said}" if said else ""
    if status == 401:
        return SourceRefused(f"Opsgenie refused the API key (401): {SETTINGS_HINT}")
    if status in (402, 403):
        return SourceRefused(f"Opsgenie forbids this API key reading alerts ({status}){tail}")
    if status == 404:
        return SourceRefused(f"Opsgenie has no alert {alert_id} (404){tail}")
    if status in (408, 429) or status >= 500:
        return SourceUnavailable(f"Opsgenie answered {status}{tail}")
    return SourceRefused(f"Opsgenie refused reading alert {alert_id} ({status}){tail}")


def _said(err: BaseException) -> str:
    """Opsgenie's `message`, else nothing."""
    try:
        body = json.loads(getattr(err, "body", None) or "")
    except (TypeError, ValueError):
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return str(message)[:300] if message else ""


def _next_offset(url: str | None) -> str | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("offset")
    return values[0] if values else None


def _from_log(entry: Any, link: str | None) -> CollectedEvent | None:
    text = str(entry.log or "")
    kind = next((kind for pattern, kind in _LOG_KINDS if pattern.search(text)), None)
    if kind is None:
        return None
    offset = vendor_id(SOURCE, "a log entry (offset)", entry.offset)
    return event(
        SOURCE,
        f"log-{offset}",
        _aware(vendor_time(SOURCE, f"log entry {offset}: createdAt", entry.created_at)),
        kind,
        author=entry.owner,
        text=text,
        link=link,
    )


def _from_note(note: Any, link: str | None) -> CollectedEvent:
    offset = vendor_id(SOURCE, "a note (offset)", note.offset)
    return event(
        SOURCE,
        f"note-{offset}",
        _aware(vendor_time(SOURCE, f"note {offset}: createdAt", note.created_at)),
        EventKind.NOTE,
        author=note.owner,
        text=str(note.note or ""),
        link=link,
    )


def _aware(when: datetime) -> datetime:
    # dateutil reads "Z" as tzlocal() on a machine whose zone is UTC: the same instant.
    return when.astimezone(UTC)
