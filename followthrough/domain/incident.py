"""The normalized incident every source is turned into."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from followthrough.domain import limits
from followthrough.domain.bounds import Bounds
from followthrough.domain.policy import SLACK_CHANNEL, Policy
from followthrough.domain.problems import Problems, format_validation_error

# Milestones in the order they must happen; each becomes a pre-filled timeline entry.
ORDERED_MILESTONES = ("started", "detected", "acknowledged", "mitigated", "resolved")
MILESTONES = (*ORDERED_MILESTONES, "communicated")

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_KEY_PART = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_MOMENT: TypeAdapter[AwareDatetime | None] = TypeAdapter(AwareDatetime | None)


class UnmappedSeverity(BaseModel):
    """A vendor's severity the policy does not map, or none given: the source's default severity
    stood in, so the incident was not lost; its postmortem says so and the operators are told."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    value: str | None = Field(description="the vendor's value (one line); None: it gave none")
    default: str = Field(description="the policy's default severity for the source, used instead")

    @property
    def note(self) -> str:
        if self.value is None:
            return f"{self.source} gave no severity; mapped to {self.default} by default"
        return f"severity '{self.value}' is not mapped; mapped to {self.default} by default"

    @property
    def dedupe_key(self) -> str:
        """The operators hear of each (source, value) once, whichever incident brings it."""
        value = self.value
        if value is None:
            part = "none"
        elif _KEY_PART.match(value):
            part = f"v-{value}"
        else:  # a value unfit for a key (spaces, other scripts, length) goes by its hash
            part = "h-" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return f"policy-gap/{self.source}/severity/{part}"


class Incident(BaseModel):
    """A resolved incident, whatever tool reported it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, description="the source's incident id")
    title: str = Field(min_length=1)
    severity: str = Field(min_length=1, description="a severity name from the policy")
    resolved_at: AwareDatetime
    source: str = Field(default="generic", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    services: list[str] = Field(default_factory=list)
    labels: list[str] = Field(
        default_factory=list,
        description="the source's labels or tags (e.g. 'security'); the policy's `restricted` "
        "rules may name one. A default, so incidents recorded before it load and replay",
    )
    started_at: AwareDatetime | None = None
    detected_at: AwareDatetime | None = None
    acknowledged_at: AwareDatetime | None = None
    mitigated_at: AwareDatetime | None = None
    communicated_at: AwareDatetime | None = None
    commander: str | None = None
    summary: str = ""
    url: str | None = None
    chat_channel: str | None = Field(
        default=None,
        pattern=SLACK_CHANNEL,
        description="the incident's Slack channel, C... or #name, when its source names one; "
        "a default, so incidents recorded before it load and their workflows replay",
    )
    # Set by the webhook adapters only. A default, so incidents recorded before it still load
    # and workflows started before it replay with the same input.
    unmapped_severities: list[UnmappedSeverity] = Field(default_factory=list)

    @property
    def postmortem_id(self) -> str:
        """The postmortem's workflow id: one postmortem per incident, ever."""
        return f"postmortem-{self.source}-{self.id}"

    def milestone(self, name: str) -> Any:
        return getattr(self, f"{name}_at")


DEMO_SOURCE = "seed"  # the source of `followthrough seed`'s incidents: demo records, no workflow


def is_demo_record(record_id: str) -> bool:
    """A seeded postmortem or action item: made for demos, with no workflow behind it."""
    return record_id.startswith(f"postmortem-{DEMO_SOURCE}-")


class InvalidIncident(Problems):
    """An incident that cannot start a postmortem, with every problem found."""


def incident_problems(incident: Incident, policy: Policy) -> list[str]:
    """What is wrong with an incident that parsed, judged against the policy."""
    problems = incident_bounds(incident)
    if problems:  # times outside the window cannot even be compared
        return problems
    milestones = {name: incident.milestone(name) for name in ORDERED_MILESTONES}
    return _meaning_problems(incident.id, incident.severity, milestones, policy)


def _meaning_problems(
    incident_id: str | None,
    severity: str | None,
    milestones: dict[str, datetime | None],
    policy: Policy,
) -> list[str]:
    """The id's form, the severity against the policy and the milestones' order, for the values
    that are known (None: missing or already refused for its shape)."""
    problems = []
    if incident_id is not None and not _ID_PATTERN.match(incident_id):
        problems.append(f"id: '{incident_id}' must be 1-128 letters, digits, '.', '_', ':' or '-'")
    if severity is not None and severity not in policy.severities:
        known = ", ".join(policy.severities)
        problems.append(f"severity: '{severity}' is not in the policy ({known})")
    # Each milestone must come after the ones before it (communication may happen any time).
    seen = [(name, milestones.get(name)) for name in ORDERED_MILESTONES]
    present = [(name, at) for name, at in seen if at is not None]
    for (earlier, at_earlier), (later, at_later) in itertools.pairwise(present):
        if at_later < at_earlier:
            problems.append(
                f"{later}_at ({at_later.isoformat()}) is before {earlier}_at "
                f"({at_earlier.isoformat()})"
            )
    return problems


