"""The ticket activities: an action item's ticket, its comments and due date, and the done tickets.

Without Jira configured (no FOLLOWTHROUGH_JIRA_PROJECT, or no URL, user or token) the built-in
tracker is the one: open_ticket returns None, find_done_tickets [], and the others do nothing.
A request routed to GitHub (`route.tracker == "github"`), or any request when only GitHub is
configured with a default repository, becomes a GitHub issue instead; comments and due dates go
where the key says ("owner/repo#12" is GitHub's), and the reconciliation reads both trackers.
GitHub's failures are the same two kinds, typed "GitHubRefused" and "GitHubUnavailable".

Each call is idempotent (see followthrough.integrations.jira.tracker) and runs the blocking `jira`
library in a thread. A refusal (bad credentials, an unknown project, issue type, priority or field)
is a non-retryable ApplicationError of type "JiraRefused": retrying cannot help and the workflow
must say so. Jira being down, slow or rate limiting is a retryable "JiraUnavailable" (with Jira's
Retry-After as the next delay when it gave one): the workflow's retry policy backs off, so an hour
of Jira down delays the ticket and loses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import COMMENT_TICKET, FIND_DONE_TICKETS, OPEN_TICKET, UPDATE_TICKET_DUE
from followthrough.domain.tickets import (
    TicketComment,
    TicketDone,
    TicketDue,
    TicketRef,
    TicketRequest,
)
from followthrough.integrations.github import (
    GitHubConfig,
    GitHubRefused,
    GitHubTracker,
    GitHubUnavailable,
    is_github_key,
)
from followthrough.integrations.jira import JiraConfig, JiraRefused, JiraTracker, JiraUnavailable
from followthrough.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")


class JiraActivities:
    def __init__(
        self,
        config: JiraConfig | None,
        public_url: str | None = None,
        github: GitHubConfig | None = None,
    ) -> None:
        self.config = config
        self.tracker = JiraTracker(config) if config is not None else None
        self.github = GitHubTracker(github) if github is not None else None
        self.public_url = public_url  # where a ticket links back to its postmortem

    @activity.defn(name=OPEN_TICKET)
    async def open_ticket(self, request: TicketRequest) -> TicketRef | None:
        """The item's Jira ticket, created once (found again by its label on a retry); None
        when Jira is not configured."""
        bound = self._log(action_item_id=request.action_item_id)
        tracker = self._tracker_for(request)
        if tracker is None:
            bound.info("jira not configured: no ticket")
            return None
        if request.postmortem_url is None and self.public_url:
            link = f"{self.public_url.rstrip('/')}/api/postmortems/{request.postmortem_id}"
            request = request.model_copy(update={"postmortem_url": link})
        ref = await self._run(bound, tracker.ensure_ticket, request)
        bound.info("jira ticket open", key=ref.key, url=ref.url)
        return ref

    @activity.defn(name=COMMENT_TICKET)
    async def comment_ticket(self, comment: TicketComment) -> None:
        """Comment once per dedupe key; nothing without Jira."""
        bound = self._log(key=comment.key, dedupe_key=comment.dedupe_key)
        tracker = self._tracker_of(comment.key)
        if tracker is None:
            return
        await self._run(bound, tracker.comment, comment)

    @activity.defn(name=UPDATE_TICKET_DUE)
    async def update_ticket_due(self, due: TicketDue) -> None:
        """Move the ticket's due date (an approved extension); nothing without Jira."""
        bound = self._log(key=due.key, due=due.due.isoformat())
        tracker = self._tracker_of(due.key)
        if tracker is None:
            return
        await self._run(bound, tracker.set_due, due)

    @activity.defn(name=FIND_DONE_TICKETS)
    async def find_done_tickets(self, window: str) -> list[TicketDone]:
        """Postmortem tickets in a done status updated within `window` (a JQL date such as
        "-1d"; empty: FOLLOWTHROUGH_JIRA_DONE_JQL_WINDOW), for the reconciliation; [] without
        Jira; GitHub's issues closed as completed in the reconciled repositories too."""
        bound = self._log(window=window)
        done: list[TicketDone] = []
        for tracker in (self.tracker, self.github):
            if tracker is not None:
                done += await self._run(bound, tracker.done_tickets, window or None)
        bound.info("done tickets", count=len(done), keys=[t.key for t in done][:50])
        return done

    def _tracker_for(self, request: TicketRequest) -> JiraTracker | GitHubTracker | None:
        """GitHub when the route says so (refused for good when GitHub is not configured);
        else Jira; else GitHub's default repository; else none (the built-in tracker)."""
        route = request.route
        if route is not None and route.tracker == "github":
            if self.github is None:
                raise ApplicationError(
                    f"{request.action_item_id} is routed to GitHub, but GitHub is not "
                    "configured: set FOLLOWTHROUGH_GITHUB_TOKEN",
                    type="GitHubRefused",
                    non_retryable=True,
                )
            return self.github
        if self.tracker is not None:
            return self.tracker
        if self.github is not None and self.github.config.repository and route is None:
            return self.github
        return None

    def _tracker_of(self, key: str) -> JiraTracker | GitHubTracker | None:
        return self.github if is_github_key(key) else self.tracker

    def _log(self, **ids: Any) -> Any:
        info = activity.info()
        return log.bind(workflow_id=info.workflow_id, activity_attempt=info.attempt, **ids)

    async def _run(self, bound: Any, call: Callable[[Any], T], arg: Any) -> T:
        try:
            return await asyncio.to_thread(call, arg)
        except (JiraRefused, GitHubRefused) as err:
            kind = type(err).__name__
            bound.error("tracker refused", error=err.message, kind=kind)
            raise ApplicationError(err.message, type=kind, non_retryable=True) from err
        except (JiraUnavailable, GitHubUnavailable) as err:
            kind = type(err).__name__
            bound.warning(
                "tracker unavailable", error=err.message, retry_after=err.retry_after, kind=kind
            )
            delay = timedelta(seconds=err.retry_after) if err.retry_after else None
            raise ApplicationError(err.message, type=kind, next_retry_delay=delay) from err
