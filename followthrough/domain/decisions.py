"""Council decisions: what the reliability council decided, recorded, and (for a freeze) lifted.

A decision opens on a recurring theme, on an error budget exhausted by an incident, or on a
cross-cutting initiative anyone proposes. Only council members decide: pause feature work or
freeze releases for named services until a condition holds (an SLO's error budget back above a
level, named action items verified, or a date), approve an initiative (an epic with its items),
retire a named alert, or decline with a reason. A pause or a freeze is active from its decision
until it is lifted: by itself when its condition holds, or by the council by hand.

Pure: the workflow (workflows/council_decision.py) and the API call these functions.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from followthrough.domain import limits
from followthrough.domain.bounds import Bounds
from followthrough.domain.problems import Refusal, conflict, forbidden, invalid
from followthrough.domain.themes import Theme
from followthrough.domain.tickets import TicketRef, TicketRequest

if TYPE_CHECKING:  # the policy holds DecisionPolicy: imported for types only
    from followthrough.domain.policy import Policy

# The longest a lift condition's date may lie ahead: a freeze is not a roadmap.
LIFT_DATE_AHEAD_DAYS = 366
# A decision's id, as the API and the dashboard take it in a path.
DECISION_ID = re.compile(r"^decision-[a-z0-9][a-z0-9._-]{0,150}$")
# A service's name, as the policy spells them (and as a CI job sends one).
SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class DecisionPolicy(BaseModel):
    """The policy's `council_decisions` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recheck_minutes: int = Field(
        default=60,
        ge=1,
        le=7 * 24 * 60,
        description="how often a freeze's or pause's lift condition is measured again",
    )

    initiative_due_days: int = Field(
        default=90,
        ge=1,
        le=limits.DUE_AHEAD_DAYS,
        description="an approved initiative's tickets are due this many days after approval",
    )

    @property
    def recheck_every(self) -> timedelta:
        return timedelta(minutes=self.recheck_minutes)


class Trigger(StrEnum):
    THEME = "theme"  # a contributing factor came back (domain/themes.py)
    BUDGET_EXHAUSTED = "budget_exhausted"  # an incident used up an SLO's error budget
    INITIATIVE = "initiative"  # someone proposed a cross-cutting initiative


class Choice(StrEnum):
    PAUSE_FEATURE_WORK = "pause_feature_work"
    FREEZE_RELEASES = "freeze_releases"
    APPROVE_INITIATIVE = "approve_initiative"
    RETIRE_ALERT = "retire_alert"
    DECLINE = "decline"


# The choices that stay in force until lifted; a service with one is "frozen" to a CI gate.
HOLDS = frozenset({Choice.PAUSE_FEATURE_WORK, Choice.FREEZE_RELEASES})


class LiftKind(StrEnum):
    BUDGET_ABOVE = "budget_above"  # the SLO's error budget remaining is above `level`
    ITEMS_VERIFIED = "items_verified"  # every named action item is verified (or risk accepted)
    DATE = "date"  # on `on`


class LiftCondition(BaseModel):
    """What lifts a pause or a freeze; exactly the fields of its kind are given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: LiftKind
    slo_id: str | None = Field(default=None, max_length=limits.NAME_CHARS)
    level: float | None = Field(default=None, description="budget remaining, 0 to 1 (0.5: half)")
    item_ids: list[str] = Field(default_factory=list, max_length=limits.LIST_ENTRIES)
    on: AwareDatetime | None = None

    def describe(self) -> str:
        """In the council's words: 'error budget of checkout-availability back above 50%'."""
        if self.kind is LiftKind.BUDGET_ABOVE:
            return f"error budget of {self.slo_id} back above {(self.level or 0):.0%}"
        if self.kind is LiftKind.ITEMS_VERIFIED:
            return "action items verified: " + ", ".join(self.item_ids)
        assert self.on is not None
        return f"on {self.on.isoformat(timespec='minutes')}"


