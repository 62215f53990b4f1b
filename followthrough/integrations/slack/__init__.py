"""Slack's Web API through slack_sdk: post and update messages, look people up by email.

    slack = SlackApi(SlackConfig(token="xoxb-...", signing_secret="...", api_url=...))
    channel, ts = slack.post("U024BE7LH", text="...", blocks=[...])

The calls are slack_sdk's synchronous WebClient (callers run them in a thread). A 429 is
retried by slack_sdk after its Retry-After; an error that will repeat (a bad token, an unknown
user or channel, blocks Slack refuses) is SlackRefused, anything else may be retried.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.web import SlackResponse

# Slack's answers that may go away by themselves; every other `ok: false` error repeats.
_PASSING = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


@dataclass(frozen=True)
class SlackConfig:
    token: str
    signing_secret: str | None = None
    api_url: str = "https://slack.com/api/"
    rate_limit_retries: int = 2  # each after the Retry-After Slack asks for
    timeout_seconds: int = 10


class SlackRefused(Exception):
    """Slack refused the call for good (`error` is Slack's code: user_not_found, invalid_auth)."""

    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"Slack refused {method}: {error}")
        self.error = error


class SlackUnavailable(Exception):
    """Slack could not be reached or kept limiting us: trying later may work."""


@dataclass
class SlackApi:
    config: SlackConfig
    _emails: dict[str, str | None] = field(default_factory=dict)  # email -> user id, or None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        base = self.config.api_url.rstrip("/") + "/"
        self.client = WebClient(
            token=self.config.token,
            base_url=base,
            timeout=self.config.timeout_seconds,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=1),
                RateLimitErrorRetryHandler(max_retry_count=self.config.rate_limit_retries),
            ],
        )

    def post(self, channel: str, *, text: str, blocks: list[dict[str, Any]]) -> tuple[str, str]:
        """chat.postMessage: the channel it landed in (a DM's D... for a user id) and its ts."""
        answer = self._call(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(channel=channel, text=text, blocks=blocks),
        )
        return str(answer["channel"]), str(answer["ts"])

    def update(self, channel: str, ts: str, *, text: str, blocks: list[dict[str, Any]]) -> None:
        self._call(
            "chat.update",
            lambda: self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks),
        )

    def reply(self, channel: str, ts: str, text: str) -> None:
        """A reply in the message's thread."""
        self._call(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(channel=channel, thread_ts=ts, text=text),
        )

    def email_of(self, user: str) -> str | None:
        """users.info: the email on the user's profile (None when Slack shows none)."""
        email = self.user(user).get("profile", {}).get("email")
        return str(email) if email else None

    def user(self, user: str) -> dict[str, Any]:
        """users.info: the user as Slack describes them (id, name, real_name, profile)."""
        answer = self._call("users.info", lambda: self.client.users_info(user=user))
        found = answer.get("user")
        return found if isinstance(found, dict) else {}

    def workspace_url(self) -> str:
        """auth.test: the workspace's address (https://acme.slack.com/), where permalinks start."""
        return str(self._call("auth.test", self.client.auth_test).get("url") or "")

    def channels_page(
        self, cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """conversations.list, public and private channels the app can see, one page: the
        channels and the next page's cursor (None after the last)."""
        answer = self._call(
            "conversations.list",
            lambda: self.client.conversations_list(
                cursor=cursor, limit=limit, types="public_channel,private_channel"
            ),
        )
        return _listed(answer, "channels")

    def history_page(
        self, channel: str, *, oldest: str, latest: str, cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """conversations.history between oldest and latest (both included), newest first, one
        page: the messages and the next page's cursor (None after the last)."""
        answer = self._call(
            "conversations.history",
            lambda: self.client.conversations_history(
                channel=channel,
                oldest=oldest,
                latest=latest,
                inclusive=True,
                cursor=cursor,
                limit=limit,
            ),
        )
        return _listed(answer, "messages")

    def tell(self, channel: str, user: str, text: str) -> None:
        """chat.postEphemeral: a line only `user` sees, in `channel`."""
        self._call(
            "chat.postEphemeral",
            lambda: self.client.chat_postEphemeral(channel=channel, user=user, text=text),
        )

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        self._call("views.open", lambda: self.client.views_open(trigger_id=trigger_id, view=view))

    def user_by_email(self, email: str) -> str | None:
        """users.lookupByEmail, asked once per address (users_not_found included)."""
        with self._lock:
            if email in self._emails:
                return self._emails[email]
        try:
            answer = self._call(
                "users.lookupByEmail", lambda: self.client.users_lookupByEmail(email=email)
            )
            found: str | None = str(answer["user"]["id"])
        except SlackRefused as refused:
            if refused.error != "users_not_found":
                raise
            found = None
        with self._lock:
            self._emails[email] = found
        return found

    def _call(self, method: str, call: Callable[[], SlackResponse]) -> dict[str, Any]:
        try:
            response = call()
        except SlackApiError as err:
            error = str(err.response.get("error", "unknown_error"))
            if err.response.status_code >= 500 or err.response.status_code == 429:
                raise SlackUnavailable(f"Slack {method}: {error}") from err
            if error in _PASSING:
                raise SlackUnavailable(f"Slack {method}: {error}") from err
            raise SlackRefused(method, error) from err
        except OSError as err:  # connection refused or reset, a timeout
            raise SlackUnavailable(f"Slack {method}: {err}") from err
        return dict(response.data) if isinstance(response.data, dict) else {}


def _listed(answer: dict[str, Any], key: str) -> tuple[list[dict[str, Any]], str | None]:
    """A page of a cursor-paginated method: its entries and `response_metadata.next_cursor`
    (Slack sends an empty one after the last page)."""
    entries = [entry for entry in answer.get(key) or [] if isinstance(entry, dict)]
    metadata = answer.get("response_metadata") or {}
    cursor = metadata.get("next_cursor") if isinstance(metadata, dict) else None
    return entries, (str(cursor) if cursor else None)
