"""What the Jira tracker needs: where Jira is, who we are there, and how the team's project is set
up. Built by `Settings.jira_config()` from FOLLOWTHROUGH_JIRA_* settings; None there means the
built-in tracker (no Jira) is used."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Deployment = Literal["auto", "cloud", "server"]

DEFAULT_PRIORITIES: Mapping[str, str] = {"P0": "Highest", "P1": "High", "P2": "Medium", "P3": "Low"}


@dataclass(frozen=True)
class JiraConfig:
    """The Jira project to keep action items in (the policy's routing may send a team's to
    another project of the same Jira: see followthrough.domain.routing).

    `deployment` "auto" asks Jira once (GET /rest/api/2/serverInfo, its `deploymentType`);
    "cloud" or "server" (Server and Data Center) skip that request. It decides how the assignee
    is named ({"accountId"} on Cloud, {"name"} on Server), how search pages (/search/jql and
    nextPageToken on Cloud, /search and startAt on Server) and how an epic is attached.
    `accounts` maps a person of the policy to their Jira accountId (Cloud) or username (Server);
    a person not listed is looked up by email. Every request is bounded by `timeout` seconds
    (connecting: at most `connect_timeout`).
    """

    url: str
    user: str
    token: str = field(repr=False)
    project: str
    issue_type: str = "Task"
    deployment: Deployment = "auto"
    priorities: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PRIORITIES))
    due_field: str = "duedate"
    epics: bool = False
    accounts: Mapping[str, str] = field(default_factory=dict)
    done_window: str = "-1d"
    timeout: float = 30.0
    connect_timeout: float = 10.0

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")
