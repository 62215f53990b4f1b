"""The ticket activities: an action item's ticket, its comments and due date, and the done tickets,
each in the tracker the item's route names (followthrough.integrations.trackers).

Without a tracker configured (no FOLLOWTHROUGH_JIRA_PROJECT, or no URL, user or token) the built-in
tracker is the one: open_ticket returns None, find_done_tickets [], and the others do nothing. A
route naming a project in a tracker that is not configured is refused (non-retryable, type
"TrackerNotConfigured"), and the item records why, as for any refusal.

Each call is idempotent (see followthrough.integrations.jira.tracker) and runs the blocking client
library in a thread. A refusal (bad credentials, an unknown project, issue type, priority or field)
is a non-retryable ApplicationError named after the error ("JiraRefused"): retrying cannot help and
the workflow must say so. A tracker down, slow or rate limiting is retryable ("JiraUnavailable",
with its Retry-After as the next delay when it gave one): the workflow's retry policy backs off,
so an hour of Jira down delays the ticket and loses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import COMMENT_TICKET, FIND_DONE_TICKETS, OPEN_TICKET, UPDATE_TICKET_DUE
from followthrough.domain.policy import Policy
from followthrough.domain.tickets import (
    TicketComment,
    TicketDone,
    TicketDue,
    TicketRef,
    TicketRequest,
)
from followthrough.integrations.trackers import (
    TrackerError,
    TrackerRefused,
    Trackers,
    TrackerUnavailable,
)
from followthrough.logging import get_logger
from followthrough.storage import Store

log = get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Restrictions:
    """Where a restricted postmortem's tickets may go, by the policy in force now."""

    store: Store
    policy: Policy

    def of(self, postmortem_id: str) -> tuple[bool, str | None]:
        """(restricted, its Jira issue security level); no level: no ticket outside."""
        pm = self.store.records.postmortem(postmortem_id)
        if pm is None or pm.restricted_to is None:
            return False, None
        rule = self.policy.restriction_rule(pm.restricted_to)
        return True, rule.jira_security_level if rule is not None else None


class TicketActivities:
    def __init__(
        self,
        trackers: Trackers,
        public_url: str | None = None,
        *,
        restrictions: Restrictions | None = None,
    ) -> None:
        self.trackers = trackers
        self.public_url = public_url  # where a ticket links back to its postmortem
        self.restrictions = restrictions  # None: no record to ask (every postmortem is open)

    @activity.defn(name=OPEN_TICKET)
    async def open_ticket(self, request: TicketRequest) -> TicketRef | None:
        """The item's ticket, created once (found again by its label on a retry) in the tracker
        its route names; None with the built-in tracker."""
        route = request.route
        bound = self._log(
            action_item_id=request.action_item_id,
            tracker=route.tracker if route else "jira",
            project=route.project if route else None,
        )
        tracker = await self._run(bound, self.trackers.for_route, route)
        if tracker is None:
            bound.info("no tracker configured: no ticket")
            return None
        if self.restrictions is not None:
            restricted, level = await asyncio.to_thread(self.restrictions.of, request.postmortem_id)
            # A GitHub issue has no access of its own (whoever reads the repository reads it),
            # and a Jira issue without a security level is the project's: a restricted
            # postmortem's items stay in the built-in tracker unless its rule names a level.
            kind = route.tracker if route is not None else self.trackers.unrouted
            if restricted and (level is None or kind != "jira"):
                bound.info("restricted postmortem: no ticket outside its group's reach")
                return None
            if restricted:
                request = request.model_copy(update={"security_level": level})
        if request.postmortem_url is None and self.public_url:
            link = f"{self.public_url.rstrip('/')}/api/postmortems/{request.postmortem_id}"
            request = request.model_copy(update={"postmortem_url": link})
        ref = await self._run(bound, tracker.ensure_ticket, request)
        bound.info("ticket open", key=ref.key, url=ref.url)
        return ref

    @activity.defn(name=COMMENT_TICKET)
    async def comment_ticket(self, comment: TicketComment) -> None:
        """Comment once per dedupe key; nothing when the ticket's tracker is not configured."""
        bound = self._log(key=comment.key, dedupe_key=comment.dedupe_key)
        tracker = self.trackers.for_key(comment.key)
        if tracker is None:
            return
        await self._run(bound, tracker.comment, comment)

    @activity.defn(name=UPDATE_TICKET_DUE)
    async def update_ticket_due(self, due: TicketDue) -> None:
        """Move the ticket's due date (an approved extension); nothing without its tracker."""
        bound = self._log(key=due.key, due=due.due.isoformat())
        tracker = self.trackers.for_key(due.key)
        if tracker is None:
            return
        await self._run(bound, tracker.set_due, due)

    @activity.defn(name=FIND_DONE_TICKETS)
    async def find_done_tickets(self, window: str) -> list[TicketDone]:
        """Postmortem tickets in a done status updated within `window` (a JQL date such as
        "-1d"; empty: FOLLOWTHROUGH_JIRA_DONE_JQL_WINDOW), from every configured tracker, for
        the reconciliation; [] without one."""
        bound = self._log(window=window)
        done: list[TicketDone] = []
        for kind, tracker in self.trackers:
            found = await self._run(bound, tracker.done_tickets, window or None)
            bound.info(
                "done tickets", tracker=kind, count=len(found), keys=[t.key for t in found][:50]
            )
            done += found
        return done

    def _log(self, **ids: Any) -> Any:
        info = activity.info()
        return log.bind(workflow_id=info.workflow_id, activity_attempt=info.attempt, **ids)

    async def _run(self, bound: Any, call: Callable[[Any], T], arg: Any) -> T:
        try:
            return await asyncio.to_thread(call, arg)
        except TrackerRefused as err:
            bound.error("tracker refused", error=err.message)
            raise ApplicationError(err.message, type=_kind(err), non_retryable=True) from err
        except TrackerUnavailable as err:
            bound.warning("tracker unavailable", error=err.message, retry_after=err.retry_after)
            delay = timedelta(seconds=err.retry_after) if err.retry_after else None
            raise ApplicationError(err.message, type=_kind(err), next_retry_delay=delay) from err


def _kind(err: TrackerError) -> str:
    """The failure's type for Temporal: the tracker's own name for it (JiraRefused, ...)."""
    return type(err).__name__
