"""PagerDuty's own record of an incident: its log entries and notes (REST API v2), read with the
official `pagerduty` client (RestApiV2Client).

    GET /incidents/{id}/log_entries?is_overview=false&include[]=channels  (offset/limit/more)
    GET /incidents/{id}/notes                                             (not paginated)

The incident id is PagerDuty's (the webhook keeps `event.data.id`). Which log entries become
events, and as what:

- trigger_log_entry: the alert; acknowledge_log_entry and resolve_log_entry: the milestones;
  status_update_log_entry: a status update (its `message`).
- escalate, assign, delegate, exhaust_escalation_path and repeat_escalation_path: escalations,
  who the incident went to and when.
- notify_log_entry is left out: one per person, per contact method, per escalation level, it
  says "paged by SMS" for what an escalation or assignment entry already says happened.
- annotate_log_entry is left out too: it is the note, which /notes gives whole under its own id.
- Anything else (snooze, urgency or priority changes, unacknowledge, ...) is not proposed.

The client's defaults do not suit an activity: it retries a 429 forever with its own backoff
(ignoring Retry-After) and a refused connection three times with sleeps. Here it makes one
attempt per request; a 429 waits its Retry-After (common.RateLimitWaits) and is tried again.
The client speaks https:// only (the tests' server has a certificate of its own, which
`verify` trusts). The base URL is the operator's setting (as Jira's is), not a URL from a
draft, so the outbound policy's allow-list does not apply.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx2
import pagerduty

from followthrough.domain.incident import Incident
from followthrough.domain.timeline import EVENTS_PER_SOURCE_MOST, CollectedEvent, EventKind
from followthrough.integrations.timeline import SourceRefused
from followthrough.integrations.timeline.common import (
    REQUEST_SECONDS,
    RateLimitWaits,
    Sleep,
    VendorCollector,
    event,
    failed_answer,
    oldest_first,
    unreachable,
    unreadable,
    vendor_id,
    vendor_time,
)

SOURCE = "pagerduty"
VENDOR = "PagerDuty"
DEFAULT_URL = "https://api.pagerduty.com"
SETTING = "FOLLOWTHROUGH_PAGERDUTY_API_TOKEN"
PAGE_SIZE = 100  # the most PagerDuty serves per page

KINDS: dict[str, EventKind] = {
    "trigger_log_entry": EventKind.ALERT,
    "acknowledge_log_entry": EventKind.ACKNOWLEDGE,
    "escalate_log_entry": EventKind.ESCALATION,
    "assign_log_entry": EventKind.ESCALATION,
    "delegate_log_entry": EventKind.ESCALATION,
    "exhaust_escalation_path_log_entry": EventKind.ESCALATION,
    "repeat_escalation_path_log_entry": EventKind.ESCALATION,
    "status_update_log_entry": EventKind.STATUS_UPDATE,
    "resolve_log_entry": EventKind.RESOLVE,
}


class _Client(pagerduty.RestApiV2Client):
    """The official client, one attempt per request, a 429 waited out as Retry-After says."""

    def __init__(
        self,
        token: str,
        base_url: str,
        timeout: float,
        waits: RateLimitWaits,
        verify: ssl.SSLContext | bool,
    ) -> None:
        super().__init__(token, base_url=base_url, verify=verify)
        self.timeout = timeout  # type: ignore[assignment]  # declared int; httpx takes a float
        self.max_network_attempts = 0  # a refused connection raises at once
        self.sleep_timer = 0  # its own backoff; Retry-After is waited in postprocess
        self.waits = waits

    def postprocess(self, response: Any, suffix: str | None = None) -> None:
        super().postprocess(response, suffix)
        if response.status_code == 429:
            self.waits.wait(response)


class PagerDutyCollector(VendorCollector):
    source = SOURCE
    vendor = VENDOR
    default_url = DEFAULT_URL

    def __init__(
        self,
        token: str,
        base_url: str | None = None,
        *,
        timeout: float = REQUEST_SECONDS,
        sleep: Sleep = time.sleep,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        super().__init__(token, base_url, timeout=timeout, sleep=sleep)
        self.verify = verify  # the tests' server has a certificate of its own

    def collect(self, incident: Incident) -> list[CollectedEvent]:
        waits = self.rate_limit_waits()
        try:
            client = _Client(self.credential, self.base_url, self.timeout, waits, self.verify)
        except pagerduty.UrlError as err:  # the client speaks https:// only
            raise SourceRefused(f"{err}: check FOLLOWTHROUGH_PAGERDUTY_API_URL") from None
        path = f"/incidents/{quote(incident.id, safe='')}"  # one path segment, whatever it holds
        try:
            events = [
                found
                for entry in self._log_entries(client, path)
                if (found := _from_log_entry(entry)) is not None
            ]
            notes = client.rget(f"{path}/notes")
            events += [_from_note(note, incident.url) for note in _dicts(notes)]
        except pagerduty.Error as err:
            raise _translated(err, incident.id, self.base_url) from None
        except (httpx2.HTTPError, ValueError) as err:  # an answer that is not PagerDuty's JSON
            raise unreadable(VENDOR, err) from None
        finally:
            client.close()
        return oldest_first(SOURCE, events)

    def _log_entries(self, client: _Client, path: str) -> Iterator[dict[str, Any]]:
        """Every log entry, page by page; stops reading once there are more than kept."""
        params = {"is_overview": "false", "include[]": ["channels"]}
        for n, entry in enumerate(
            client.iter_all(f"{path}/log_entries", params=params, page_size=PAGE_SIZE)
        ):
            if n >= 2 * EVENTS_PER_SOURCE_MOST:  # notify entries are many; proposed ones fewer
                return
            if isinstance(entry, dict):
                yield entry


def _from_log_entry(entry: dict[str, Any]) -> CollectedEvent | None:
    kind = KINDS.get(str(entry.get("type")))
    if kind is None:
        return None
    text = str(entry.get("summary") or "")
    if kind is EventKind.STATUS_UPDATE and entry.get("message"):
        text = str(entry["message"])
    elif kind is EventKind.ALERT:
        details = entry.get("event_details")
        description = details.get("description") if isinstance(details, dict) else None
        if description and description not in text:
            text = f"{text}: {description}" if text else str(description)
    entry_id = vendor_id(SOURCE, "a log entry (id)", entry.get("id"))
    return event(
        SOURCE,
        entry_id,
        vendor_time(SOURCE, f"log entry {entry_id}: created_at", entry.get("created_at")),
        kind,
        author=_summary(entry.get("agent")),
        text=text,
        link=entry.get("html_url"),
    )


def _from_note(note: dict[str, Any], incident_url: str | None) -> CollectedEvent:
    # A note has no page of its own: it links to its incident's.
    note_id = vendor_id(SOURCE, "a note (id)", note.get("id"))
    return event(
        SOURCE,
        note_id,
        vendor_time(SOURCE, f"note {note_id}: created_at", note.get("created_at")),
        EventKind.NOTE,
        author=_summary(note.get("user")),
        text=str(note.get("content") or ""),
        link=incident_url,
    )


def _summary(reference: object) -> str | None:
    """A reference's `summary`: a user's name, a service's, an integration's."""
    if isinstance(reference, dict) and reference.get("summary"):
        return str(reference["summary"])
    return None


def _dicts(found: object) -> list[dict[str, Any]]:
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def _translated(err: pagerduty.Error, incident_id: str, base: str) -> Exception:
    response = err.response
    if response is None:
        return unreachable(VENDOR, base, err.__cause__ or err)
    if 200 <= response.status_code < 300:  # the client could not read a successful answer
        return unreadable(VENDOR, err)
    return failed_answer(
        VENDOR,
        response.status_code,
        what=f"incident {incident_id}",
        setting=SETTING,
        said=_said(response),
    )


def _said(response: Any) -> str:
    """PagerDuty's error message and errors (its `error` object), else nothing."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    parts = [str(error.get("message") or ""), *map(str, error.get("errors") or [])]
    return "; ".join(part for part in parts if part)
