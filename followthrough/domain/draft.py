"""The postmortem draft and the rules a draft must meet before review.

The draft model is deliberately lenient (every section may be missing) so that one pass of
`draft_problems` can name *every* missing section and every vague action item at once. An approved
draft yields strict `ActionItemSpec`s, each with exactly one acceptance criterion.
"""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from followthrough.domain import limits
from followthrough.domain.bounds import Bounds, due_date_problem
from followthrough.domain.communication import CommunicationReview, review_communication
from followthrough.domain.criteria import AcceptanceCriterion, Manual, parse_criterion
from followthrough.domain.draft_templates import templates_for
from followthrough.domain.incident import MILESTONES, ORDERED_MILESTONES, Incident
from followthrough.domain.policy import Policy
from followthrough.domain.problems import Problems, format_validation_error
from followthrough.domain.routing import item_routing_problems


class Priority(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


REQUIRED_TIMELINE_KINDS = ("started", "detected", "mitigated", "resolved")
TimelineKind = Literal[
    "started",
    "detected",
    "acknowledged",
    "mitigated",
    "communicated",
    "resolved",
    "decision",
    "note",
    # Proposed by the collected events (domain/timeline.py): kept as they are, or changed into
    # a milestone by the owner.
    "alert",
    "escalation",
    "status_update",
    "chat_message",
    "deploy",  # a deploy of the incident's services before it started (domain/changes.py)
]


class TimelineEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: AwareDatetime
    kind: TimelineKind = "note"
    description: str = ""
    # Where a collected entry came from (None: typed by hand); the submitted timeline keeps it.
    source: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,31}$")
    source_id: str | None = Field(default=None, max_length=200)
    author: str | None = Field(default=None, max_length=200)
    link: str | None = Field(default=None, max_length=2000)


class ContributingFactor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    tags: list[str] = Field(default_factory=list)


class SloChange(BaseModel):
    """Which SLO an action item changes, and what about it: its alerting or its SLI."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slo: str = Field(min_length=1, description="the SLO's id")
    change: Literal["alerting", "sli"]


class SloImpactEstimate(BaseModel):
    """The draft's own account of what the incident cost its SLOs.

    Used where Prometheus cannot measure it (no SLI queries, no Prometheus URL, or Prometheus
    failed): the fraction of requests that failed over the impact (timeline 'started' to
    'mitigated'), weighted by how busy the service was compared with its average.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    slos: list[str] | None = Field(
        default=None, description="the SLOs affected; default: those of the incident's services"
    )
    fraction_affected: float | None = Field(default=None, ge=0, le=1)
    traffic_weight: float = Field(default=1.0, gt=0, description="incident / average traffic")
    budget_remaining_before: float | None = Field(
        default=None, le=1, description="the budget left when the incident began; default: all"
    )


