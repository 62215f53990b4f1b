"""FireHydrant: an incident's timeline events, over httpx (FireHydrant publishes no Python client
on PyPI; its SDKs are TypeScript and Go).

`GET /v1/incidents/{incident_id}/events?page=&per_page=` (list incident events) answers
`{"data": [IncidentEventEntity...], "pagination": {"count", "page", "items", "pages", "last",
"prev", "next"}}`, `next` null on the last page. An event has `id`, `type`, `occurred_at`,
`author` ({id, name, source, email}), `visibility` and a `data` object whose shape depends on
the type (FireHydrant's schema leaves it open); its text is read from the fields those types
carry (`body`, `note`, `message`, `text`, `description`, `summary`, `title`).

What is proposed, and as what:
- note -> note; chat_message (a message someone added to the timeline) -> chat message;
- general_update (an incident update posted to the team or status page) -> status update;
- incident_status (a milestone change) -> acknowledge or resolve for those milestones, a status
  update naming the milestone for the others (detected, investigating, mitigated, ...);
- alert_linked -> alert (a detection candidate).
Everything else (role, task, ticket, impact and team changes, tour steps, change links, bulk
updates) is bookkeeping the owner would only drop, and is left out.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from followthrough.domain.incident import Incident
from followthrough.domain.timeline import EVENTS_PER_SOURCE_MOST, CollectedEvent, EventKind
from followthrough.integrations.timeline.common import (
    RateLimitWaits,
    VendorCollector,
    event,
    failed_answer,
    oldest_first,
    read_time,
    unreachable,
    unreadable,
)

SOURCE = "firehydrant"  # the webhook source's name: its incidents are the ones this knows
VENDOR = "FireHydrant"
SETTING = "FOLLOWTHROUGH_FIREHYDRANT_API_KEY"
PER_PAGE = 100
PAGES_MOST = EVENTS_PER_SOURCE_MOST // 10  # a pagination that never ends, ended

_KINDS = {
    "note": EventKind.NOTE,
    "chat_message": EventKind.CHAT_MESSAGE,
    "general_update": EventKind.STATUS_UPDATE,
    "alert_linked": EventKind.ALERT,
}
_MILESTONE_KINDS = {"acknowledged": EventKind.ACKNOWLEDGE, "resolved": EventKind.RESOLVE}
_TEXT_FIELDS = ("body", "note", "message", "text", "description", "summary", "title")


class FireHydrantCollector(VendorCollector):
    source = SOURCE
    vendor = VENDOR
    default_url = "https://api.firehydrant.io"

    def collect(self, incident: Incident) -> list[CollectedEvent]:
        waits = self.rate_limit_waits()
        path = f"/v1/incidents/{quote(incident.id, safe='')}/events"
        events: list[CollectedEvent] = []
        with httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.credential}", "Accept": "application/json"},
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
        ) as client:
            page: int | None = 1
            for _ in range(PAGES_MOST):
                if page is None or len(events) >= EVENTS_PER_SOURCE_MOST:
                    break
                body = self._get(client, path, page, incident, waits)
                data = body.get("data")
                if not isinstance(data, list):
                    raise unreadable(VENDOR, TypeError("no data list"))
                events.extend(e for raw in data if (e := _event(raw, incident)) is not None)
                page = _next_page(body.get("pagination"), page, bool(data))
        return oldest_first(SOURCE, events)

    def _get(
        self, client: httpx.Client, path: str, page: int, incident: Incident, waits: RateLimitWaits
    ) -> dict[str, Any]:
        while True:
            try:
                response = client.get(path, params={"page": page, "per_page": PER_PAGE})
            except httpx.HTTPError as err:
                raise unreachable(VENDOR, self.base_url, err) from None
            if response.status_code == 429:
                waits.wait(response)
                continue
            if response.status_code != 200:
                raise failed_answer(
                    VENDOR, response.status_code, what=f"incident {incident.id}", setting=SETTING
                )
            try:
                body = response.json()
            except ValueError as err:
                raise unreadable(VENDOR, err) from None
            if not isinstance(body, dict):
                raise unreadable(VENDOR, TypeError("not a JSON object"))
            return body


def _next_page(pagination: object, page: int, any_items: bool) -> int | None:
    """The next page number, or None on the last (or an empty, or a backwards) page."""
    if not any_items or not isinstance(pagination, dict):
        return None
    following = pagination.get("next")
    if isinstance(following, int) and not isinstance(following, bool) and following > page:
        return following
    return None


def _event(raw: object, incident: Incident) -> CollectedEvent | None:
    """One event as proposed, or None: a type not worth proposing, or one without an id or a
    time (FireHydrant's schema makes every field optional)."""
    if not isinstance(raw, dict):
        return None
    kind_name, event_id = raw.get("type"), raw.get("id")
    at = read_time(raw.get("occurred_at")) or read_time(raw.get("created_at"))
    if not isinstance(event_id, str) or not event_id or at is None:
        return None
    data = raw.get("data")
    data = data if isinstance(data, dict) else {}
    text = _text(data)
    if kind_name == "incident_status":
        milestone = _milestone(data)
        if milestone is None:
            return None
        kind = _MILESTONE_KINDS.get(milestone, EventKind.STATUS_UPDATE)
        text = "\n".join(part for part in (f"Milestone: {milestone}", text) if part)
    elif isinstance(kind_name, str) and kind_name in _KINDS:
        kind = _KINDS[kind_name]
    else:
        return None
    author = raw.get("author")
    name = author.get("name") if isinstance(author, dict) else None
    return event(
        SOURCE,
        event_id,
        at,
        kind,
        author=name if isinstance(name, str) else None,
        text=text,
        link=incident.url,
    )


def _milestone(data: dict[str, Any]) -> str | None:
    for field in ("milestone", "current_milestone", "type", "status"):
        value = data.get(field)
        if isinstance(value, dict):
            value = value.get("slug") or value.get("type") or value.get("name")
        if isinstance(value, str) and value:
            return value.strip().lower()
    return None


def _text(data: dict[str, Any]) -> str:
    for field in _TEXT_FIELDS:
        value = data.get(field)
        if isinstance(value, str) and value.strip():
            return value
    return ""