class Opening(BaseModel):
    """Why a decision is asked of the council: the facts of its trigger."""

    model_config = ConfigDict(frozen=True)

    decision_id: str
    trigger: Trigger
    subject: str  # one line: "Recurring contributing factor 'deploy' (3 postmortems)"
    detail: str = ""  # what the council reads first
    services: list[str] = Field(default_factory=list)  # those concerned, if any
    postmortem_ids: list[str] = Field(default_factory=list)  # the incidents behind it
    slo_id: str | None = None  # an exhausted budget's SLO
    items: list[str] = Field(default_factory=list)  # an initiative's proposed work, one a line
    opened_by: str  # a person, or "followthrough"
    opened_at: AwareDatetime


class DecisionRequest(BaseModel):
    """What a council member decides (the `decide` update's input)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    by: str = Field(max_length=limits.NAME_CHARS)
    choice: Choice
    services: list[str] = Field(default_factory=list, max_length=limits.LIST_ENTRIES)
    lifts_when: LiftCondition | None = None
    alert: str | None = Field(default=None, max_length=limits.TITLE_CHARS)  # retire_alert's
    reason: str = Field(default="", max_length=limits.PARAGRAPH_CHARS)


class LiftRequest(BaseModel):
    """A council member lifts a pause or a freeze by hand (the `lift` update's input)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    by: str = Field(max_length=limits.NAME_CHARS)
    reason: str = Field(default="", max_length=limits.PARAGRAPH_CHARS)


class DecisionState(StrEnum):
    OPEN = "open"  # waiting for the council
    IN_FORCE = "in_force"  # a pause or freeze, until lifted
    LIFTED = "lifted"
    DECIDED = "decided"  # approved, retired or declined: nothing more to follow


class LiftCheck(BaseModel):
    """The lift activity's question: does the condition hold at `at` (workflow time)?"""

    model_config = ConfigDict(frozen=True)

    decision_id: str
    condition: LiftCondition
    at: AwareDatetime


class LiftAnswer(BaseModel):
    model_config = ConfigDict(frozen=True)

    holds: bool
    evidence: str  # "budget remaining 72% (above 50%)", or why it could not be measured


class Decision(BaseModel):
    """A decision as it stands: the snapshot the record and the API show."""

    opening: Opening
    state: DecisionState = DecisionState.OPEN
    decided: DecisionRequest | None = None
    decided_at: AwareDatetime | None = None
    tickets: list[TicketRef] = Field(default_factory=list)  # an approved initiative's items
    last_check: str = ""  # the lift condition's latest answer
    last_checked_at: AwareDatetime | None = None
    lifted_by: str | None = None  # a council member, or "followthrough" when it held
    lifted_at: AwareDatetime | None = None
    lift_reason: str = ""

    @property
    def id(self) -> str:
        return self.opening.decision_id

    @property
    def in_force(self) -> bool:
        return self.state is DecisionState.IN_FORCE


class Freeze(BaseModel):
    """One service's pause or freeze, as the freeze endpoint answers it."""

    kind: Choice
    service: str
    decided_by: str
    at: AwareDatetime
    reason: str
    lifts_when: str
    decision_id: str
    lifted_at: AwareDatetime | None = None


class FreezeStatus(BaseModel):
    """GET /api/freezes?service=...: what a CI/CD gate asks."""

    service: str
    frozen: bool
    freezes: list[Freeze] = Field(default_factory=list)


# --- ids: one decision per trigger ------------------------------------------------------------


def as_seen(decision: Decision, hidden: set[str]) -> Decision | None:
    """The decision as someone who may not read the postmortems `hidden` sees it: without them;
    not at all when they were all it was about (a restricted postmortem's exhausted budget is
    its group's to see, whose council members decide it)."""
    ids = decision.opening.postmortem_ids
    if not hidden.intersection(ids):
        return decision
    shown = [pm_id for pm_id in ids if pm_id not in hidden]
    if not shown:
        return None
    opening = decision.opening.model_copy(update={"postmortem_ids": shown})
    return decision.model_copy(update={"opening": opening})


HIDDEN_DECISION = "a decision about a restricted postmortem"


def freeze_as_seen(freeze: Freeze, hidden_decisions: set[str]) -> Freeze:
    """A freeze stays a freeze for every CI gate; whose decision it is, and why, only for those
    who may see the decision."""
    if freeze.decision_id not in hidden_decisions:
        return freeze
    return freeze.model_copy(update={"decision_id": HIDDEN_DECISION, "reason": ""})


def _slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit] or "x"


