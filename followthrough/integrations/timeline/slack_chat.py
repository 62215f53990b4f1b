"""The incident channel's chat from Slack, as timeline material (issue 18).

    collector = SlackChatCollector(SlackApi(settings.slack_config()), policy.chat)
    messages = collector.transcript(incident)          # blocking: run it in a thread
    keep_transcript(store, incident.postmortem_id, messages)
    events = events_from(messages)                     # == collector.collect(incident)

The channel is the one the incident names (`chat_channel`: an id as is, a #name looked up), else
the one the policy's `chat.slack_channel_pattern` names, found with conversations.list (archived
channels included: incident channels are often archived once resolved). Its messages from the
incident's start (else `hours_before_resolution` before its resolution) to its resolution are
read with conversations.history, newest first, page by page; a channel busier than
TRANSCRIPT_MESSAGES_MOST keeps its latest messages. Thread replies are not read (only what was
sent to the channel itself), nor are joins, leaves and topic changes.

Authors are named by users.info, asked once per person per collection; a message's permalink is
built from the workspace's address (auth.test, once per collection) as Slack writes them
(https://acme.slack.com/archives/C0123/p1700000000000100), rather than one chat.getPermalink call
per message. A 429 is waited out by slack_sdk after its Retry-After (SlackApi's retry handlers);
what Slack refuses for good is SourceRefused, saying what to do; the rest SourceUnavailable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from followthrough.domain.bounds import cut, one_line
from followthrough.domain.chat import ChatPolicy, matches
from followthrough.domain.incident import Incident
from followthrough.domain.timeline import CollectedEvent
from followthrough.domain.transcript import (
    CHAT_SOURCE,
    CHAT_TEXT_MOST,
    REACTIONS_MOST,
    SLACK_TS,
    TRANSCRIPT_CHARS_MOST,
    TRANSCRIPT_MESSAGES_MOST,
    ChatMessage,
    events_from,
)
from followthrough.hrefs import safe_url
from followthrough.integrations.slack import SlackApi, SlackRefused, SlackUnavailable
from followthrough.integrations.timeline import Collector, SourceRefused, SourceUnavailable

if TYPE_CHECKING:
    from followthrough.settings import Settings
    from followthrough.storage import Store

log = structlog.get_logger(__name__)

PAGE_SIZE = 200  # what Slack recommends asking for per page
CHANNEL_PAGES_MOST = 50  # 10,000 channels looked through for the incident's
HISTORY_PAGES_MOST = 50  # Slack may answer fewer than asked for per page
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,20}$")
# Channel events rather than what people said.
_NOISE = frozenset(
    {
        "channel_join",
        "channel_leave",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "channel_archive",
        "channel_unarchive",
        "group_join",
        "group_leave",
        "group_topic",
        "group_purpose",
        "group_name",
        "bot_add",
        "bot_remove",
        "pinned_item",
        "unpinned_item",
    }
)
# Slack's answers that mean the app must be set up differently, and what to do about each.
_REFUSALS = {
    "not_in_channel": "the Followthrough app is not in the channel {channel}: invite it there",
    "channel_not_found": "Slack has no channel {channel} the Followthrough app can see "
    "(a private channel needs the app invited)",
    "missing_scope": "the Slack token lacks a scope: the app needs channels:read, "
    "channels:history, groups:read, groups:history and users:read",
    "invalid_auth": "Slack refused FOLLOWTHROUGH_SLACK_BOT_TOKEN (invalid_auth)",
    "not_authed": "Slack refused FOLLOWTHROUGH_SLACK_BOT_TOKEN (not_authed)",
    "account_inactive": "the Slack token's app or workspace is gone (account_inactive)",
    "token_revoked": "the Slack token was revoked (token_revoked)",
}


@dataclass
class SlackChatCollector:
    """The incident channel's messages: the transcript, and its marked ones as events."""

    slack: SlackApi
    chat: ChatPolicy
    page_size: int = PAGE_SIZE
    messages_most: int = TRANSCRIPT_MESSAGES_MOST
    source: str = field(default=CHAT_SOURCE, init=False)

    def applies_to(self, incident: Incident) -> bool:
        """An incident that names its channel, or any when the policy says how to find one."""
        return incident.chat_channel is not None or self.chat.slack_channel_pattern is not None

    def collect(self, incident: Incident) -> list[CollectedEvent]:
        return events_from(self.transcript(incident))

    def transcript(self, incident: Incident) -> list[ChatMessage]:
        """The channel's messages from the incident's start to its resolution, oldest first."""
        channel, name = self._channel(incident)
        shown = f"#{name}" if name else channel
        with _vendor_errors(shown):
            raw = self._history(channel, incident)
            names = self._authors(raw)
            workspace = safe_url(self.slack.workspace_url()) if raw else None
        messages: list[ChatMessage] = []
        size = 0
        for message in raw:  # newest first: a transcript too large keeps the latest words
            kept = self._message(channel, message, names, workspace)
            size += len(kept.text)
            if size > TRANSCRIPT_CHARS_MOST:
                log.warning("chat.transcript_cut", channel=shown, kept=len(messages), why="size")
                break
            messages.append(kept)
        messages.reverse()
        log.info(
            "chat.transcript_read",
            incident=incident.postmortem_id,
            channel=shown,
            messages=len(messages),
            marked=sum(1 for m in messages if m.mark),
        )
        return messages

    # --- the channel ---------------------------------------------------------------------------

    def _channel(self, incident: Incident) -> tuple[str, str | None]:
        """The channel's id, and its name when known."""
        named = incident.chat_channel
        if named is not None and _CHANNEL_ID.match(named):
            return named, None
        if named is not None:
            wanted = named.removeprefix("#")
            where = f"channel #{wanted}"
        else:
            pattern = self.chat.channel_pattern(incident.id, incident.source)
            if pattern is None:
                raise SourceRefused(
                    "the incident names no Slack channel and the policy has no "
                    "chat.slack_channel_pattern"
                )
            wanted = pattern
            where = f"channel named {pattern} (the policy's chat.slack_channel_pattern)"
        with _vendor_errors(where):
            found = self._find(wanted, exact=named is not None, before=incident.resolved_at)
        if found is None:
            raise SourceRefused(f"Slack has no {where} that the Followthrough app can see")
        return found

    def _find(self, wanted: str, *, exact: bool, before: datetime) -> tuple[str, str] | None:
        """conversations.list, page by page (bounded): the channel named `wanted`, or fitting
        it as a pattern; of several, the last created before the resolution."""
        fitting: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(CHANNEL_PAGES_MOST):
            channels, cursor = self.slack.channels_page(cursor, self.page_size)
            for channel in channels:
                name = str(channel.get("name") or "")
                if (name == wanted) if exact else matches(name, wanted):
                    fitting.append(channel)
            if (exact and fitting) or cursor is None:
                break
        else:
            log.warning("chat.channels_cut", pages=CHANNEL_PAGES_MOST, wanted=wanted)
        if not fitting:
            return None
        created_before = [c for c in fitting if _number(c.get("created")) <= before.timestamp()]
        best = max(created_before or fitting, key=lambda c: _number(c.get("created")))
        return str(best["id"]), str(best["name"])

    # --- the messages --------------------------------------------------------------------------

    def _history(self, channel: str, incident: Incident) -> list[dict[str, Any]]:
        """The window's messages, newest first, at most `messages_most`, each once."""
        latest = incident.resolved_at
        earliest = latest - timedelta(hours=self.chat.hours_before_resolution)
        oldest = min(incident.started_at or incident.detected_at or earliest, latest)
        found: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        for _ in range(HISTORY_PAGES_MOST):
            page, cursor = self.slack.history_page(
                channel,
                oldest=_ts_of(oldest),
                latest=_ts_of(latest),
                cursor=cursor,
                limit=self.page_size,
            )
            for message in page:
                ts = str(message.get("ts") or "")
                if re.match(SLACK_TS, ts) and message.get("subtype") not in _NOISE:
                    found.setdefault(ts, message)
            if cursor is None or len(found) >= self.messages_most:
                break
        if cursor is not None:
            log.warning("chat.transcript_cut", channel=channel, kept=self.messages_most)
        newest_first = sorted(found.values(), key=lambda m: _at(str(m["ts"])), reverse=True)
        return newest_first[: self.messages_most]

    def _authors(self, messages: list[dict[str, Any]]) -> dict[str, str]:
        """users.info once per person who wrote: user id -> the name Slack shows."""
        names: dict[str, str] = {}
        for user in dict.fromkeys(str(m["user"]) for m in messages if m.get("user")):
            try:
                found = self.slack.user(user)
            except SlackRefused as refused:
                if refused.error != "user_not_found":
                    raise
                continue
            profile = found.get("profile") or {}
            name = (
                profile.get("display_name")
                or profile.get("real_name")
                or found.get("real_name")
                or found.get("name")
            )
            if name:
                names[user] = one_line(str(name), 200)
        return names

    def _message(
        self, channel: str, message: dict[str, Any], names: dict[str, str], workspace: str | None
    ) -> ChatMessage:
        ts = str(message["ts"])
        user = str(message["user"]) if message.get("user") else None
        bot = message.get("bot_profile") or {}
        author = (
            names.get(user or "")
            or message.get("username")
            or (bot.get("name") if isinstance(bot, dict) else None)
            or user
            or message.get("bot_id")
        )
        text = cut(_readable(_words(message), names), CHAT_TEXT_MOST)
        reactions = [
            str(r["name"])[:100]
            for r in message.get("reactions") or []
            if isinstance(r, dict) and r.get("name")
        ][:REACTIONS_MOST]
        return ChatMessage(
            channel=channel,
            ts=ts,
            at=_at(ts),
            user=user[:100] if user else None,
            author=one_line(str(author), 200) if author else None,
            text=text,
            reactions=reactions,
            mark=self.chat.mark_of(text, reactions),
            link=f"{workspace.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
            if workspace
            else None,
        )


