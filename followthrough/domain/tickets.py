"""Tickets: each action item's issue in the team's tracker (Jira), and what flows each way.

Outbound, the item's workflow asks for its ticket (created once, found again on a retry), comments
on it when it escalates, and moves its due date when an extension is approved. Inbound, a ticket
moving to a done status is a done claim, which starts verification; it never skips it.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from followthrough.domain.impact import ImpactScore


def item_label(item_id: str) -> str:
    """The label that finds an item's ticket again (Jira labels: no spaces, at most 255)."""
    return "ft-" + item_id.removeprefix("postmortem-")[:240]


class TicketRoute(BaseModel):
    """Where an item's ticket lives: the tracker and project its team plans in (the policy's
    routing), and where it is linked: an objective's or the tech-debt backlog's epic, the team's
    active sprint. None on a request: the configured default Jira project, as before routing."""

    model_config = ConfigDict(frozen=True)

    tracker: Literal["jira", "github"] = "jira"
    project: str | None = None  # a Jira project key, or a GitHub repository "owner/name"
    labels: list[str] = Field(default_factory=list)  # the team's own, beside ours
    board: int | None = None  # the team's Jira Agile board (for its active sprint)
    epic: str | None = None  # an epic's key (Jira) or a milestone's title (GitHub)
    this_sprint: bool = False  # into the board's active sprint; otherwise the backlog


class TicketRequest(BaseModel):
    """Everything the ticket is created from: facts; the tracker words its description."""

    model_config = ConfigDict(frozen=True)

    action_item_id: str
    postmortem_id: str
    postmortem_title: str
    summary: str
    details: str = ""  # the item's own description, as its author wrote it
    accepted_when: str = ""  # the acceptance criterion, summarized
    proposed_change: str | None = None  # e.g. alert rules, shown as a copyable block
    # Histories from before `details` carry the words of the description's first part here.
    description: str = ""
    priority: str  # P0..P3; the settings map it to the tracker's priority names
    due: date
    owner: str  # a person in the policy; the settings map them to a Jira account
    owner_email: str
    postmortem_url: str | None = None
    route: TicketRoute | None = None
    # The priority above follows the item's impact score (policy `impact.priorities`); the
    # author's is kept on the item, and the ticket says why when they differ.
    author_priority: str | None = None
    impact: ImpactScore | None = None
    # A restricted postmortem's ticket: the Jira issue security level it is created at (the
    # policy rule's `jira_security_level`); set by the ticket activity, never by a workflow.
    security_level: str | None = None


class TicketRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    url: str


class TicketEscalation(BaseModel):
    """A step of the item's escalation ladder, for the ticket's comment."""

    model_config = ConfigDict(frozen=True)

    step: str  # reminder, due, manager, council, ...
    told: list[str]  # who was told by email
    due: date
    days_overdue: int = 0


class TicketComment(BaseModel):
    """A comment, posted at most once per dedupe key (a marker in its text finds it again): its
    text, or the tracker's words for an escalation."""

    model_config = ConfigDict(frozen=True)

    key: str
    dedupe_key: str
    text: str = ""
    escalation: TicketEscalation | None = None
    published: str | None = None  # the postmortem's published page: the comment links it


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
