"""How much an open action item matters to users: its impact score, explained.

The score (0..100) weighs five things the record already knows about the item's incident and the
item itself: the error budget the incident burned, its severity, how many users it affected (the
draft's `users_affected`), how often its contributing factors recurred within the theme window, and
whether the item removes a class of failure (named in the policy's `failure_classes`) rather than
patching one defect. Each component is a fraction (0..1) of its weight; the score is the weighted
share of the whole, so a manager can read every point back to what it stands on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from followthrough.domain.limits import BURN_MAX

# The draft's Priority values (draft.py imports the policy, which imports this module).
TicketPriority = Literal["P0", "P1", "P2", "P3"]
Share = Annotated[float, Field(ge=0, le=1)]

COMPONENTS = ("budget", "severity", "users", "recurrence", "failure_class")


class ImpactWeights(BaseModel):
    """How much each component counts; only their proportions matter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budget: float = Field(default=30, ge=0, le=1000, description="error budget consumed")
    severity: float = Field(default=25, ge=0, le=1000)
    users: float = Field(default=15, ge=0, le=1000, description="users affected")
    recurrence: float = Field(default=15, ge=0, le=1000, description="recurring factors")
    failure_class: float = Field(
        default=15, ge=0, le=1000, description="the item removes a class of failure"
    )

    @cached_property
    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in COMPONENTS}

    @model_validator(mode="after")
    def _something_counts(self) -> ImpactWeights:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("at least one weight must be above 0")
        return self


class PriorityThresholds(BaseModel):
    """The lowest score that makes a ticket P0, P1, P2; below P2's it is P3."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    P0: float = Field(default=75, ge=0, le=100)
    P1: float = Field(default=50, ge=0, le=100)
    P2: float = Field(default=25, ge=0, le=100)

    @model_validator(mode="after")
    def _descending(self) -> PriorityThresholds:
        if not self.P0 >= self.P1 >= self.P2:
            raise ValueError("P0 >= P1 >= P2 is required (a higher priority needs a higher score)")
        return self


class ImpactPolicy(BaseModel):
    """The policy's `impact:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: ImpactWeights = Field(default_factory=ImpactWeights)
    severities: dict[str, Share] = Field(
        default_factory=dict,
        description="severity name -> its share of the severity weight (0..1); unlisted: 0",
    )
    budget_full_percent: float = Field(
        default=100, gt=0, le=100_000, description="budget burned (percent) that counts in full"
    )
    users_full: int = Field(default=10_000, ge=1, description="users affected that count in full")
    recurrence_full: int = Field(
        default=3, ge=2, description="postmortems sharing a factor (this one included) in full"
    )
    priorities: PriorityThresholds = Field(default_factory=PriorityThresholds)
    sprint_suggestions: int = Field(
        default=3, ge=0, le=100, description="per team, the top items suggested for this sprint"
    )


class FailureClass(BaseModel):
    """A class of failure an action item may remove, and the factor tags it covers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(min_length=1, max_length=500)
    tags: list[str] = Field(default_factory=list, max_length=50)


class BudgetBurn(BaseModel):
    """What the incident burned of one SLO's error budget (the SLO review's figure)."""

    model_config = ConfigDict(frozen=True)

    slo: str
    name: str = ""
    service: str = ""
    budget_consumed: float = Field(ge=0, le=BURN_MAX)  # a fraction of the period's budget
    period_days: float | None = None


class ImpactFacts(BaseModel):
    """What one item's score stands on (read from the record, passed to a workflow as is)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: str
    slo_burns: list[BudgetBurn] = Field(default_factory=list)
    users_affected: int | None = Field(default=None, ge=0)
    # The factor tag shared by the most approved postmortems within the theme window, and how
    # many (this one included); None/0: no tags or not approved yet.
    recurring_tag: str | None = None
    recurrence: int = Field(default=0, ge=0)
    removes_class: str | None = None


class ImpactFactsRequest(BaseModel):
    """Which postmortem's impact facts to read, and the theme window recurrence counts in."""

    model_config = ConfigDict(frozen=True)

    postmortem_id: str
    window_days: int = Field(ge=1)


