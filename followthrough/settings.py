"""Settings from FOLLOWTHROUGH_* environment variables (see the README for each one).

The Temporal connection is not here: it follows Temporal's own variables (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS paths) through the SDK's environment configuration.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self, overload

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from followthrough.domain.limits import REQUEST_BODY_SECONDS
from followthrough.domain.policy import Policy, load_policy
from followthrough.notices.delivery import Mailer, SmtpServer
from followthrough.notices.render import Links
from followthrough.temporal import TASK_QUEUE

if TYPE_CHECKING:
    from followthrough.checks.config import CheckConfig
    from followthrough.integrations.confluence.config import ConfluenceConfig
    from followthrough.integrations.github.config import GitHubConfig
    from followthrough.integrations.jira.config import JiraConfig
    from followthrough.integrations.slack import SlackConfig
    from followthrough.storage import Store


class _read_afresh(cached_property[Policy]):
    """Like a property, computed on every read (the directory may have changed), yet, like a
    cached_property, one a test may pin by setting it in the instance's __dict__."""

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> Self: ...
    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> Policy: ...
    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> Self | Policy:
        if instance is None:
            return self
        return self.func(instance)


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "followthrough"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FOLLOWTHROUGH_", extra="ignore", ignored_types=(_read_afresh,)
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    policy: Path | None = None
    user: str | None = Field(default=None, description="who you are, for CLI actions")
    log_json: bool = False
    api_host: str = Field(default="127.0.0.1", description="where the HTTP API listens")
    api_port: int = 8000
    public_url: str | None = Field(
        default=None, description="how people reach the API, for links in emails"
    )
    link_secret: str | None = Field(
        default=None, description="signs one-click links; unset: generated in the data dir"
    )
    link_ttl_hours: int = Field(default=7 * 24, ge=1, description="one-click links expire")
    metrics_token: str | None = Field(
        default=None,
        description="a bearer token Prometheus sends to scrape /metrics; unset: only the API "
        "token of someone in the directory may read it",
    )
    gate_token: str | None = Field(
        default=None,
        description="a bearer token CI/CD gates send to read GET /api/freezes (and nothing "
        "else); unset: only the API token of someone in the directory may read it",
    )
    scim_token: str | None = Field(
        default=None,
        description="the bearer secret the identity provider sends to /scim/v2 to provision "
        "people and groups; unset: no SCIM (its endpoints answer 404)",
    )
    request_body_seconds: float = Field(
        default=REQUEST_BODY_SECONDS,
        gt=0,
        le=3600,
        description="a request's body must arrive within this many seconds (408 after)",
    )
    # One per source: the HMAC secret, or the bearer token a source that does not sign sends.
    webhook_secret_pagerduty: str | None = None
    webhook_secret_opsgenie: str | None = None
    webhook_secret_incidentio: str | None = None
    webhook_secret_alertmanager: str | None = None
    webhook_secret_grafana: str | None = None
    webhook_secret_firehydrant: str | None = None
    webhook_secret_generic: str | None = None
    webhook_secret_jira: str | None = None  # the secret of Jira's admin webhook for tickets
    webhook_secret_deploy: str | None = None  # the generic deploy webhook (signed as generic)
    webhook_secret_argocd: str | None = None  # Argo CD notifications: Bearer or Basic password
    smtp_url: str | None = Field(
        default=None, description="smtp://user:password@host:587; unset keeps mail in the outbox"
    )
    mail_from: str = "Followthrough <followthrough@localhost>"
    temporal_ui_url: str = "http://127.0.0.1:8233"
    task_queue: str = Field(
        default=TASK_QUEUE, description="separates environments that share a Temporal namespace"
    )
    sticky_queue_timeout_seconds: float = Field(
        default=10,
        gt=0,
        description="how long a workflow's next task waits for the worker that ran it last "
        "before any worker may take it: the delay a crashed worker costs its workflows",
    )
    prometheus_url: str | None = Field(
        default=None, description="Prometheus for criteria that do not name one"
    )
    alerts_service_label: str = Field(
        default="service",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="the label of Prometheus's ALERTS that names a service: the incident's "
        "services' alerts are collected into its timeline by it",
    )
    worker_metrics_address: str | None = Field(
        default=None,
        pattern=r"^(\S+:\d+)?$",  # empty (as compose passes an unset one) is unset
        description="host:port where a worker (and `up`) serves the Temporal SDK's own "
        "Prometheus metrics at /metrics; unset: none",
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="an OTLP/HTTP collector (http://collector:4318) that receives traces of "
        "client calls, workflows and activities; unset: no tracing",
    )
    jira_url: str | None = None
    jira_user: str | None = None
    jira_token: str | None = None
    jira_project: str | None = Field(
        default=None,
        description="the project key action items' tickets go to; with url, user and token set, "
        "every action item is a Jira ticket",
    )
    jira_issue_type: str = Field(default="Task", description="the issue type of a ticket")
    jira_deployment: Literal["auto", "cloud", "server"] = Field(
        default="auto",
        description="cloud or server (also Data Center); auto reads serverInfo.deploymentType once",
    )
    jira_priorities: dict[str, str] = Field(
        default_factory=lambda: {"P0": "Highest", "P1": "High", "P2": "Medium", "P3": "Low"},
        description="JSON: our priorities P0..P3 -> the Jira priority names",
    )
    jira_due_field: str = Field(
        default="duedate", description="the field a ticket's due date goes in (or customfield_N)"
    )
    jira_epics: bool = Field(
        default=False, description="one epic per postmortem, its action items' tickets under it"
    )
    jira_accounts: dict[str, str] = Field(
        default_factory=dict,
        description="JSON: person -> Jira accountId (Cloud) or username (Server); a person not "
        "listed is looked up by email, and not found their ticket is created unassigned",
    )
    slack_bot_token: str | None = Field(
        default=None, description="xoxb-...: notices go to Slack too; unset: no Slack at all"
    )
    slack_signing_secret: str | None = Field(
        default=None, description="verifies the button clicks Slack sends to /slack/interactions"
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack's Web API (tests point it elsewhere)"
    )
    incident_io_api_key: str | None = Field(
        default=None,
        description="an incident.io API key that may read incidents: collects each incident.io "
        "incident's updates and timeline items into its postmortem's timeline",
    )
    incident_io_url: str = Field(
        default="https://api.incident.io",
        description="incident.io's API (tests point it elsewhere)",
    )
    firehydrant_api_key: str | None = Field(
        default=None,
        description="a FireHydrant API key (bot token): collects each FireHydrant incident's "
        "timeline events into its postmortem's timeline",
    )
    firehydrant_url: str = Field(
        default="https://api.firehydrant.io",
        description="FireHydrant's API (tests point it elsewhere)",
    )
    pagerduty_api_token: str | None = Field(
        default=None,
        description="a read-only REST API key: the timeline is collected from PagerDuty "
        "incidents' log entries and notes; unset: not collected",
    )
    pagerduty_api_url: str = Field(
        default="https://api.pagerduty.com",
        description="PagerDuty's REST API (https://api.eu.pagerduty.com for EU accounts); "
        "https only",
    )
    opsgenie_api_key: str | None = Field(
        default=None,
        description="an API key with read access: the timeline is collected from Opsgenie "
        "alerts' logs and notes; unset: not collected",
    )
    opsgenie_api_url: str = Field(
        default="https://api.opsgenie.com",
        description="Opsgenie's API (https://api.eu.opsgenie.com for EU accounts)",
    )
    jira_done_jql_window: str = Field(
        default="-1d",
        description="how far back (a JQL date: -1d, -12h) reconciliation looks for done tickets",
    )
    github_url: str = Field(
        default="https://api.github.com",
        description="GitHub's REST API (GitHub Enterprise Server: https://HOST/api/v3)",
    )
    github_token: str | None = Field(
        default=None,
        description="a token that may read and write issues in the routed repositories; "
        "unset: no GitHub",
    )
    github_repository: str | None = Field(
        default=None,
        pattern=r"^([A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100})?$",
        description="owner/name: takes the tickets nothing routes elsewhere when Jira is not "
        "configured, and is reconciled",
    )
    github_webhook_secret: str | None = Field(
        default=None, description="the secret of the repository's or organization's webhook"
    )
    github_timeout: float = Field(
        default=30, gt=0, le=300, description="seconds a GitHub request may take"
    )
    github_done_window: str = Field(
        default="-1d",
        description="how far back (-1d, -12h) reconciliation looks for closed issues",
    )
    confluence_url: str | None = Field(
        default=None, description="Confluence's site, where approved postmortems are published"
    )
    confluence_user: str | None = None
    confluence_token: str | None = None
    confluence_cloud: bool | None = Field(
        default=None, description="Cloud (true) or Data Center (false); unset: *.atlassian.net"
    )
    confluence_timeout: float = Field(
        default=30.0, gt=0, le=300, description="seconds each Confluence request may take"
    )

    oidc_issuer: str | None = Field(
        default=None,
        description="the OpenID Connect provider's issuer URL (its metadata at "
        "/.well-known/openid-configuration): the dashboard signs people in there; unset: by token",
    )
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_name: str | None = Field(
        default=None, max_length=60, description="the button says 'Sign in with NAME'"
    )
    oidc_scopes: str = Field(
        default="openid email profile",
        pattern=r"^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$",
        description="the scopes asked for (space-separated); add 'groups' where the provider "
        "sends groups only when asked",
    )
    oidc_email_claim: str = Field(
        default="email",
        pattern=r"^[A-Za-z0-9_:./-]{1,100}$",
        description="the ID token's claim holding the person's email address",
    )
    oidc_groups_claim: str = Field(
        default="groups",
        pattern=r"^[A-Za-z0-9_:./-]{1,100}$",
        description="the ID token's claim listing the person's groups (policy `identity:`)",
    )
    oidc_token_sign_in: bool = Field(
        default=False,
        description="with a provider configured, the sign-in page also takes API tokens",
    )
    oidc_timeout: float = Field(
        default=10, gt=0, le=60, description="seconds each request to the provider may take"
    )

    @property
    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_client_secret)

    @model_validator(mode="after")
    def _oidc_whole(self) -> Settings:
        """Half a provider's configuration would quietly leave the token sign-in on."""
        parts = {"ISSUER": self.oidc_issuer, "CLIENT_ID": self.oidc_client_id}
        parts["CLIENT_SECRET"] = self.oidc_client_secret
        missing = [f"FOLLOWTHROUGH_OIDC_{name}" for name, value in parts.items() if not value]
        if 0 < len(missing) < len(parts):
            raise ValueError(f"signing in through a provider also needs {', '.join(missing)}")
        return self

    @property
    def effective_database_url(self) -> str:
        """PostgreSQL (or any SQLAlchemy URL) when set, else a SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'followthrough.db'}"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    def webhook_secret(self, source: str) -> str | None:
        """FOLLOWTHROUGH_WEBHOOK_SECRET_<SOURCE>, or a tracker's own (..._GITHUB_WEBHOOK_SECRET)."""
        value = getattr(self, f"webhook_secret_{source}", None) or getattr(
            self, f"{source}_webhook_secret", None
        )
        return value if isinstance(value, str) and value else None

    def effective_link_secret(self) -> str:
        """The configured secret, else one generated once and kept in the data dir.

        The worker signs links and the API checks them; on one machine they share the file.
        """
        if self.link_secret:
            return self.link_secret
        path = self.data_dir / "link-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f"link-secret.{os.getpid()}")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32))
            # link() is atomic and refuses to replace: two processes starting at once agree.
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
            draft.unlink()
        return path.read_text().strip()

    @cached_property
    def file_policy(self) -> Policy:
        """The policy file's policy, as written."""
        return load_policy(self.policy)

    @_read_afresh
    def loaded_policy(self) -> Policy:
        """The effective policy: the file's, with the directory the identity provider
        provisioned (SCIM) laid over it once a process with a store has called
        `use_directory`."""
        live = self.__dict__.get("_live_policy")
        return live() if live is not None else self.file_policy

    def use_directory(self, store: Store) -> None:
        """Read the policy with the provisioned directory from `store` from now on."""
        from followthrough.storage.directory import LivePolicy

        if self.__dict__.get("_live_policy") is None:
            self.__dict__["_live_policy"] = LivePolicy(self.file_policy, store.directory)

    def directory_changed(self) -> None:
        """This process just changed the directory: the next read rebuilds the policy."""
        live = self.__dict__.get("_live_policy")
        if live is not None:
            live.changed()

    def check_config(self) -> CheckConfig:
        """Where acceptance-criterion checks find Prometheus and Jira."""
        from followthrough.checks.config import CheckConfig

        return CheckConfig(
            prometheus_url=self.prometheus_url,
            jira_url=self.jira_url,
            jira_user=self.jira_user,
            jira_token=self.jira_token,
        )

    def jira_config(self) -> JiraConfig | None:
        """The Jira project tickets go to; None (the built-in tracker) unless
        FOLLOWTHROUGH_JIRA_URL, _USER, _TOKEN and _PROJECT are all set."""
        if not (self.jira_url and self.jira_user and self.jira_token and self.jira_project):
            return None
        from followthrough.integrations.jira.config import JiraConfig

        return JiraConfig(
            url=self.jira_url,
            user=self.jira_user,
            token=self.jira_token,
            project=self.jira_project,
            issue_type=self.jira_issue_type,
            deployment=self.jira_deployment,
            priorities=dict(self.jira_priorities),
            due_field=self.jira_due_field,
            epics=self.jira_epics,
            accounts=dict(self.jira_accounts),
            done_window=self.jira_done_jql_window,
        )

    def github_config(self) -> GitHubConfig | None:
        """GitHub Issues for the items routed there; None (no GitHub) unless
        FOLLOWTHROUGH_GITHUB_TOKEN is set. Logins come from the policy's `people`."""
        if not self.github_token:
            return None
        from followthrough.integrations.github.config import GitHubConfig

        return GitHubConfig(
            token=self.github_token,
            url=self.github_url,
            repository=self.github_repository or None,
            logins=self.loaded_policy.github_logins(),
            done_window=self.github_done_window,
            timeout=self.github_timeout,
        )

    def confluence_config(self) -> ConfluenceConfig | None:
        """Where approved postmortems are published; None (not published) unless the URL, user
        and token are all set. The policy's `publishing` section says which space."""
        if not (self.confluence_url and self.confluence_user and self.confluence_token):
            return None
        from followthrough.integrations.confluence.config import ConfluenceConfig

        return ConfluenceConfig(
            url=self.confluence_url,
            user=self.confluence_user,
            token=self.confluence_token,
            cloud=self.confluence_cloud,
            timeout=self.confluence_timeout,
        )

    def slack_config(self) -> SlackConfig | None:
        """Where Slack notices go; None (no Slack) unless FOLLOWTHROUGH_SLACK_BOT_TOKEN is set."""
        if not self.slack_bot_token:
            return None
        from followthrough.integrations.slack import SlackConfig

        return SlackConfig(
            token=self.slack_bot_token,
            signing_secret=self.slack_signing_secret,
            api_url=self.slack_api_url,
        )

    def mailer(self) -> Mailer:
        return Mailer(
            sender=self.mail_from,
            outbox_dir=self.data_dir / "outbox",
            links=Links(
                temporal_ui=self.temporal_ui_url,
                public_url=self.effective_public_url,
                link_secret=self.effective_link_secret(),
                link_ttl=timedelta(hours=self.link_ttl_hours),
            ),
            smtp=SmtpServer.from_url(self.smtp_url) if self.smtp_url else None,
        )
