"""The trackers an item's ticket may live in, by kind ("jira", "github"), and how they fail.

    trackers = Trackers({"jira": JiraTracker(config)})   # a kind left out is not configured
    tracker = trackers.for_route(request.route)          # None: the built-in tracker
    tracker = trackers.for_key("PAY-12")                 # comments and due dates, by the key

A tracker is any class with the four methods of `Tracker` (synchronous: the activities run them
in threads) whose failures are TrackerRefused (permanent: retrying cannot help) or
TrackerUnavailable (transient). Comments and due-date changes carry only the ticket's key, so
the key's shape names its tracker: GitHub's "owner/repo#123", Jira's "ABC-12". Histories from
before routing carry Jira keys, which still go to Jira.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from followthrough.domain.routing import TrackerKind
from followthrough.domain.tickets import (
    TicketComment,
    TicketDone,
    TicketDue,
    TicketRef,
    TicketRequest,
    TicketRoute,
)


class TrackerError(Exception):
    """A tracker call failed; `message` is safe to log and to record (no credentials)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TrackerRefused(TrackerError):
    """Permanent: retrying the same call cannot succeed."""


class TrackerUnavailable(TrackerError):
    """Transient: the tracker is down, slow, or rate limiting; `retry_after` its hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TrackerNotConfigured(TrackerRefused):
    """A route names a tracker this deployment has no settings for."""


class Tracker(Protocol):
    def ensure_ticket(self, request: TicketRequest) -> TicketRef: ...

    def comment(self, comment: TicketComment) -> bool: ...

    def set_due(self, due: TicketDue) -> None: ...

    def done_tickets(self, window: str | None = None) -> list[TicketDone]: ...


def kind_of_key(key: str) -> TrackerKind:
    """GitHub's keys are "owner/repo#123"; anything else is a Jira issue key."""
    return "github" if "#" in key else "jira"


class Trackers:
    """The configured trackers by kind; a kind missing (or None) is not configured. `unrouted`
    takes the tickets no route names: Jira, or GitHub's default repository where Jira is not."""

    def __init__(
        self,
        by_kind: Mapping[TrackerKind, Tracker | None] | None = None,
        *,
        unrouted: TrackerKind = "jira",
    ) -> None:
        self._by_kind = {kind: t for kind, t in (by_kind or {}).items() if t is not None}
        self.unrouted = unrouted

    def __iter__(self) -> Iterator[tuple[TrackerKind, Tracker]]:
        return iter(self._by_kind.items())

    def __bool__(self) -> bool:
        return bool(self._by_kind)

    def get(self, kind: TrackerKind) -> Tracker | None:
        return self._by_kind.get(kind)

    def for_route(self, route: TicketRoute | None) -> Tracker | None:
        """The tracker a ticket request goes to; None for the built-in tracker (no Jira, and no
        route naming a project). A route naming a project in a tracker that is not configured
        is refused: that team plans there, and a ticket elsewhere would be lost to it."""
        kind: TrackerKind = route.tracker if route is not None else self.unrouted
        found = self._by_kind.get(kind)
        if found is None and route is not None and (route.project or kind != "jira"):
            where = f" (project {route.project})" if route.project else ""
            raise TrackerNotConfigured(
                f"the policy routes this ticket to {kind}{where}, but no {kind} tracker is "
                f"configured: set FOLLOWTHROUGH_{kind.upper()}_* or change the policy's routing"
            )
        return found

    def for_key(self, key: str) -> Tracker | None:
        """The tracker of an existing ticket; None when its tracker is not configured (any
        more): there is nothing to update."""
        return self._by_kind.get(kind_of_key(key))