class ImpactComponent(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # one of COMPONENTS
    label: str  # in a manager's words
    points: float  # its share of the score (0..weight share of 100)
    figure: str  # what it measured, e.g. "37.5 % of the budget"
    reason: str  # what the figure stands on


class ImpactScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    score: float = Field(ge=0, le=100)
    components: list[ImpactComponent]

    def top_reasons(self, n: int = 2) -> list[ImpactComponent]:
        """The components that gave the most points, biggest first (none that gave none)."""
        ranked = sorted(self.components, key=lambda c: (-c.points, COMPONENTS.index(c.name)))
        return [c for c in ranked if c.points > 0][:n]

    def explanation(self) -> str:
        """One sentence per component, e.g. for a ticket or an item page."""
        return " ".join(
            f"{c.label}: {c.figure} ({c.reason}), {c.points:g} points." for c in self.components
        )


def impact_problems(
    impact: ImpactPolicy,
    failure_classes: dict[str, FailureClass],
    severities: list[str],
    tags: list[str],
) -> list[str]:
    """What in the `impact:` and `failure_classes:` sections names something the policy lacks."""
    problems = [
        f"impact.severities.{name}: unknown severity '{name}'"
        for name in impact.severities
        if name not in severities
    ]
    for name, found in failure_classes.items():
        if not name.strip() or name != name.strip() or len(name) > 64:
            problems.append(
                f"failure_classes.{name}: a name of 1..64 characters without spaces around"
            )
        for tag in found.tags:
            if tags and tag not in tags:
                problems.append(
                    f"failure_classes.{name}.tags: '{tag}' is not in contributing_factor_tags"
                )
    return problems


def _share(value: float, full: float) -> float:
    return max(0.0, min(value / full, 1.0))


def impact_score(
    facts: ImpactFacts, policy: ImpactPolicy, failure_classes: dict[str, FailureClass]
) -> ImpactScore:
    """The item's score and, per component, its figure and what it stands on."""
    weights = policy.weights.as_dict
    total = sum(weights.values())

    def points(name: str, fraction: float) -> float:
        return round(100 * weights[name] * fraction / total, 1)

    parts: list[ImpactComponent] = []

    worst = max(facts.slo_burns, key=lambda b: (b.budget_consumed, b.slo), default=None)
    if worst is None:
        parts.append(
            ImpactComponent(
                name="budget",
                label="Error budget",
                points=0,
                figure="none measured",
                reason="the postmortem's SLO review recorded no SLO",
            )
        )
    else:
        percent = round(worst.budget_consumed * 100, 1)
        period = f"{worst.period_days:g}-day " if worst.period_days else ""
        parts.append(
            ImpactComponent(
                name="budget",
                label="Error budget",
                points=points("budget", _share(percent, policy.budget_full_percent)),
                figure=f"{percent:g} % of the {period}budget burned",
                reason=f"SLO '{worst.name or worst.slo}' of {worst.service}, from the postmortem's "
                f"SLO review; {policy.budget_full_percent:g} % counts in full",
            )
        )

    share = policy.severities.get(facts.severity, 0.0)
    parts.append(
        ImpactComponent(
            name="severity",
            label="Severity",
            points=points("severity", share),
            figure=facts.severity,
            reason=f"the policy counts {facts.severity} at {share * 100:g} %",
        )
    )

    if facts.users_affected is None:
        parts.append(
            ImpactComponent(
                name="users",
                label="Users affected",
                points=0,
                figure="not stated",
                reason="the postmortem does not say how many users were affected",
            )
        )
    else:
        parts.append(
            ImpactComponent(
                name="users",
                label="Users affected",
                points=points("users", _share(facts.users_affected, policy.users_full)),
                figure=f"{facts.users_affected:,} users",
                reason=f"from the postmortem; {policy.users_full:,} count in full",
            )
        )

    if facts.recurring_tag is None or facts.recurrence < 2:
        parts.append(
            ImpactComponent(
                name="recurrence",
                label="Recurrence",
                points=0,
                figure="first time",
                reason="no other approved postmortem shares its contributing factors "
                "within the theme window",
            )
        )
    else:
        others = facts.recurrence - 1
        fraction = _share(others, policy.recurrence_full - 1)
        parts.append(
            ImpactComponent(
                name="recurrence",
                label="Recurrence",
                points=points("recurrence", fraction),
                figure=f"{facts.recurrence} postmortems",
                reason=f"'{facts.recurring_tag}' was a contributing factor in {others} other "
                f"approved postmortem{'s' if others != 1 else ''} within the theme window; "
                f"{policy.recurrence_full} count in full",
            )
        )

    found = failure_classes.get(facts.removes_class or "")
    if found is None:
        parts.append(
            ImpactComponent(
                name="failure_class",
                label="Class of failure",
                points=0,
                figure="patches one defect",
                reason="the item names no class of failure it removes",
            )
        )
    else:
        covers = f" (covers {', '.join(found.tags)})" if found.tags else ""
        parts.append(
            ImpactComponent(
                name="failure_class",
                label="Class of failure",
                points=points("failure_class", 1.0),
                figure=f"removes '{facts.removes_class}'",
                reason=f"{found.description}{covers}",
            )
        )
    score = round(min(sum(p.points for p in parts), 100.0), 1)
    return ImpactScore(score=score, components=parts)


def priority_for(score: float, policy: ImpactPolicy) -> TicketPriority:
    """The ticket priority a score earns under the policy's thresholds."""
    thresholds = policy.priorities
    if score >= thresholds.P0:
        return "P0"
    if score >= thresholds.P1:
        return "P1"
    if score >= thresholds.P2:
        return "P2"
    return "P3"


def most_recurring(
    tags: list[str],
    at: datetime,
    seen: dict[str, list[tuple[str, datetime]]],
    window: timedelta,
) -> tuple[str | None, int]:
    """The tag of `tags` shared by the most postmortems resolved within `window` of `at`, and
    how many (the one resolved at `at` included); (None, 0) without tags.

    seen: per tag, the approved postmortems carrying it (id, incident resolution)."""
    best: tuple[str | None, int] = (None, 0)
    for tag in sorted(set(tags)):
        count = len({pm for pm, when in seen.get(tag, []) if abs(when - at) <= window})
        if count > best[1]:
            best = (tag, count)
    return best
