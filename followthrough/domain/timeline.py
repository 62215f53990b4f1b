"""What the incident's own tools recorded, proposed as timeline entries (issue 18).

A collector (followthrough/integrations/timeline/) reads one source (PagerDuty, Opsgenie,
incident.io, FireHydrant, Prometheus's ALERTS, the incident's Slack channel) and returns
`CollectedEvent`s; `SourceReport` says how each source went, for the draft to show. Nothing here
does I/O. Which timeline entry an event proposes is decided once, in `proposed_entry`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from followthrough.domain.changes import NO_CHANGE, ChangePolicy, Deploy, suspects
from followthrough.domain.draft import Draft, TimelineEntry, TimelineKind
from followthrough.domain.incident import Incident

EVENT_TEXT_MOST = 2000  # one event's words; longer ones are cut, with an ellipsis
EVENTS_PER_SOURCE_MOST = 500  # per source and incident: the rest is reported, not kept


class EventKind(StrEnum):
    ALERT = "alert"
    ACKNOWLEDGE = "acknowledge"
    ESCALATION = "escalation"
    STATUS_UPDATE = "status_update"
    NOTE = "note"
    DECISION = "decision"
    CHAT_MESSAGE = "chat_message"
    RESOLVE = "resolve"
    DEPLOY = "deploy"


class CollectedEvent(BaseModel):
    """One thing that happened during the incident, as its source recorded it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="pagerduty, slack, ...")
    source_id: str = Field(
        min_length=1,
        max_length=200,
        description="the source's id for it: collecting again "
        "finds the same event by (source, source_id)",
    )
    at: AwareDatetime
    kind: EventKind
    author: str | None = Field(default=None, max_length=200)
    text: str = Field(default="", max_length=EVENT_TEXT_MOST)
    link: str | None = Field(default=None, max_length=2000, description="http(s) only")


SourceStatus = Literal["collected", "failed", "not_configured"]


class SourceReport(BaseModel):
    """How one source went for one incident: shown on the draft, never blocking it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    status: SourceStatus
    detail: str = Field(default="", max_length=500, description="in words, for the owner")
    events: int = 0  # how many it found (kept at most EVENTS_PER_SOURCE_MOST)


# The timeline kind each collected kind proposes. Acknowledge and resolve are the milestones
# themselves; an alert is only a detection candidate and a status update may be the first
# communication, which the owner confirms by keeping them as such (see `proposed_entry`).
_PROPOSED_KIND: dict[EventKind, TimelineKind] = {
    EventKind.ALERT: "alert",
    EventKind.ACKNOWLEDGE: "acknowledged",
    EventKind.ESCALATION: "escalation",
    EventKind.STATUS_UPDATE: "status_update",
    EventKind.NOTE: "note",
    EventKind.DECISION: "decision",
    EventKind.CHAT_MESSAGE: "chat_message",
    EventKind.RESOLVE: "resolved",
    EventKind.DEPLOY: "deploy",
}


def proposed_entry(event: CollectedEvent) -> TimelineEntry:
    """The timeline entry an event proposes, saying where it came from."""
    return TimelineEntry(
        at=event.at,
        kind=_PROPOSED_KIND[event.kind],
        description=event.text,
        source=event.source,
        source_id=event.source_id,
        author=event.author,
        link=event.link,
    )


class TimelineRequest(BaseModel):
    """What the collection activity is asked: this postmortem's incident, from every source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    postmortem_id: str
    incident: Incident


# The sources that know of an incident by the tool that reported it: a source here with no
# collector configured is reported on the draft as not configured, rather than left unsaid.
_EXPECTED_SOURCES: dict[str, tuple[str, ...]] = {
    "pagerduty": ("pagerduty",),
    "opsgenie": ("opsgenie",),
    "incidentio": ("incidentio",),
    "firehydrant": ("firehydrant",),
    "alertmanager": ("prometheus",),
    "grafana": ("prometheus",),
}


def expected_sources(incident: Incident) -> tuple[str, ...]:
    """The sources that would apply to the incident were they configured."""
    return _EXPECTED_SOURCES.get(incident.source, ())


def proposals(events: list[CollectedEvent], timeline: list[TimelineEntry]) -> list[TimelineEntry]:
    """The entries the collected events propose that the timeline does not hold yet (by
    source and source id), oldest first."""
    kept = {(e.source, e.source_id) for e in timeline if e.source and e.source_id}
    fresh = [e for e in events if (e.source, e.source_id) not in kept]
    return [proposed_entry(e) for e in sorted(fresh, key=lambda e: e.at)]


# --- deploys (issue 20): the changes before the incident, from the deploys table ----------------

DEPLOYS_SOURCE = "deploys"
SUSPECT = "Suspect (the last change before the incident started): "


def incident_start(incident: Incident) -> datetime:
    """When the incident started, as well as it is known."""
    return incident.started_at or incident.detected_at or incident.resolved_at


def cause_in_words(draft: Draft) -> str | None:
    """The change the draft names as the incident's cause, for its page and document: the
    deploy's timeline words when the timeline keeps it, else its id; None when not said."""
    if draft.caused_by_change is None:
        return None
    if draft.caused_by_change == NO_CHANGE:
        return "No change caused it."
    for entry in draft.timeline:
        if entry.source == DEPLOYS_SOURCE and entry.source_id == draft.caused_by_change:
            words = entry.description.removeprefix(SUSPECT)
            return f"Deploy {draft.caused_by_change}: {words}"
    return f"Deploy {draft.caused_by_change}"


def deploy_events(
    deploys: list[Deploy], incident: Incident, policy: ChangePolicy
) -> list[CollectedEvent]:
    """The deploys of the incident's services in the policy's window before it started, oldest
    first, the latest marked as the suspect. Each event's source id is the deploy's id, which is
    what a draft's `caused_by_change` names."""
    found = suspects(deploys, incident.services, incident_start(incident), policy)
    events = []
    for i, deploy in enumerate(found):
        words = f"{deploy.service} {deploy.version} deployed to {deploy.environment}"
        if deploy.rollback_of:
            words += f", rolling back {deploy.rollback_of}"
        if deploy.status != "succeeded":
            words += f" ({deploy.status.replace('_', ' ')})"
        events.append(
            CollectedEvent(
                source=DEPLOYS_SOURCE,
                source_id=deploy.id,
                at=deploy.at or incident_start(incident),
                kind=EventKind.DEPLOY,
                author=deploy.by,
                text=(SUSPECT + words) if i == len(found) - 1 else words,
                link=deploy.link,
            )
        )
    return events
