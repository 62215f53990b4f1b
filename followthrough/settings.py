"""Settings from FOLLOWTHROUGH_* environment variables (see the README for each one).

The Temporal connection is not here: it follows Temporal's own variables (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS paths) through the SDK's environment configuration.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from followthrough.domain.policy import Policy, load_policy
from followthrough.notices.delivery import Mailer, SmtpServer
from followthrough.notices.render import Links
from workflows import TASK_QUEUE


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "followthrough"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FOLLOWTHROUGH_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    policy: Path | None = None
    user: str | None = Field(default=None, description="who you are, for CLI actions")
    log_json: bool = False
    api_port: int = 8000
    smtp_url: str | None = Field(
        default=None, description="smtp://user:password@host:587; unset keeps mail in the outbox"
    )
    mail_from: str = "Followthrough <followthrough@localhost>"
    temporal_ui_url: str = "http://127.0.0.1:8233"
    task_queue: str = Field(
        default=TASK_QUEUE, description="separates environments that share a Temporal namespace"
    )

    @property
    def effective_database_url(self) -> str:
        """PostgreSQL (or any SQLAlchemy URL) when set, else a SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'followthrough.db'}"

    @cached_property
    def loaded_policy(self) -> Policy:
        return load_policy(self.policy)

    def mailer(self) -> Mailer:
        return Mailer(
            sender=self.mail_from,
            outbox_dir=self.data_dir / "outbox",
            links=Links(temporal_ui=self.temporal_ui_url),
            smtp=SmtpServer.from_url(self.smtp_url) if self.smtp_url else None,
        )