class ActionItemDraft(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = ""
    owner: str | None = None
    team: str | None = None
    due: date | None = None
    priority: str | None = None
    # Read as written and judged by draft_problems, so every problem is named in one round.
    acceptance_criterion: dict[str, Any] | list[Any] | None = None
    description: str = ""
    slo_change: SloChange | None = None
    # The item changes how status updates go out: it answers a breach of the communication
    # contract, as an slo_change answers a late SLO alert.
    communication: bool = False
    # Where its ticket is linked: a key of the policy's objectives, or "tech-debt"; and whether
    # it goes into the team's active sprint rather than the backlog.
    objective: str | None = None
    this_sprint: bool = False
    # A failure class from the policy's failure_classes that the item removes (rather than
    # patching one defect): it raises the item's impact score.
    removes_class: str | None = None


class Draft(BaseModel):
    """What the postmortem owner submits for review."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: str = ""
    impact: str = ""
    timeline: list[TimelineEntry] = Field(default_factory=list)
    contributing_factors: list[ContributingFactor] = Field(default_factory=list)
    detection_gaps: list[str] = Field(default_factory=list)
    recovery_steps: list[str] = Field(default_factory=list)
    recovery_validation: str = Field(default="", description="how recovery was shown to hold")
    action_items: list[ActionItemDraft] = Field(default_factory=list)
    slo_impact: SloImpactEstimate | None = None
    caused_by_change: str | None = Field(
        default=None,
        description='the deploy (its id) that caused the incident, "none" when no change did; '
        "None: not said. The edge checks it against the incident's services' stored deploys",
    )
    users_affected: int | None = Field(
        default=None, description="how many users the incident affected, if known"
    )


class ActionItemSpec(BaseModel):
    """An approved action item: everything its workflow needs, nothing optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: int = Field(ge=1)
    title: str
    owner: str
    team: str
    due: date
    priority: Priority
    acceptance_criterion: AcceptanceCriterion
    description: str = ""
    slo_change: SloChange | None = None
    communication: bool = False  # it answers a broken communication contract
    removes_class: str | None = None  # a policy failure class it removes
    proposed_change: str = Field(
        default="", description="for an SLO alerting change: the rules Followthrough proposes"
    )
    objective: str | None = Field(
        default=None, description="a key of the policy's objectives, or tech-debt"
    )
    this_sprint: bool = False  # into the team's active sprint, not the backlog


class InvalidDraft(Problems):
    """A draft that cannot go to review, with every problem found."""


def parse_draft(data: Any, *, origin: str = "draft") -> Draft:
    """Turn a YAML/JSON mapping into a Draft; shape errors are listed all at once."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidDraft(origin, ["the draft must be a mapping of sections"])
    try:
        return Draft.model_validate(data)
    except ValidationError as err:
        raise InvalidDraft(origin, format_validation_error(err)) from None


def prefilled_timeline(incident: Incident) -> list[TimelineEntry]:
    """The incident's own milestones, so MTTD/MTTM/MTTR need no typing."""
    return [
        TimelineEntry(at=at, kind=name, description=f"{name} (from the incident)")
        for name in MILESTONES
        if (at := incident.milestone(name)) is not None
    ]


def merged_timeline(incident: Incident, draft: Draft) -> list[TimelineEntry]:
    """Pre-filled milestones plus the draft's entries; a drafted milestone wins."""
    drafted_milestones = {e.kind for e in draft.timeline if e.kind in MILESTONES}
    kept = [e for e in prefilled_timeline(incident) if e.kind not in drafted_milestones]
    return sorted([*kept, *draft.timeline], key=lambda e: e.at)


# Words that promise effort rather than an outcome someone can check.
_VAGUE = re.compile(
    r"\b(improv\w*|better|investigat\w*|look(?:ing)? into|consider\w*|more robust|as needed|"
    r"as appropriate|where possible|if possible|try to|etc|tbd|todo|some|various|"
    r"should be fine|monitor(?:ing)? more)\b",
    re.IGNORECASE,
)
_CHECKABLE = re.compile(r"\d|[<>=%]|\b(zero|no longer|never|every|all|none)\b", re.IGNORECASE)


def vagueness(criterion: Manual) -> str | None:
    """Why a sign-off criterion is not measurable, or None when it is."""
    text = criterion.description.strip()
    words = text.split()
    if len(words) < 4:
        return "is too short to check; say what will be observably true"
    vague = _VAGUE.search(text)
    if vague and not _CHECKABLE.search(text):
        return (
            f"is not measurable ('{vague.group(0)}' promises effort, not an outcome); name a "
            "number, a threshold or an observable fact (an alert that fires, a test that passes)"
        )
    return None


def draft_bounds(draft: Draft, *, today: date) -> list[str]:
    """Every limit the draft passes (limits.py), each naming its field; [] when within them all.

    Checked by the API, dashboard and CLI before anything is sent, and again by the workflow's
    validator, so no draft can make the postmortem's record too large to store.
    """
    check = Bounds()
    paragraph = limits.PARAGRAPH_CHARS
    check.within_budget("draft", draft, limits.UPDATE_BUDGET_BYTES)
    check.text("summary", draft.summary, limits.LONG_TEXT_CHARS, lines=True)
    check.text("impact", draft.impact, limits.LONG_TEXT_CHARS, lines=True)
    check.text("recovery_validation", draft.recovery_validation, paragraph, lines=True)
    check.text("caused_by_change", draft.caused_by_change, limits.TITLE_CHARS)
    if check.count("timeline", draft.timeline, limits.TIMELINE_ENTRIES):
        for i, entry in enumerate(draft.timeline):
            check.moment(f"timeline[{i}].at", entry.at)
            check.text(f"timeline[{i}].description", entry.description, paragraph, lines=True)
            if entry.at.date() > today + timedelta(days=1):
                check.problems.append(f"timeline[{i}].at: {entry.at.isoformat()} is in the future")
    if check.count("contributing_factors", draft.contributing_factors, limits.LIST_ENTRIES):
        for i, factor in enumerate(draft.contributing_factors):
            where = f"contributing_factors[{i}]"
            check.text(f"{where}.description", factor.description, paragraph, lines=True)
            if check.count(f"{where}.tags", factor.tags, limits.TAGS_PER_FACTOR):
                for j, tag in enumerate(factor.tags):
                    check.name(f"{where}.tags[{j}]", tag)
    for section in ("detection_gaps", "recovery_steps"):
        entries: list[str] = getattr(draft, section)
        if check.count(section, entries, limits.LIST_ENTRIES):
            for i, text in enumerate(entries):
                check.text(f"{section}[{i}]", text, paragraph, lines=True)
    if check.count("action_items", draft.action_items, limits.ACTION_ITEMS):
        for i, item in enumerate(draft.action_items):
            _action_item_bounds(check, f"action_items[{i}]", item, today)
    if (estimate := draft.slo_impact) is not None:
        slos = estimate.slos or []
        if check.count("slo_impact.slos", slos, limits.LIST_ENTRIES):
            for i, slo in enumerate(slos):
                check.name(f"slo_impact.slos[{i}]", slo)
        check.number("slo_impact.fraction_affected", estimate.fraction_affected, 0, 1)
        weight = estimate.traffic_weight
        check.number("slo_impact.traffic_weight", weight, 0, limits.TRAFFIC_WEIGHT_MAX)
        check.number(
            "slo_impact.budget_remaining_before",
            estimate.budget_remaining_before,
            limits.BUDGET_REMAINING_MIN,
            1,
        )
    users = draft.users_affected  # an int compared as one: 10**400 cannot become a float
    if users is not None and not 0 <= users <= limits.USERS_AFFECTED_MAX:
        check.problems.append(
            f"users_affected: must be a whole number from 0 to {limits.USERS_AFFECTED_MAX:,}"
        )
    return check.problems


def _action_item_bounds(check: Bounds, where: str, item: ActionItemDraft, today: date) -> None:
    check.title(f"{where}.title", item.title)
    check.name(f"{where}.owner", item.owner)
    check.name(f"{where}.team", item.team)
    check.name(f"{where}.priority", item.priority)
    check.text(f"{where}.description", item.description, limits.LONG_TEXT_CHARS, lines=True)
    if item.due is not None:
        check.day(f"{where}.due", item.due)
        if (too_far := due_date_problem(f"{where}.due", item.due, today)) is not None:
            check.problems.append(too_far)
    if item.slo_change is not None:
        check.name(f"{where}.slo_change.slo", item.slo_change.slo)
    check.name(f"{where}.objective", item.objective)
    check.name(f"{where}.removes_class", item.removes_class)
    check.json_value(f"{where}.acceptance_criterion", item.acceptance_criterion)


def draft_problems(draft: Draft, incident: Incident, policy: Policy, *, today: date) -> list[str]:
    """Every reason this draft cannot go to review; an empty list means it can."""
    problems: list[str] = draft_bounds(draft, today=today)

    if not draft.impact.strip():
        problems.append("impact: missing; say who was affected, how, and for how long")

    timeline = merged_timeline(incident, draft)
    kinds = {entry.kind for entry in timeline}
    missing = [kind for kind in REQUIRED_TIMELINE_KINDS if kind not in kinds]
    if missing:
        problems.append(f"timeline: missing {', '.join(missing)}")
    if "decision" not in kinds:
        problems.append("timeline: no decision points; add entries with kind 'decision'")
    problems.extend(_timeline_order_problems(timeline))
    for i, entry in enumerate(draft.timeline):
        if entry.kind in ("decision", "note") and not entry.description.strip():
            problems.append(f"timeline[{i}]: a {entry.kind} needs a description")

    if not any(f.description.strip() for f in draft.contributing_factors):
        problems.append("contributing_factors: missing; list at least one")
    for i, factor in enumerate(draft.contributing_factors):
        for tag in policy.unknown_tags(factor.tags):
            problems.append(
                f"contributing_factors[{i}]: tag '{tag}' is not in the policy's taxonomy "
                f"(known: {', '.join(policy.contributing_factor_tags)})"
            )
    if not any(g.strip() for g in draft.detection_gaps):
        problems.append("detection_gaps: missing; say what would have caught this sooner")
    if not any(s.strip() for s in draft.recovery_steps):
        problems.append("recovery_steps: missing; list the steps that restored service")

    problems.extend(_communication_problems(draft, incident, policy))
    problems.extend(_template_problems(draft, incident, policy))
    if not draft.action_items:
        problems.append("action_items: missing; list at least one")
    titles: dict[str, int] = {}
    for i, item in enumerate(draft.action_items):
        problems.extend(_action_item_problems(i, item, policy, today, titles))
        if item.team in policy.teams:
            name = f"action_items[{i}]" + (f" '{item.title}'" if item.title.strip() else "")
            problems.extend(
                item_routing_problems(
                    name, policy, item.team, incident.services, item.objective, item.this_sprint
                )
            )
    return problems


def communication_review(
    incident: Incident, draft: Draft, policy: Policy
) -> CommunicationReview | None:
    """Whether the draft's timeline kept the severity's communication contract; None when the
    policy sets none for it or the timeline has no window to judge."""
    severity = policy.severities.get(incident.severity)
    if severity is None or severity.status_updates is None:
        return None
    return review_communication(
        merged_timeline(incident, draft), incident.severity, severity.status_updates
    )


def communication_answers(draft: Draft) -> list[str]:
    """The titles of the action items that answer a broken communication contract."""
    return [a.title.strip() for a in draft.action_items if a.communication]


def _communication_problems(draft: Draft, incident: Incident, policy: Policy) -> list[str]:
    """A broken communication contract is a finding the draft must answer with an action item."""
    review = communication_review(incident, draft, policy)
    if review is None or review.held or communication_answers(draft):
        return []
    return [
        f"communication: {'; '.join(review.findings())}. Add an action item with "
        "communication: true that changes how status updates go out (or add the status_update "
        "entries the timeline is missing)"
    ]


def _template_problems(draft: Draft, incident: Incident, policy: Policy) -> list[str]:
    """The sections the policy's templates for this kind of incident add to the rules."""
    problems = []
    for key, template in templates_for(policy.templates, incident.severity, incident.services):
        for section in template.required_sections:
            value = getattr(draft, section)
            if value is None or (isinstance(value, str) and not value.strip()):
                problems.append(f"{section}: missing; the policy's template '{key}' requires it")
    return problems


def _timeline_order_problems(timeline: list[TimelineEntry]) -> list[str]:
    at = {e.kind: e.at for e in timeline if e.kind in ORDERED_MILESTONES}
    present = [kind for kind in ORDERED_MILESTONES if kind in at]
    return [
        f"timeline: {later} ({at[later].isoformat()}) is before {earlier} "
        f"({at[earlier].isoformat()})"
        for earlier, later in itertools.pairwise(present)
        if at[later] < at[earlier]
    ]


def _action_item_problems(
    i: int, item: ActionItemDraft, policy: Policy, today: date, titles: dict[str, int]
) -> list[str]:
    name = f"action_items[{i}]" + (f" '{item.title}'" if item.title.strip() else "")
    problems = []
    title = item.title.strip()
    if not title:
        problems.append(f"{name}: title is missing")
    elif title.lower() in titles:
        problems.append(f"{name}: same title as action_items[{titles[title.lower()]}]")
    else:
        titles[title.lower()] = i

    if not item.owner:
        problems.append(f"{name}: owner is missing")
    elif item.owner not in policy.people:
        problems.append(f"{name}: owner '{item.owner}' is not in the policy's directory")
    if not item.team:
        problems.append(f"{name}: team is missing")
    elif item.team not in policy.teams:
        problems.append(f"{name}: team '{item.team}' is not in the policy")
    elif item.owner in policy.people and not policy.is_in_team(str(item.owner), item.team):
        problems.append(f"{name}: owner '{item.owner}' is not in team '{item.team}'")
    if item.due is None:
        problems.append(f"{name}: due date is missing")
    elif item.due <= today:
        problems.append(f"{name}: due date {item.due.isoformat()} is not in the future")
    if not item.priority:
        problems.append(f"{name}: priority is missing (one of {', '.join(Priority)})")
    elif item.priority not in Priority.__members__:
        problems.append(f"{name}: priority '{item.priority}' is not one of {', '.join(Priority)}")

    if item.removes_class is not None and item.removes_class not in policy.failure_classes:
        known = ", ".join(policy.failure_classes) or "the policy names none"
        problems.append(
            f"{name}: removes_class '{item.removes_class}' is not one of the policy's "
            f"failure_classes ({known})"
        )

    written = item.acceptance_criterion
    if written is None or written == [] or written == {}:
        problems.append(f"{name}: acceptance criterion is missing")
    elif isinstance(written, list) and len(written) > 1:
        problems.append(
            f"{name}: has {len(written)} acceptance criteria; exactly one per action item "
            "(split it into separate items)"
        )
    else:
        criterion, wrong = parse_criterion(the_criterion(item))
        problems.extend(f"{name}: acceptance criterion: {why}" for why in wrong)
        if isinstance(criterion, Manual):
            problems.extend(_sign_off_problems(name, criterion, item, policy))
    return problems


def the_criterion(item: ActionItemDraft) -> Any:
    """What the item's author wrote as its one criterion (also accepted: a list of one)."""
    written = item.acceptance_criterion
    return written[0] if isinstance(written, list) and written else written


def _sign_off_problems(
    name: str, criterion: Manual, item: ActionItemDraft, policy: Policy
) -> list[str]:
    problems = []
    if (why := vagueness(criterion)) is not None:
        problems.append(f"{name}: acceptance criterion '{criterion.description.strip()}' {why}")
    if criterion.verifier is not None:
        if criterion.verifier == item.owner:
            problems.append(f"{name}: the verifier must not be the owner")
        elif criterion.verifier not in policy.people:
            problems.append(
                f"{name}: verifier '{criterion.verifier}' is not in the policy's directory"
            )
    return problems


def factor_tags(draft: Draft) -> list[str]:
    """Every tag the draft's contributing factors carry, once each, sorted."""
    return sorted({t.strip() for f in draft.contributing_factors for t in f.tags if t.strip()})


def action_item_specs(
    draft: Draft, proposed_changes: dict[str, str] | None = None
) -> list[ActionItemSpec]:
    """The approved draft's action items; call only on a draft with no problems.

    proposed_changes (SLO id -> rules) are attached to the items that change that SLO's alerting.
    """
    proposed = proposed_changes or {}
    specs = []
    for number, item in enumerate(draft.action_items, start=1):
        criterion, _ = parse_criterion(the_criterion(item))
        assert criterion is not None and item.owner and item.team and item.due and item.priority
        specs.append(
            ActionItemSpec(
                number=number,
                title=item.title.strip(),
                owner=item.owner,
                team=item.team,
                due=item.due,
                priority=Priority(item.priority),
                acceptance_criterion=criterion,
                description=item.description,
                slo_change=item.slo_change,
                communication=item.communication,
                removes_class=item.removes_class,
                proposed_change=(
                    proposed.get(item.slo_change.slo, "")
                    if item.slo_change and item.slo_change.change == "alerting"
                    else ""
                ),
                objective=item.objective,
                this_sprint=item.this_sprint,
            )
        )
    return specs
