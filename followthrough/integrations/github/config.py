"""What the GitHub tracker needs: where GitHub's REST API is, the token it acts with, and who
people are there. Built by `Settings.github_config()` from FOLLOWTHROUGH_GITHUB_* settings and the
policy's directory (`people: {bob: {github: bob-octocat}}`); None there means no GitHub."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_URL = "https://api.github.com"


@dataclass(frozen=True)
class GitHubConfig:
    """GitHub (github.com, or GitHub Enterprise Server at https://HOST/api/v3) with one token.

    `repository` ("owner/name") takes the tickets nothing routes elsewhere when no Jira is
    configured; a route with tracker "github" names its own. `logins` maps a person of the policy
    to their GitHub login (the directory's `github`); a person not listed is left unassigned.
    `done_window` is how far back the reconciliation looks ("-1d", "-12h"); every request is
    bounded by `timeout` seconds (connecting: at most `connect_timeout`).
    """

    token: str = field(repr=False)
    url: str = DEFAULT_URL
    repository: str | None = None
    repositories: tuple[str, ...] = ()  # also read by the reconciliation: those routes name
    logins: Mapping[str, str] = field(default_factory=dict)
    done_window: str = "-1d"
    timeout: float = 30.0
    connect_timeout: float = 10.0

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")

    @property
    def reconciled(self) -> list[str]:
        """Every repository whose closed issues the reconciliation reads, once each."""
        named = [self.repository, *self.repositories] if self.repository else self.repositories
        return list(dict.fromkeys(named))