def theme_decision_id(theme: Theme) -> str:
    """One decision per theme (tag and window), however many approvals join it."""
    return f"decision-theme-{_slug(theme.tag)}-{theme.window_start:%Y%m%d}"


def budget_decision_id(postmortem_id: str, slo_id: str) -> str:
    return f"decision-budget-{_slug(slo_id)}-{_slug(postmortem_id, 80)}"


def initiative_decision_id(title: str) -> str:
    """The same proposal sent twice finds the same decision."""
    digest = hashlib.sha256(" ".join(title.lower().split()).encode()).hexdigest()[:10]
    return f"decision-initiative-{_slug(title, 40)}-{digest}"


# --- openings ----------------------------------------------------------------------------------


SYSTEM = "followthrough"


def theme_opening(theme: Theme, services: list[str], at: datetime) -> Opening:
    n = len(theme.postmortem_ids)
    return Opening(
        decision_id=theme_decision_id(theme),
        trigger=Trigger.THEME,
        subject=f"Recurring contributing factor '{theme.tag}' ({n} postmortems)",
        detail=f"'{theme.tag}' was a contributing factor in {n} postmortems whose incidents "
        f"resolved {theme.resolved_between}.",
        services=services,
        postmortem_ids=list(theme.postmortem_ids),
        opened_by=SYSTEM,
        opened_at=at,
    )


def budget_opening(
    postmortem_id: str, slo_id: str, service: str, remaining: float, at: datetime
) -> Opening:
    return Opening(
        decision_id=budget_decision_id(postmortem_id, slo_id),
        trigger=Trigger.BUDGET_EXHAUSTED,
        subject=f"Error budget exhausted: {slo_id} ({service})",
        detail=f"The incident of {postmortem_id} left {slo_id} with {remaining:.1%} of its "
        "error budget.",
        services=[service],
        postmortem_ids=[postmortem_id],
        slo_id=slo_id,
        opened_by=SYSTEM,
        opened_at=at,
    )


# What the schema says of one-line and multi-line text (Bounds judges the same, by name).
ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
LINES = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]*$"


