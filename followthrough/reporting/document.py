"""The postmortem as a document people outside engineering read: what happened, who was
affected, the timeline, why it happened, and what is being done about it, with each follow-up's
state. One HTML page (printable: print CSS, no scripts), its Markdown, and its Confluence page
(storage format), from the same facts.

    page = postmortem_document(pm, items, policy, now)
    html, markdown = render_html(page), render_markdown(page)
    body = render_confluence(page, followthrough_url)
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict

from followthrough.domain.draft import TimelineEntry, merged_timeline, prefilled_timeline
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItem, ActionItemState, Postmortem
from followthrough.domain.response import postmortem_milestones
from followthrough.domain.timeline import cause_in_words
from followthrough.hrefs import linked, markdown_linked, safe_url

TEMPLATES = Path(__file__).resolve().parent / "document_templates"

# Said for people who do not read state names.
_ITEM_STATES = {
    ActionItemState.QUEUED: "waiting for its team's capacity",
    ActionItemState.OPEN: "in progress",
    ActionItemState.DONE_CLAIMED: "done, being verified",
    ActionItemState.VERIFIED: "verified done",
    ActionItemState.RISK_ACCEPTED: "not fixed: risk accepted",
}


class DocumentItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    priority: str
    owner: str
    team: str
    due: date
    state: str  # in words
    overdue: bool
    accepted_when: str
    evidence: str = ""  # the latest done claim's, or why the risk was accepted


class PostmortemDocument(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    incident_id: str
    title: str
    severity: str
    state: str
    owner: str
    team: str
    services: list[str]
    incident_url: str | None
    summary: str
    impact: str
    timeline: list[TimelineEntry]
    factors: list[str]
    detection_gaps: list[str]
    recovery_steps: list[str]
    caused_by: str | None = None  # the change the draft names as the cause, in words
    items: list[DocumentItem]
    verified: int
    zone: str
    written: bool  # a draft exists
    durations: list[tuple[str, str]]  # ("Time to detect", "12 min"), as the figures count them
    durations_from: str  # which milestones they are, in one sentence
    generated: datetime
    published_url: str | None = None  # its Confluence page, when it is published


def postmortem_document(
    pm: Postmortem, items: list[ActionItem], policy: Policy, now: datetime
) -> PostmortemDocument:
    today = policy.calendar.local_date(now)
    draft, incident = pm.draft, pm.incident
    timeline = merged_timeline(incident, draft) if draft else prefilled_timeline(incident)
    shown = [
        DocumentItem(
            title=item.spec.title,
            priority=item.spec.priority.value,
            owner=item.owner,
            team=item.team,
            due=item.due,
            state=_ITEM_STATES.get(item.state, item.state.value),
            overdue=(
                not item.resolved and item.state is not ActionItemState.QUEUED and item.due < today
            ),
            accepted_when=item.spec.acceptance_criterion.summary(),
            evidence=(
                item.risk_acceptance.reason
                if item.risk_acceptance
                else (item.claims[-1].evidence if item.claims else "")
            ),
        )
        for item in sorted(items, key=lambda item: item.spec.number)
    ]
    return PostmortemDocument(
        id=pm.id,
        incident_id=incident.id,
        title=incident.title,
        severity=pm.severity,
        state=pm.state.value.replace("_", " "),
        owner=pm.owner,
        team=pm.team or "",
        services=incident.services,
        incident_url=safe_url(incident.url),
        summary=(draft.summary if draft and draft.summary else incident.summary or ""),
        impact=draft.impact if draft else "",
        timeline=[e.model_copy(update={"at": policy.calendar.local_time(e.at)}) for e in timeline],
        factors=[f.description for f in draft.contributing_factors] if draft else [],
        detection_gaps=list(draft.detection_gaps) if draft else [],
        recovery_steps=list(draft.recovery_steps) if draft else [],
        caused_by=cause_in_words(draft) if draft else None,
        items=shown,
        verified=sum(1 for item in items if item.resolved),
        zone=policy.calendar.timezone,
        written=draft is not None,
        durations=_durations(pm),
        durations_from=_durations_from(pm),
        generated=policy.calendar.local_time(now),
    )


def _durations(pm: Postmortem) -> list[tuple[str, str]]:
    """The response times the figures count for this postmortem (domain/metrics.py's
    definitions), from the milestones they use now."""
    at = postmortem_milestones(pm)
    said = []
    for label, start, end in (
        ("Time to detect", at.started, at.detected),
        ("Time to acknowledge", at.detected, at.acknowledged),
        ("Time to mitigate", at.started, at.mitigated),
        ("Time to communicate", at.started, at.communicated),
        ("Time to resolve", at.started, at.resolved),
    ):
        if start is not None and end is not None and end >= start:
            said.append((label, _span((end - start).total_seconds())))
    return said


def _durations_from(pm: Postmortem) -> str:
    if postmortem_milestones(pm).from_timeline:
        return "Response times from the reviewed timeline."
    return (
        "Response times from the incident's own milestones until the draft is approved; "
        "then from its reviewed timeline."
    )


def _span(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_environment.filters["md"] = markdown_linked
_environment.filters["linked"] = linked
_environment.filters["safe_url"] = safe_url  # a collected entry's link: http(s) only


def render_html(document: PostmortemDocument) -> str:
    return _environment.get_template("postmortem.html.j2").render(d=document)


def render_markdown(document: PostmortemDocument) -> str:
    return _environment.get_template("postmortem.md.j2").render(d=document)


# XML 1.0 has no place for these (Confluence refuses such a body: "Error parsing xhtml").
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def render_confluence(document: PostmortemDocument, followthrough_url: str | None) -> str:
    """The page's body in Confluence's storage format (XHTML): the same facts as the printable
    document, without its "generated at" time (the same facts make the same body)."""
    body = _environment.get_template("postmortem.confluence.html.j2").render(
        d=document, followthrough_url=safe_url(followthrough_url)
    )
    return _NOT_XML.sub("", body)