def keep_transcript(store: Store, postmortem_id: str, messages: list[ChatMessage]) -> int:
    """Keep the transcript with the postmortem, once per message (by its ts; collecting again
    updates what changed, such as a reaction added since): how many it holds now."""
    kept = store.chat.keep(postmortem_id, messages)
    log.info("chat.transcript_kept", postmortem=postmortem_id, messages=kept)
    return kept


def configured(settings: Settings) -> list[Collector]:
    """The Slack chat collector when Slack is configured (FOLLOWTHROUGH_SLACK_BOT_TOKEN)."""
    config = settings.slack_config()
    if config is None:
        return []
    return [SlackChatCollector(SlackApi(config), settings.loaded_policy.chat)]


@contextmanager
def _vendor_errors(channel: str) -> Iterator[None]:
    """Slack's refusals and outages as the collector protocol's, in words for the owner."""
    try:
        yield
    except SlackRefused as refused:
        said = _REFUSALS.get(refused.error, str(refused))
        raise SourceRefused(said.format(channel=channel)) from refused
    except SlackUnavailable as err:
        raise SourceUnavailable(str(err)) from err


def _ts_of(at: datetime) -> str:
    return f"{at.timestamp():.6f}"


def _at(ts: str) -> datetime:
    """A message's ts as its time, to the microsecond (no float rounding)."""
    seconds, _, fraction = ts.partition(".")
    micro = int(fraction.ljust(6, "0")[:6])
    return datetime.fromtimestamp(int(seconds), UTC) + timedelta(microseconds=micro)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _words(message: dict[str, Any]) -> str:
    """The message's text; a bot's message with only attachments, their fallback text."""
    text = str(message.get("text") or "")
    if text:
        return text
    for attachment in message.get("attachments") or []:
        if isinstance(attachment, dict) and (attachment.get("fallback") or attachment.get("text")):
            return str(attachment.get("fallback") or attachment.get("text"))
    return ""


_ENTITY = re.compile(r"<([^<>\n]{1,2000})>")


def _readable(text: str, names: dict[str, str]) -> str:
    """Slack's mrkdwn as people read it: <@U123> as @name, <#C1|inc-7> as #inc-7, <url|label> as
    label (url); &amp;, &lt; and &gt; unescaped (the page escapes them again)."""

    def one(found: re.Match[str]) -> str:
        target, _, label = found.group(1).partition("|")
        if target.startswith("@"):
            return "@" + (label or names.get(target[1:]) or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return "@" + (label or target[1:].split("^")[0])
        return f"{label} ({target})" if label and label != target else target

    plain = _ENTITY.sub(one, text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


__all__ = ["SlackChatCollector", "configured", "keep_transcript"]
