"""Where the checkers find the outside world: Prometheus and Jira, from FOLLOWTHROUGH_* settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from followthrough.domain.outbound import OutboundPolicy


@dataclass(frozen=True)
class CheckConfig:
    """What a checker needs besides the criterion. Built by `Settings.check_config()`.

    `prometheus_url` is the default for criteria that do not name one. The Jira fields are None
    when Jira is not configured; a ticket_resolved check then fails and says what to set.
    Every call out is bounded: the activity running a check has 120 s, so each timeout here stays
    well under 60 s.
    """

    prometheus_url: str | None = None
    jira_url: str | None = None
    jira_user: str | None = None
    jira_token: str | None = field(default=None, repr=False)
    prometheus_timeout: float = 30.0  # seconds for one query (Prometheus's own default is 2 min)
    jira_timeout: float = 30.0  # seconds to read Jira's answer (connecting: at most 10)
    preflight_timeout: float = 5.0  # a submission waits at most this long for Prometheus
    # Where a URL named in a criterion may point (the policy's outbound section); the
    # prometheus_url above is the operator's own and is not judged by it.
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)

    @property
    def jira_configured(self) -> bool:
        return bool(self.jira_url and self.jira_user and self.jira_token)
