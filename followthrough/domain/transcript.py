"""The incident channel's transcript, kept with the postmortem, and the timeline entries its
marked messages propose (issue 18; the marks are the policy's, followthrough/domain/chat.py).
Nothing here does I/O."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from followthrough.domain.bounds import cut
from followthrough.domain.chat import ChatMark
from followthrough.domain.timeline import (
    EVENT_TEXT_MOST,
    EVENTS_PER_SOURCE_MOST,
    CollectedEvent,
    EventKind,
)

CHAT_SOURCE = "slack"
CHAT_TEXT_MOST = 4000  # one message's words in the transcript; longer ones are cut
TRANSCRIPT_MESSAGES_MOST = 2000  # per postmortem: a channel busier than this keeps its latest
TRANSCRIPT_CHARS_MOST = 1_000_000  # the transcript's words altogether
REACTIONS_MOST = 20  # distinct reactions kept per message
SLACK_TS = r"^\d{1,12}\.\d{1,8}$"  # a message's id in its channel, "1700000000.000100"

_EVENT_KIND: dict[ChatMark, EventKind] = {
    "decision": EventKind.DECISION,
    "status_update": EventKind.STATUS_UPDATE,
    "chat_message": EventKind.CHAT_MESSAGE,
}


class ChatMessage(BaseModel):
    """One message of the incident channel, as the transcript keeps it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str = Field(min_length=1, max_length=100, description="the channel's id")
    ts: str = Field(pattern=SLACK_TS, description="Slack's id for the message in its channel")
    at: AwareDatetime
    user: str | None = Field(default=None, max_length=100, description="Slack user id")
    author: str | None = Field(default=None, max_length=200)
    text: str = Field(default="", max_length=CHAT_TEXT_MOST)
    reactions: list[str] = Field(default_factory=list, max_length=REACTIONS_MOST)
    mark: ChatMark | None = None
    link: str | None = Field(default=None, max_length=2000, description="http(s) only")


def events_from(transcript: list[ChatMessage]) -> list[CollectedEvent]:
    """The marked messages as collected events, oldest first, at most EVENTS_PER_SOURCE_MOST;
    the mark a message got when it was collected decides its kind. Their words are as written
    (a "DECISION:" prefix included): the owner edits the entry, not the transcript."""
    events = [
        CollectedEvent(
            source=CHAT_SOURCE,
            source_id=message.ts,
            at=message.at,
            kind=_EVENT_KIND[message.mark],
            author=message.author,
            text=cut(message.text, EVENT_TEXT_MOST),
            link=message.link,
        )
        for message in sorted(transcript, key=lambda m: (m.at, m.ts))
        if message.mark is not None
    ]
    return events[:EVENTS_PER_SOURCE_MOST]