def _meaning_of_the_rest(data: dict[str, Any], err: ValidationError, policy: Policy) -> list[str]:
    """What the fields that did parse say against the policy, so a file with a shape problem
    hears of its other problems in the same message rather than in a second round."""
    refused = {str(e["loc"][0]) for e in err.errors() if e["loc"]}

    def usable(name: str) -> Any:
        return None if name in refused else data.get(name)

    def text(name: str) -> str | None:
        value = usable(name)
        return value if isinstance(value, str) and value else None

    milestones: dict[str, datetime | None] = {}
    for name in ORDERED_MILESTONES:
        try:
            milestones[name] = _MOMENT.validate_python(usable(f"{name}_at"))
        except ValidationError:
            milestones[name] = None
    window = Bounds()
    for name, at in milestones.items():
        window.moment(f"{name}_at", at)
    if window.problems:  # times outside the window cannot even be compared
        milestones = {}
    return window.problems + _meaning_problems(text("id"), text("severity"), milestones, policy)


def incident_bounds(incident: Incident) -> list[str]:
    """Every limit the incident passes (limits.py), each naming its field.

    A vendor's title and summary are made to fit before this (webhooks/base.py); a generic
    incident, which a person or a script writes, is refused instead.
    """
    check = Bounds()
    check.within_budget("incident", incident, limits.INCIDENT_BUDGET_BYTES)
    check.title("title", incident.title)
    check.name("severity", incident.severity)
    check.name("commander", incident.commander)
    check.text("summary", incident.summary, limits.LONG_TEXT_CHARS, lines=True)
    check.text("url", incident.url, limits.URL_CHARS)
    if check.count("services", incident.services, limits.LIST_ENTRIES):
        for i, service in enumerate(incident.services):
            check.name(f"services[{i}]", service)
    if check.count("labels", incident.labels, limits.LIST_ENTRIES):
        for i, label in enumerate(incident.labels):
            check.name(f"labels[{i}]", label)
    for name in MILESTONES:
        check.moment(f"{name}_at", incident.milestone(name))
    return check.problems


def incident_time_problems(incident: Incident, now: datetime) -> list[str]:
    """At the edge, where the clock is known: no time from the future (beyond clock skew) and
    no incident too old to follow up (limits.INCIDENT_MAX_AGE_DAYS)."""
    problems = []
    latest = now + timedelta(hours=limits.FUTURE_SKEW_HOURS)
    for name in MILESTONES:
        at = incident.milestone(name)
        if at is not None and at > latest:
            problems.append(f"{name}_at: {at.isoformat()} is in the future")
    earliest = now - timedelta(days=limits.INCIDENT_MAX_AGE_DAYS)
    if incident.resolved_at < earliest:
        problems.append(
            f"resolved_at: {incident.resolved_at.isoformat()} is more than "
            f"{limits.INCIDENT_MAX_AGE_DAYS} days ago"
        )
    return problems


def parse_incident(
    data: Any, policy: Policy, *, origin: str = "incident", now: datetime | None = None
) -> Incident:
    """Validate a generic incident (a dict or JSON text) against the schema and the policy, and,
    given `now`, against the clock (incident_time_problems): every problem in one refusal."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as err:
            raise InvalidIncident(origin, [f"not valid JSON: {err}"]) from None
    if not isinstance(data, dict):
        raise InvalidIncident(origin, ["the incident must be a JSON object"])
    if "unmapped_severities" in data:  # a generic incident names a policy severity itself
        raise InvalidIncident(origin, ["unmapped_severities: set by Followthrough, not by senders"])
    try:
        incident = Incident.model_validate(data)
    except ValidationError as err:
        shape = format_validation_error(err)
        raise InvalidIncident(origin, shape + _meaning_of_the_rest(data, err, policy)) from None
    problems = incident_problems(incident, policy)
    if now is not None and not incident_bounds(incident):  # else its times cannot be judged
        problems += incident_time_problems(incident, now)
    if problems:
        raise InvalidIncident(origin, problems)
    return incident