class InitiativeProposal(BaseModel):
    """POST /api/decisions: a cross-cutting initiative, proposed by anyone in the directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=limits.TITLE_CHARS, pattern=ONE_LINE)
    detail: str = Field(default="", max_length=limits.PARAGRAPH_CHARS, pattern=LINES)
    services: list[Annotated[str, Field(pattern=SERVICE_NAME.pattern, max_length=64)]] = Field(
        default_factory=list, max_length=limits.LIST_ENTRIES
    )
    items: list[
        Annotated[str, Field(min_length=1, max_length=limits.TITLE_CHARS, pattern=ONE_LINE)]
    ] = Field(default_factory=list, max_length=limits.ACTION_ITEMS)


def proposal_problems(proposal: InitiativeProposal) -> list[str]:
    """Past the limits (a proposal built in code, not parsed, can be)."""
    check = Bounds()
    check.title("title", proposal.title)
    check.text("detail", proposal.detail, limits.PARAGRAPH_CHARS, lines=True)
    for n, item in enumerate(proposal.items):
        check.title(f"items[{n}]", item)
    return check.problems


def unknown_services(services: list[str], policy: Policy) -> list[str]:
    """Services the policy does not name (the API answers 404: no such service)."""
    return _service_problems(services, policy)


def initiative_opening(proposal: InitiativeProposal, by: str, at: datetime) -> Opening:
    return Opening(
        decision_id=initiative_decision_id(proposal.title),
        trigger=Trigger.INITIATIVE,
        subject=f"Proposed initiative: {proposal.title}",
        detail=proposal.detail,
        services=list(proposal.services),
        items=list(proposal.items),
        opened_by=by,
        opened_at=at,
    )


# --- deciding ----------------------------------------------------------------------------------


def _service_problems(services: list[str], policy: Policy) -> list[str]:
    return [
        f"services[{n}]: '{s}' is not a service in the policy"
        for n, s in enumerate(services)
        if s not in policy.services
    ]


def condition_problems(condition: LiftCondition, now: datetime) -> list[str]:
    """A lift condition that could never be judged, or names too little."""
    where = "lifts_when"
    problems = []
    kind = condition.kind
    if kind is LiftKind.BUDGET_ABOVE:
        if not condition.slo_id:
            problems.append(f"{where}.slo_id: name the SLO whose budget lifts it")
        if condition.level is None or not 0 < condition.level <= 1:
            problems.append(f"{where}.level: a budget remaining above 0 and at most 1 (0.5: half)")
    elif kind is LiftKind.ITEMS_VERIFIED:
        if not condition.item_ids:
            problems.append(f"{where}.item_ids: name the action items whose verification lifts it")
    elif condition.on is None:
        problems.append(f"{where}.on: the date and time it lifts")
    elif not now < condition.on <= now + timedelta(days=LIFT_DATE_AHEAD_DAYS):
        problems.append(
            f"{where}.on: {condition.on.isoformat()} must be after now and at most "
            f"{LIFT_DATE_AHEAD_DAYS} days ahead"
        )
    if kind is not LiftKind.BUDGET_ABOVE and (condition.slo_id or condition.level is not None):
        problems.append(f"{where}: slo_id and level belong to a budget_above condition")
    if kind is not LiftKind.ITEMS_VERIFIED and condition.item_ids:
        problems.append(f"{where}.item_ids: item_ids belong to an items_verified condition")
    if kind is not LiftKind.DATE and condition.on is not None:
        problems.append(f"{where}.on: on belongs to a date condition")
    check = Bounds()
    if condition.slo_id is not None:
        check.name(f"{where}.slo_id", condition.slo_id)
    for n, item in enumerate(condition.item_ids):
        check.name(f"{where}.item_ids[{n}]", item)
    return problems + check.problems


def request_problems(request: DecisionRequest, policy: Policy, now: datetime) -> list[str]:
    """Everything wrong with what was decided, in one list (the validator's 422)."""
    check = Bounds()
    check.text("reason", request.reason, limits.PARAGRAPH_CHARS, lines=True)
    if request.alert is not None:
        check.title("alert", request.alert)
    problems = check.problems
    choice = request.choice
    if choice in HOLDS:
        if not request.services:
            problems.append(f"services: name the services to {_verb(choice)}")
        problems += _service_problems(request.services, policy)
        if request.lifts_when is None:
            problems.append("lifts_when: say what lifts it (budget_above, items_verified, date)")
        else:
            problems += condition_problems(request.lifts_when, now)
    else:
        if request.lifts_when is not None:
            problems.append(f"lifts_when: only a pause or a freeze is lifted, not {choice.value}")
        problems += _service_problems(request.services, policy)
    if choice is Choice.RETIRE_ALERT and not (request.alert or "").strip():
        problems.append("alert: name the alert to retire")
    if choice is Choice.DECLINE and not request.reason.strip():
        problems.append("reason: say why the council declines")
    return problems


def _verb(choice: Choice) -> str:
    return "pause feature work for" if choice is Choice.PAUSE_FEATURE_WORK else "freeze"


def decide_refusal(
    decision: Decision, request: DecisionRequest, policy: Policy, now: datetime
) -> Refusal | None:
    if request.by not in policy.council:
        return forbidden(f"only the reliability council decides ({request.by} is not on it)")
    if decision.state is not DecisionState.OPEN:
        return conflict(f"{decision.id} was decided already ({decision.state.value})")
    problems = request_problems(request, policy, now)
    if problems:
        return invalid(f"decision on {decision.id} refused: " + "; ".join(problems))
    return None


def lift_refusal(decision: Decision, request: LiftRequest, policy: Policy) -> Refusal | None:
    if request.by not in policy.council:
        return forbidden(f"only the reliability council lifts a freeze ({request.by} is not on it)")
    if not decision.in_force:
        return conflict(f"{decision.id} is {decision.state.value}: there is nothing to lift")
    check = Bounds()
    check.text("reason", request.reason, limits.PARAGRAPH_CHARS, lines=True)
    if check.problems:
        return invalid("; ".join(check.problems))
    return None


def decide(decision: Decision, request: DecisionRequest, at: datetime) -> Decision:
    state = DecisionState.IN_FORCE if request.choice in HOLDS else DecisionState.DECIDED
    return decision.model_copy(update={"state": state, "decided": request, "decided_at": at})


def checked(decision: Decision, answer: LiftAnswer, at: datetime) -> Decision:
    return decision.model_copy(update={"last_check": answer.evidence, "last_checked_at": at})


def lift(decision: Decision, by: str, reason: str, at: datetime) -> Decision:
    return decision.model_copy(
        update={
            "state": DecisionState.LIFTED,
            "lifted_by": by,
            "lifted_at": at,
            "lift_reason": reason,
        }
    )


def next_check(decision: Decision, every: timedelta, now: datetime) -> datetime:
    """When to measure again: after `every`, or on a date condition's date if that is sooner."""
    at = now + every
    condition = decision.decided.lifts_when if decision.decided else None
    if condition is not None and condition.on is not None:
        at = min(at, max(condition.on, now))
    return at


def freezes_of(decision: Decision) -> list[Freeze]:
    """The services a decided pause or freeze holds (lifted or not)."""
    request = decision.decided
    if request is None or request.choice not in HOLDS or decision.decided_at is None:
        return []
    lifts = request.lifts_when.describe() if request.lifts_when else ""
    return [
        Freeze(
            kind=request.choice,
            service=service,
            decided_by=request.by,
            at=decision.decided_at,
            reason=request.reason,
            lifts_when=lifts,
            decision_id=decision.id,
            lifted_at=decision.lifted_at,
        )
        for service in request.services
    ]


def service_problem(service: str) -> str | None:
    """A service name as a CI job sends it: one short token."""
    if not SERVICE_NAME.fullmatch(service):
        return (
            "service: letters, digits, '.', '_' or '-', at most 64 characters "
            f"(got {len(service)} characters)"
        )
    return None


def initiative_tickets(decision: Decision, policy: Policy, at: datetime) -> list[TicketRequest]:
    """An approved initiative's items as tickets, under one epic of the decision (the tracker
    finds it again by the decision's id, as a postmortem's). They are the proposer's to do when
    the proposer is in the directory, else the approving member's; due after
    `council_decisions.initiative_due_days`."""
    request = decision.decided
    assert request is not None
    owner = decision.opening.opened_by
    if owner not in policy.people:
        owner = request.by
    due = (at + timedelta(days=policy.council_decisions.initiative_due_days)).date()
    return [
        TicketRequest(
            action_item_id=f"{decision.id}-item-{n}",
            postmortem_id=decision.id,
            postmortem_title=decision.opening.subject,
            summary=item,
            details=decision.opening.detail,
            accepted_when=f"the council's initiative '{decision.opening.subject}' is done",
            priority="P2",
            due=due,
            owner=owner,
            owner_email=policy.email_of(owner),
            postmortem_url="",  # no postmortem page to link: the decision is the source
        )
        for n, item in enumerate(decision.opening.items, start=1)
    ]
