"""Confluence, where approved postmortems are published for everyone to read.

    publisher = ConfluencePublisher(settings.confluence_config())   # None config: not published
    page = publisher.publish(PageContent(pm_id, destination, title, body))  # PublishedPage

An edge like followthrough.integrations.jira: synchronous `atlassian-python-api` calls (the
activity runs them in a thread), each failure either ConfluenceRefused (permanent) or
ConfluenceUnavailable (transient: 429, 409, 5xx, timeouts, refused connections).
"""

from followthrough.integrations.confluence.client import connect
from followthrough.integrations.confluence.config import ConfluenceConfig
from followthrough.integrations.confluence.errors import (
    ConfluenceError,
    ConfluenceRefused,
    ConfluenceUnavailable,
)
from followthrough.integrations.confluence.publisher import (
    DUPLICATE_LABEL,
    ConfluencePublisher,
    PageContent,
)

__all__ = [
    "DUPLICATE_LABEL",
    "ConfluenceConfig",
    "ConfluenceError",
    "ConfluencePublisher",
    "ConfluenceRefused",
    "ConfluenceUnavailable",
    "PageContent",
    "connect",
]
