"""The words of an item's Jira ticket: its description and the comments Followthrough posts.

The workflow sends facts (TicketRequest, TicketEscalation); the templates beside this module
word them, in Jira's wiki markup, as the notice templates word emails.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from followthrough.domain.tickets import TicketComment, TicketRequest, TicketRoute

TEMPLATES = Path(__file__).resolve().parent / "templates"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=False,  # wiki markup, not HTML; Jira renders it
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def ticket_description(
    request: TicketRequest, source: str, owner: str, unassigned_why: str | None
) -> str:
    """`source` is the postmortem in wiki markup (a link when it has a URL); `owner` names the
    owner and their address; `unassigned_why` says why Jira has nobody assigned, if so."""
    return _environment.get_template("description.j2").render(
        request=request, source=source, owner=owner, unassigned_why=unassigned_why
    )


def comment_text(comment: TicketComment) -> str:
    """The comment's words: an escalation's, else the text it was given."""
    if comment.escalation is None:
        return comment.text
    return _environment.get_template("escalation.j2").render(e=comment.escalation)


def no_sprint_text(route: TicketRoute) -> str:
    """The comment on a ticket asked for this sprint when its board has no active sprint."""
    return _environment.get_template("no_sprint.j2").render(route=route).strip()
