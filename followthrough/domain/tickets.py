"""Tickets: each action item's issue in the team's tracker (Jira), and what flows each way.

Outbound, the item's workflow asks for its ticket (created once, found again on a retry), comments
on it when it escalates, and moves its due date when an extension is approved. Inbound, a ticket
moving to a done status is a done claim, which starts verification; it never skips it.
"""

from __future__ import annotations

from datetime import date

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


def item_label(item_id: str) -> str:
    """The label that finds an item's ticket again (Jira labels: no spaces, at most 255)."""
    return "ft-" + item_id.removeprefix("postmortem-")[:240]


class TicketRequest(BaseModel):
    """Everything the ticket is created from."""

    model_config = ConfigDict(frozen=True)

    action_item_id: str
    postmortem_id: str
    postmortem_title: str
    summary: str
    description: str = Field(description="the acceptance criterion and a link back")
    priority: str  # P0..P3; the settings map it to the tracker's priority names
    due: date
    owner: str  # a person in the policy; the settings map them to a Jira account
    owner_email: str
    postmortem_url: str | None = None


class TicketRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    url: str


class TicketComment(BaseModel):
    """A comment, posted at most once per dedupe key (a marker in its text finds it again)."""

    model_config = ConfigDict(frozen=True)

    key: str
    dedupe_key: str
    text: str


class TicketDue(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    due: date


class TicketDone(BaseModel):
    """Signal: the ticket reached a done status (from a webhook or the reconciliation)."""

    model_config = ConfigDict(frozen=True)

    key: str
    status: str
    resolution: str | None = None
    by: str | None = None  # who moved it, as the tracker names them
    at: AwareDatetime | None = None
    source: str = Field(default="webhook", description="webhook or reconciliation")
