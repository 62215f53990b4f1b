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
way (see vendor_api.failed_answer), and a 429 is waited out by its Retry-After.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

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
from followthrough.integrations.timeline.vendor_api import (
    REQUEST_SECONDS,
    RateLimits,
    Sleep,
    collected,
    failed_answer,
    oldest_first,
    unreachable,
    unreadable,
)

if TYPE_CHECKING:
    from followthrough.settings import Settings

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


def configured(settings: Settings) -> list[IncidentIoCollector]:
    """This collector when its API key is set."""
    key = settings.incident_io_api_key
    return [IncidentIoCollector(key, settings.incident_io_url)] if key else []


class IncidentIoCollector:
    source = SOURCE

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.incident.io",
        *,
        timeout: float = REQUEST_SECONDS,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.sleep = sleep

    def applies_to(self, incident: Incident) -> bool:
        return incident.source == SOURCE

    def collect(self, incident: Incident) -> list[CollectedEvent]:
        limits = RateLimits(VENDOR, self.sleep)
        with AuthenticatedClient(
            base_url=self.base_url,
            token=self.api_key,
            timeout=httpx.Timeout(self.timeout),
            headers={"User-Agent": "followthrough"},
            httpx_args={"event_hooks": {"response": [_judge_first]}},
        ) as client:
            updates = self._updates(client, incident, limits)
            items = self._timeline_items(client, incident, limits)
        return oldest_first(
            [
                *(_update_event(update, incident) for update in updates),
                *(_item_event(item, incident) for item in items),
            ],
            EVENTS_PER_SOURCE_MOST,
        )

    def _updates(
        self, client: AuthenticatedClient, incident: Incident, limits: RateLimits
    ) -> list[IncidentUpdateV2]:
        def page(after: str | Unset) -> Response[Any]:
            return incident_updates_v2_list.sync_detailed(
                client=client, incident_id=incident.id, page_size=PAGE_SIZE, after=after
            )

        return self._all(
            page,
            lambda result: (result.incident_updates, result.pagination_meta),
            IncidentUpdatesListResultV2,
            incident,
            limits,
        )

    def _timeline_items(
        self, client: AuthenticatedClient, incident: Incident, limits: RateLimits
    ) -> list[IncidentTimelineItemV2]:
        def page(after: str | Unset) -> Response[Any]:
            return incident_timeline_items_v2_list.sync_detailed(
                client=client, incident_id=incident.id, page_size=PAGE_SIZE, after=after
            )

        return self._all(
            page,
            lambda result: (result.incident_timeline_items, result.pagination_meta),
            IncidentTimelineItemsListResultV2,
            incident,
            limits,
        )

    def _all(
        self,
        page: Callable[[str | Unset], Response[Any]],
        read: Callable[[Result], tuple[list[Item], PaginationMetaResultV2 | Unset]],
        expected: type[Result],
        incident: Incident,
        limits: RateLimits,
    ) -> list[Item]:
        """Every page's items, up to EVENTS_PER_SOURCE_MOST."""
        found: list[Item] = []
        after: str | Unset = UNSET
        seen: set[str] = set()
        while len(found) < EVENTS_PER_SOURCE_MOST:
            items, meta = read(self._get(partial(page, after), expected, incident, limits))
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
        limits: RateLimits,
    ) -> Result:
        while True:
            try:
                answer = request()
            except _Answered as answered:
                if answered.response.status_code == 429:
                    limits.wait(answered.response)
                    continue
                status = answered.response.status_code
                raise failed_answer(VENDOR, status, incident.id, SETTING) from None
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
    return collected(
        source=SOURCE,
        source_id=f"update-{update.id}",
        at=update.created_at,
        kind=EventKind.STATUS_UPDATE,
        author=_actor(update.updater),
        text="\n".join(line for line in lines if line),
        link=incident.url,
    )


def _item_event(item: IncidentTimelineItemV2, incident: Incident) -> CollectedEvent:
    description = item.description if isinstance(item.description, str) else ""
    return collected(
        source=SOURCE,
        source_id=f"timeline-item-{item.id}",
        at=item.timestamp,
        kind=EventKind.NOTE,
        author=_actor(item.creator),
        text="\n\n".join(part for part in (item.title, description) if part),
        link=incident.url,
    )
