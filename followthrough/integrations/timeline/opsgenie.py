"""Opsgenie's own record of an alert: its log and notes (Alert API v2), read with Opsgenie's
Python SDK (`opsgenie-sdk` 2.1.5, its AlertApi).

    GET /v2/alerts/{id}/logs?identifierType=id&order=asc    (offset, paging.next)
    GET /v2/alerts/{id}/notes?identifierType=id&order=asc   (offset, paging.next)

The incident id is the alert's id (the webhook keeps `alert.alertId`). The SDK is from 2021 and
still installs and works with urllib3 2.x; its defaults do not suit an activity, so its retries
(random exponential backoff for up to a minute, Retry-After ignored) are switched off: a 429
waits its Retry-After here (common.RateLimitWaits) and is tried again. It wraps every failure
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
from typing import Any
from urllib.parse import parse_qs, urlsplit

import opsgenie_sdk
import tenacity
import urllib3

from followthrough.domain.incident import Incident
from followthrough.domain.timeline import EVENTS_PER_SOURCE_MOST, CollectedEvent, EventKind
from followthrough.integrations.timeline.common import (
    RateLimitWaits,
    VendorCollector,
    event,
    failed_answer,
    oldest_first,
    unreachable,
    unreadable,
    vendor_id,
    vendor_time,
)

SOURCE = "opsgenie"
VENDOR = "Opsgenie"
DEFAULT_URL = "https://api.opsgenie.com"
SETTING = "FOLLOWTHROUGH_OPSGENIE_API_KEY"
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


class OpsgenieCollector(VendorCollector):
    source = SOURCE
    vendor = VENDOR
    default_url = DEFAULT_URL

    def collect(self, incident: Incident) -> list[CollectedEvent]:
        waits = self.rate_limit_waits()
        configuration = opsgenie_sdk.configuration.Configuration()
        configuration.host = self.base_url
        configuration.api_key["Authorization"] = self.credential
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
        return oldest_first(SOURCE, events)

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
                    waits.wait(failure)  # the SDK's exception keeps the answer's headers
                    continue
                raise _translated(failure, alert_id, self.base_url) from None


def _unwrapped(err: BaseException) -> BaseException:
    if isinstance(err, tenacity.RetryError):
        inner = err.last_attempt.exception()
        return inner if inner is not None else err
    return err


def _translated(err: BaseException, alert_id: str, base: str) -> Exception:
    if isinstance(err, urllib3.exceptions.HTTPError):
        return unreachable(VENDOR, base, err)
    if isinstance(err, ValueError):  # the SDK decodes every body as JSON, error pages too
        return unreadable(VENDOR, err)
    if not isinstance(err, opsgenie_sdk.exceptions.OpenApiException):
        raise err  # a bug here, not Opsgenie's answer: let it be seen
    status = getattr(err, "status", None)
    if not isinstance(status, int):  # an answer the SDK could not read (a field's type)
        return unreadable(VENDOR, err)
    return failed_answer(VENDOR, status, what=f"alert {alert_id}", setting=SETTING, said=_said(err))


def _said(err: BaseException) -> str:
    """Opsgenie's `message`, else nothing."""
    try:
        body = json.loads(getattr(err, "body", None) or "")
    except (TypeError, ValueError):
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return str(message) if message else ""


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
        vendor_time(SOURCE, f"log entry {offset}: createdAt", entry.created_at),
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
        vendor_time(SOURCE, f"note {offset}: createdAt", note.created_at),
        EventKind.NOTE,
        author=note.owner,
        text=str(note.note or ""),
        link=link,
    )
