"""Where Confluence is and who we are there. Built by `Settings.confluence_config()` from
FOLLOWTHROUGH_CONFLUENCE_* settings; None there means postmortems are not published."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Confluence Cloud's sites; any other host is taken for Data Center (or Server).
_CLOUD_HOSTS = (".atlassian.net", ".jira.com")


@dataclass(frozen=True)
class ConfluenceConfig:
    """One Confluence site.

    `cloud` None detects it from the host (*.atlassian.net is Cloud); Cloud's REST API lives
    under `/wiki`, which is added when the URL lacks it. Every request is bounded by `timeout`
    seconds.
    """

    url: str
    user: str
    token: str = field(repr=False)
    cloud: bool | None = None
    timeout: float = 30.0

    @property
    def is_cloud(self) -> bool:
        if self.cloud is not None:
            return self.cloud
        host = urlsplit(self.url).hostname or ""
        return host.endswith(_CLOUD_HOSTS)

    @property
    def base_url(self) -> str:
        """The REST API's base: the site's `/wiki` on Cloud, the URL itself on Data Center."""
        url = self.url.rstrip("/")
        if self.is_cloud and not url.endswith("/wiki"):
            url += "/wiki"
        return url
