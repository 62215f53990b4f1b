"""The response milestones a postmortem's figures stand on (time to detect, acknowledge,
mitigate, communicate, resolve).

Before approval they are the incident's own, as its source reported them. On approval the
reviewed timeline decides (issue 18): the owner corrected it, and it holds what the webhook never
carried (most sources send only a start and a resolution). The rule, once:

- each milestone is the earliest timeline entry of its kind (`merged_timeline`: a drafted
  milestone wins over the incident's), except resolved, which is the latest (an incident that
  resolved, came back and resolved again is resolved at the last one);
- communicated is the earliest `communicated` or kept `status_update` entry: the first status
  update is the first communication;
- an `alert` is only a detection candidate and counts for nothing unless the owner made it a
  `detected` entry; escalations, notes, decisions and chat messages count for nothing either.

Storage writes these as the postmortem's columns; migration 0017 restates this rule over stored
snapshots (tests/test_storage.py pins that the two agree).
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict

from followthrough.domain.draft import Draft, merged_timeline
from followthrough.domain.incident import MILESTONES, Incident
from followthrough.domain.postmortem import APPROVED_STATES, Postmortem

# The kinds that count as each milestone (others: none but the milestone's own name).
_COUNTS_AS = {"communicated": ("communicated", "status_update")}


class ResponseMilestones(BaseModel):
    """When each phase of the response happened; None where nobody knows."""

    model_config = ConfigDict(frozen=True)

    started: AwareDatetime | None = None
    detected: AwareDatetime | None = None
    acknowledged: AwareDatetime | None = None
    mitigated: AwareDatetime | None = None
    communicated: AwareDatetime | None = None
    resolved: AwareDatetime
    from_timeline: bool  # False: the incident's milestones (not yet approved)

    def at(self, name: str) -> AwareDatetime | None:
        value: AwareDatetime | None = getattr(self, name)
        return value


def incident_milestones(incident: Incident) -> ResponseMilestones:
    """The incident's own milestones: a postmortem's figures until its draft is approved."""
    return ResponseMilestones(
        **{name: incident.milestone(name) for name in MILESTONES}, from_timeline=False
    )


def response_milestones(incident: Incident, draft: Draft) -> ResponseMilestones:
    """The milestones of the reviewed timeline (see the module's rule)."""
    timeline = merged_timeline(incident, draft)

    def moments(name: str) -> list[AwareDatetime]:
        kinds = _COUNTS_AS.get(name, (name,))
        return sorted(e.at for e in timeline if e.kind in kinds)

    found = {name: _first(moments(name)) for name in MILESTONES if name != "resolved"}
    resolved = moments("resolved")
    return ResponseMilestones(
        **found,
        # The incident's resolution is always in the merged timeline unless a drafted one
        # replaced it; the fallback only keeps the type honest.
        resolved=resolved[-1] if resolved else incident.resolved_at,
        from_timeline=True,
    )


def postmortem_milestones(pm: Postmortem) -> ResponseMilestones:
    """The milestones a postmortem's figures use now: the reviewed timeline once approved."""
    if pm.state in APPROVED_STATES and pm.draft is not None:
        return response_milestones(pm.incident, pm.draft)
    return incident_milestones(pm.incident)


def _first(moments: list[AwareDatetime]) -> AwareDatetime | None:
    return moments[0] if moments else None
