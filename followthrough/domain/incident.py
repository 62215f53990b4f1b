"""The normalized incident every source is turned into."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from followthrough.domain.policy import Policy
from followthrough.domain.problems import Problems, format_validation_error

# Milestones in the order they must happen; each becomes a pre-filled timeline entry.
ORDERED_MILESTONES = ("started", "detected", "acknowledged", "mitigated", "resolved")
MILESTONES = (*ORDERED_MILESTONES, "communicated")

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class Incident(BaseModel):
    """A resolved incident, whatever tool reported it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, description="the source's incident id")
    title: str = Field(min_length=1)
    severity: str = Field(min_length=1, description="a severity name from the policy")
    resolved_at: AwareDatetime
    source: str = Field(default="generic", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    services: list[str] = Field(default_factory=list)
    started_at: AwareDatetime | None = None
    detected_at: AwareDatetime | None = None
    acknowledged_at: AwareDatetime | None = None
    mitigated_at: AwareDatetime | None = None
    communicated_at: AwareDatetime | None = None
    commander: str | None = None
    summary: str = ""
    url: str | None = None

    @property
    def postmortem_id(self) -> str:
        """The postmortem's workflow id: one postmortem per incident, ever."""
        return f"postmortem-{self.source}-{self.id}"

    def milestone(self, name: str) -> Any:
        return getattr(self, f"{name}_at")


class InvalidIncident(Problems):
    """An incident that cannot start a postmortem, with every problem found."""


def incident_problems(incident: Incident, policy: Policy) -> list[str]:
    """What is wrong with an incident that parsed, judged against the policy."""
    problems = []
    if not _ID_PATTERN.match(incident.id):
        problems.append(f"id: '{incident.id}' must be 1-128 letters, digits, '.', '_', ':' or '-'")
    if incident.severity not in policy.severities:
        known = ", ".join(policy.severities)
        problems.append(f"severity: '{incident.severity}' is not in the policy ({known})")
    # Each milestone must come after the ones before it (communication may happen any time).
    seen = [(name, incident.milestone(name)) for name in ORDERED_MILESTONES]
    present = [(name, at) for name, at in seen if at is not None]
    for (earlier, at_earlier), (later, at_later) in itertools.pairwise(present):
        if at_later < at_earlier:
            problems.append(
                f"{later}_at ({at_later.isoformat()}) is before {earlier}_at "
                f"({at_earlier.isoformat()})"
            )
    return problems


def parse_incident(data: Any, policy: Policy, *, origin: str = "incident") -> Incident:
    """Validate a generic incident (a dict or JSON text) against the schema and the policy."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as err:
            raise InvalidIncident(origin, [f"not valid JSON: {err}"]) from None
    if not isinstance(data, dict):
        raise InvalidIncident(origin, ["the incident must be a JSON object"])
    try:
        incident = Incident.model_validate(data)
    except ValidationError as err:
        raise InvalidIncident(origin, format_validation_error(err)) from None
    problems = incident_problems(incident, policy)
    if problems:
        raise InvalidIncident(origin, problems)
    return incident
