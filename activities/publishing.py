"""The publishing activity: an approved postmortem's page in Confluence, from the record.

Without Confluence configured (no FOLLOWTHROUGH_CONFLUENCE_URL, _USER or _TOKEN) it does nothing
and returns None. The page's body is the printable document's facts in Confluence's storage
format (followthrough/reporting/document.py), read from the record as it stands, so a retry or a
later publishing (the postmortem closed) carries the newest facts; the publisher writes only
when they changed. A refusal (credentials, permissions, an unknown space or parent page) is a
non-retryable ApplicationError of type "ConfluenceRefused", kept on the publication for the
operators; Confluence down, slow or rate limiting is a retryable "ConfluenceUnavailable" (with
its Retry-After as the next delay).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import quote

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import PUBLISH_POSTMORTEM
from followthrough.domain.policy import Policy, PolicySource, current
from followthrough.domain.publishing import PageDestination, PageRequest, PublishedPage, page_title
from followthrough.integrations.confluence import (
    ConfluenceConfig,
    ConfluencePublisher,
    ConfluenceRefused,
    ConfluenceUnavailable,
    PageContent,
)
from followthrough.logging import get_logger
from followthrough.reporting.document import postmortem_document, render_confluence
from followthrough.storage import Store

log = get_logger(__name__)


class PublishingActivities:
    def __init__(
        self,
        store: Store,
        policy: PolicySource,
        config: ConfluenceConfig | None,
        public_url: str | None = None,
    ) -> None:
        self.store = store
        self.source = policy
        self.publisher = ConfluencePublisher(config) if config is not None else None
        self.public_url = public_url  # the page links back to the postmortem there

    @property
    def policy(self) -> Policy:
        return current(self.source)

    @activity.defn(name=PUBLISH_POSTMORTEM)
    async def publish_postmortem(self, request: PageRequest) -> PublishedPage | None:
        info = activity.info()
        bound = log.bind(
            postmortem_id=request.postmortem_id,
            workflow_id=info.workflow_id,
            activity_attempt=info.attempt,
            space=request.destination.space,
        )
        if self.publisher is None:
            bound.info("confluence not configured: not published")
            return None
        restricted, destination = await asyncio.to_thread(self._restricted_destination, request)
        if restricted and destination is None:
            bound.info("restricted postmortem: not published (its rule names no space)")
            await asyncio.to_thread(
                self.store.publications.refused,
                request.postmortem_id,
                "not published: a restricted postmortem, and its policy rule names no "
                "confluence_space",
                request.at,
            )
            return None
        if destination is not None:
            request = request.model_copy(update={"destination": destination})
            bound = bound.bind(space=destination.space)
        content, tickets = await asyncio.to_thread(self._content, request)
        try:
            page = await asyncio.to_thread(self.publisher.publish, content)
        except ConfluenceRefused as err:
            bound.error("confluence refused", error=err.message)
            await asyncio.to_thread(
                self.store.publications.refused, request.postmortem_id, err.message, request.at
            )
            raise ApplicationError(
                err.message, type="ConfluenceRefused", non_retryable=True
            ) from err
        except ConfluenceUnavailable as err:
            bound.warning("confluence unavailable", error=err.message, retry_after=err.retry_after)
            delay = timedelta(seconds=err.retry_after) if err.retry_after else None
            raise ApplicationError(
                err.message, type="ConfluenceUnavailable", next_retry_delay=delay
            ) from err
        # The items' tickets known now: the workflow links each to the page once.
        page = page.model_copy(update={"tickets": tickets})
        await asyncio.to_thread(self.store.publications.published, page, request.at)
        bound.info(
            "postmortem published",
            page_id=page.page_id,
            version=page.version,
            changed=page.changed,
            url=page.url,
        )
        return page

    def _restricted_destination(self, request: PageRequest) -> tuple[bool, PageDestination | None]:
        """Whether it is restricted, and then its rule's space (the policy in force now), never
        the team's; no space: the rule names none, and it is not published."""
        pm = self.store.records.postmortem(request.postmortem_id)
        if pm is None or pm.restricted_to is None:
            return False, None  # (not recorded yet: _content retries until it is)
        rule = self.policy.restriction_rule(pm.restricted_to)
        if rule is None or rule.confluence_space is None:
            return True, None
        return True, PageDestination(space=rule.confluence_space)

    def _content(self, request: PageRequest) -> tuple[PageContent, dict[str, str]]:
        """The page, and the items' tickets (item id -> key) as the record has them."""
        pm = self.store.records.postmortem(request.postmortem_id)
        if pm is None:  # the opening is recorded before approval: a database behind, retried
            raise RuntimeError(f"{request.postmortem_id} is not recorded yet")
        items = self.store.records.action_items(postmortem_id=pm.id)
        tickets = {item.id: item.ticket.key for item in items if item.ticket is not None}
        document = postmortem_document(pm, items, self.policy, request.at)
        content = PageContent(
            postmortem_id=pm.id,
            destination=request.destination,
            title=page_title(pm.incident.title, pm.id),
            body=render_confluence(document, self._followthrough_url(pm.id)),
        )
        return content, tickets

    def _followthrough_url(self, postmortem_id: str) -> str | None:
        if not self.public_url:
            return None
        return f"{self.public_url.rstrip('/')}/postmortems/{quote(postmortem_id, safe='')}"
