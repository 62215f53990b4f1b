"""How the incident channel's chat is read (issue 18): the policy's `chat:` section.

The policy's `chat:` section says how to find an incident's channel when the incident does not
name one (`slack_channel_pattern`, e.g. "inc-{id}") and which marks make a message a decision, a
status update or a chat message worth a timeline entry: a reaction (`decision`, without colons)
or a prefix the message starts with ("DECISION:", compared without case). Unmarked messages stay
in the transcript only: a channel's hundreds of lines would bury the entries that matter.
Nothing here does I/O.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ChatMark = Literal["decision", "status_update", "chat_message"]
MARKS: tuple[ChatMark, ...] = ("decision", "status_update", "chat_message")  # first match wins
_NOT_IN_A_NAME = re.compile(r"[^a-z0-9_-]+")  # Slack channel names: lowercase, digits, - and _
_PLACEHOLDER = re.compile(r"\{([a-z_]*)\}")
CHANNEL_NAME_MOST = 80


class ChatMarks(BaseModel):
    """What marks a message as one kind: any of these reactions, or text starting with a prefix."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reactions: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="emoji names without colons, e.g. pushpin",
    )
    prefixes: list[str] = Field(
        default_factory=list, max_length=10, description='e.g. "DECISION:"; case does not matter'
    )

    @field_validator("reactions")
    @classmethod
    def _emoji_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.fullmatch(r"[a-z0-9_+'-]{1,100}", name):
                raise ValueError(f"'{name}' is not an emoji name (write it without colons)")
        return names

    @field_validator("prefixes")
    @classmethod
    def _short_prefixes(cls, prefixes: list[str]) -> list[str]:
        for prefix in prefixes:
            if not prefix.strip() or len(prefix) > 40:
                raise ValueError(f"'{prefix}' must be 1-40 characters, not only spaces")
        return prefixes


class ChatPolicy(BaseModel):
    """The policy's `chat:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slack_channel_pattern: str | None = Field(
        default=None,
        description="the incident channel's name when the incident names none: {id} and "
        "{source} are the incident's, made fit for a channel name; * matches anything "
        '(e.g. "inc-{id}*"); none: only channels the incident names',
    )
    hours_before_resolution: int = Field(
        default=24,
        ge=1,
        le=24 * 14,
        description="how far back the chat is read when the incident gives no start",
    )
    decision: ChatMarks = Field(
        default_factory=lambda: ChatMarks(reactions=["decision"], prefixes=["DECISION:"])
    )
    status_update: ChatMarks = Field(
        default_factory=lambda: ChatMarks(
            reactions=["loudspeaker"], prefixes=["UPDATE:", "STATUS:"]
        )
    )
    chat_message: ChatMarks = Field(default_factory=lambda: ChatMarks(reactions=["pushpin"]))

    @field_validator("slack_channel_pattern")
    @classmethod
    def _a_pattern(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        names = _PLACEHOLDER.findall(pattern)
        if "id" not in names or set(names) - {"id", "source"}:
            raise ValueError("must hold {id}, and no placeholder but {id} and {source}")
        rest = _PLACEHOLDER.sub("", pattern)
        if not re.fullmatch(r"[a-z0-9_*-]{0,60}", rest):
            raise ValueError("outside its placeholders: lowercase letters, digits, -, _ and *")
        return pattern

    def channel_pattern(self, incident_id: str, source: str) -> str | None:
        """The pattern with the incident's id and source in it, as Slack would name them."""
        if self.slack_channel_pattern is None:
            return None
        values = {"id": channel_name_of(incident_id), "source": channel_name_of(source)}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.slack_channel_pattern)

    def mark_of(self, text: str, reactions: list[str]) -> ChatMark | None:
        """The first mark the message carries, in MARKS' order."""
        for mark in MARKS:
            marks: ChatMarks = getattr(self, mark)
            if set(marks.reactions) & set(reactions) or _prefix(text, marks.prefixes):
                return mark
        return None


def _prefix(text: str, prefixes: list[str]) -> str | None:
    start = text.lstrip().casefold()
    return next((p for p in prefixes if start.startswith(p.casefold())), None)


def channel_name_of(value: str) -> str:
    """A value as Slack would have it in a channel name: lowercase, and whatever is not a letter,
    digit, '-' or '_' (spaces, dots, colons) a '-'."""
    return _NOT_IN_A_NAME.sub("-", value.casefold()).strip("-")[:CHANNEL_NAME_MOST]


def matches(name: str, pattern: str) -> bool:
    """Whether a channel name fits the pattern (only * is special)."""
    return fnmatch.fnmatchcase(name, pattern.replace("[", "[[]"))
