"""The words of an item's GitHub issue: its body and the comments Followthrough posts.

The workflow sends facts (TicketRequest, TicketEscalation); the Markdown templates beside this
module word them, as the Jira tracker's templates do in Jira's wiki markup.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from followthrough.domain.tickets import TicketComment, TicketRequest

TEMPLATES = Path(__file__).resolve().parent / "templates"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=False,  # Markdown, not HTML; GitHub renders (and sanitizes) it
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def issue_body(request: TicketRequest, owner: str, unassigned_why: str | None) -> str:
    """`owner` names the owner and their address; `unassigned_why` says why nobody is
    assigned, if so."""
    title = " ".join(request.postmortem_title.split()) or request.postmortem_id
    source = f"[{_link_text(title)}]({request.postmortem_url})" if request.postmortem_url else title
    return _environment.get_template("body.md.j2").render(
        request=request, source=source, owner=owner, unassigned_why=unassigned_why
    )


def comment_text(comment: TicketComment) -> str:
    """The comment's words: an escalation's, else the text it was given."""
    if comment.escalation is None:
        return comment.text
    return _environment.get_template("escalation.md.j2").render(e=comment.escalation)


def due_moved_text(due: date, before: date | None) -> str:
    return _environment.get_template("due.md.j2").render(due=due, before=before)


def _link_text(text: str) -> str:
    """Text inside a Markdown link, where brackets would end it."""
    return text.replace("[", "(").replace("]", ")")
