"""incident.io: an incident's updates and its timeline items, with incident.io's own SDK
(`incident-io`, generated from the published OpenAPI schema; synchronous, base URL set here).

- `GET /v2/incident_updates?incident_id=` (List Incident Updates V2): each update someone posted,
  with its message, the status it moved the incident to and the new severity, if any. Each
  becomes a status update: incident.io's updates are what its responders told the organisation.
- `GET /v2/incident_timeline_items?incident_id=` (List Incident Timeline Items V2): the curated
  timeline, oldest first, with a title, a markdown description and who wrote it. Each becomes a
  note at the time it describes (`timestamp`, not when it was written).

Both are cursor-paginated: `page_size` and `after`, the next cursor in `pagination_meta.after`,
none on the last page. Incident timestamps (impact started, fixed, resolved) are not collected
here: the resolution webhook already carries them into the incident's milestones.

The SDK returns documented errors as values and parses their bodies; a response hook looks at
the status first, so every HTTP error, documented or not, JSON or not, is judged here the same
way (common.failed_answer), and a 429 is waited out by its Retry-After (common.RateLimitWaits).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import httpx
from incident_io import AuthenticatedClient
from incident_io.api.incident_timeline_items_v2 import incident_timeline_items_v2_list
from incident_io.api.incident_updates_v2 import incident_updates_v2_list
from incident_io.models import (
    ActorV2,
    IncidentTimelineItemsListResultV2,
    IncidentTimelineItemV2,
    IncidentUpdatesListResultV2,
    IncidentUpdateV2,
    PaginationMetaResultV2,
)
from incident_io.types import UNSET, Response, Unset

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
    vendor_time,
)

SOURCE = "incidentio"  # the webhook source's name: its incidents are the ones this knows
VENDOR = "incident.io"
SETTING = "FOLLOWTHROUGH_INCIDENT_IO_API_KEY"
PAGE_SIZE = 50  # well under the most any incident.io list endpoint documents

Result = TypeVar("Result")
Item = TypeVar("Item")


class _Answered(Exception):
    """An HTTP error status, caught by the response hook before the SDK parses the body."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _judge_first(response: httpx.Response) -> None:
    if response.status_code >= 300:  # redirects are not followed: an API does not move
        response.read()
        raise _Answered(response)


class IncidentIoCollector(VendorCollector):
    source = SOURCE
    vendor = VENDOR
    default_url = "https://api.incident.io"

    def collect(self, incident: Incident) -> list[CollectedEvent]:
        waits = self.rate_limit_waits()
        with AuthenticatedClient(
            base_url=self.base_url,
            token=self.credential,
            timeout=httpx.Timeout(self.timeout),
            headers={"User-Agent": "followthrough"},
            httpx_args={"event_hooks": {"response": [_judge_first]}},
        ) as client:
            updates: list[IncidentUpdateV2] = self._all(
                _pages(incident_updates_v2_list, client, incident),
                lambda result: (result.incident_updates, result.pagination_meta),
                IncidentUpdatesListResultV2,
                incident,
                waits,
            )
            items: list[IncidentTimelineItemV2] = self._all(
                _pages(incident_timeline_items_v2_list, client, incident),
                lambda result: (result.incident_timeline_items, result.pagination_meta),
                IncidentTimelineItemsListResultV2,
                incident,
                waits,
            )
        return oldest_first(
            SOURCE,
            [
                *(_update_event(update, incident) for update in updates),
                *(_item_event(item, incident) for item in items),
            ],
        )

    def _all(
        self,
        page: Callable[[str | Unset], Response[Any]],
        read: Callable[[Result], tuple[list[Item], PaginationMetaResultV2 | Unset]],
        expected: type[Result],
        incident: Incident,
        waits: RateLimitWaits,
    ) -> list[Item]:
        """Every page's items, up to EVENTS_PER_SOURCE_MOST."""
        found: list[Item] = []
        after: str | Unset = UNSET
        seen: set[str] = set()
        while len(found) < EVENTS_PER_SOURCE_MOST:
            items, meta = read(self._get(partial(page, after), expected, incident, waits))
            found.extend(items)
            after = _next(meta, seen, bool(items))
            if isinstance(after, Unset):
                break
        return found[:EVENTS_PER_SOURCE_MOST]

    def _get(
        self,
        request: Callable[[], Response[Any]],
        expected: type[Result],
        incident: Incident,
        waits: RateLimitWaits,
    ) -> Result:
        while True:
            try:
                answer = request()
            except _Answered as answered:
                if answered.response.status_code == 429:
                    waits.wait(answered.response)
                    continue
                status = answered.response.status_code
                raise failed_answer(
                    VENDOR, status, what=f"incident {incident.id}", setting=SETTING
                ) from None
            except httpx.HTTPError as err:
                raise unreachable(VENDOR, self.base_url, err) from None
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                raise unreadable(VENDOR, err) from None
            if isinstance(answer.parsed, expected):
                return answer.parsed
            raise unreadable(VENDOR, TypeError(f"HTTP {answer.status_code} without a list"))


def _next(meta: PaginationMetaResultV2 | Unset, seen: set[str], any_items: bool) -> str | Unset:
    """The next page's cursor; none on the last page, after an empty one, or when incident.io
    hands back a cursor it gave before (which would never end)."""
    if isinstance(meta, Unset) or isinstance(meta.after, Unset) or not meta.after:
        return UNSET
    if not any_items or meta.after in seen:
        return UNSET
    seen.add(meta.after)
    return meta.after


def _actor(actor: ActorV2) -> str | None:
    """Who did it: a person, else the workflow, API key or alert that acted."""
    for named in (actor.user, actor.workflow, actor.api_key):
        if not isinstance(named, Unset):
            return named.name
    if not isinstance(actor.alert, Unset):
        return f"alert: {actor.alert.title}"
    return None


def _update_event(update: IncidentUpdateV2, incident: Incident) -> CollectedEvent:
    lines = [update.message if isinstance(update.message, str) else ""]
    lines.append(f"Status: {update.new_incident_status.name}")
    if not isinstance(update.new_severity, Unset):
        lines.append(f"Severity: {update.new_severity.name}")
    source_id = f"update-{update.id}"
    at = vendor_time(SOURCE, f"{source_id}: created_at", update.created_at)
    text = "\n".join(line for line in lines if line)
    return _event(incident, source_id, at, EventKind.STATUS_UPDATE, update.updater, text)


def _item_event(item: IncidentTimelineItemV2, incident: Incident) -> CollectedEvent:
    description = item.description if isinstance(item.description, str) else ""
    source_id = f"timeline-item-{item.id}"
    at = vendor_time(SOURCE, f"{source_id}: timestamp", item.timestamp)
    text = "\n\n".join(part for part in (item.title, description) if part)
    return _event(incident, source_id, at, EventKind.NOTE, item.creator, text)


def _event(
    incident: Incident, source_id: str, at: datetime, kind: EventKind, actor: ActorV2, text: str
) -> CollectedEvent:
    """Both kinds of record link to the incident's page: neither has a page of its own."""
    return event(SOURCE, source_id, at, kind, author=_actor(actor), text=text, link=incident.url)


def _pages(
    endpoint: Any, client: AuthenticatedClient, incident: Incident
) -> Callable[[str | Unset], Response[Any]]:
    """One list endpoint of the SDK's, for this incident: its page after a record's id."""

    def page(after: str | Unset) -> Response[Any]:
        return endpoint.sync_detailed(  # type: ignore[no-any-return]
            client=client, incident_id=incident.id, page_size=PAGE_SIZE, after=after
        )

    return page
