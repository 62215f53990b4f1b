"""The state of a postmortem and of its action items, and the messages people send them.

These models are what the workflows hold (one pydantic model each), what their updates take, and
what the storage activities write. Functions here take data and return data; no I/O.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from followthrough.domain import limits
from followthrough.domain.bounds import due_date_problem, kib, serialized_size
from followthrough.domain.checks import CheckAttempt
from followthrough.domain.criteria import Manual
from followthrough.domain.draft import ActionItemSpec, Draft, action_item_specs, draft_problems
from followthrough.domain.escalation import business_deadline
from followthrough.domain.incident import Incident
from followthrough.domain.notice import Notice
from followthrough.domain.policy import Policy
from followthrough.domain.problems import Problems, Refusal, conflict, forbidden, invalid
from followthrough.domain.slo_review import SloAssessment, proposed_changes
from followthrough.domain.tickets import TicketRef

SYSTEM_ACTOR = "followthrough"


class PostmortemState(StrEnum):
    OPTIONAL = "optional"  # policy does not require one; anyone may opt in by submitting a draft
    DRAFTING = "drafting"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    TRACKING = "tracking"  # approved; action items are being followed through
    CLOSED = "closed"
    NOT_REQUIRED = "not_required"  # optional and nobody opted in within the window


class ActionItemState(StrEnum):
    QUEUED = "queued"  # beyond its team's WIP cap: the clock has not started
    OPEN = "open"
    DONE_CLAIMED = "done_claimed"  # the owner says done; waiting for verification
    VERIFIED = "verified"
    RISK_ACCEPTED = "risk_accepted"  # the council closed it with a written reason


RESOLVED_STATES = (ActionItemState.VERIFIED, ActionItemState.RISK_ACCEPTED)
# A postmortem whose draft was approved: its reviewed timeline is the record.
APPROVED_STATES = (PostmortemState.TRACKING, PostmortemState.CLOSED)


class Verdict(StrEnum):
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"


class Review(BaseModel):
    model_config = ConfigDict(frozen=True)

    reviewer: str
    verdict: Verdict
    comment: str = ""
    at: AwareDatetime
    draft_version: int


class AuditAction(StrEnum):
    """What an audit event records: one per step of the process (domain/steps.py makes each).

    The values are the stored strings, so recorded rows and histories read the same."""

    POSTMORTEM_OPENED = "postmortem.opened"
    POSTMORTEM_NOT_REQUIRED = "postmortem.not_required"
    POSTMORTEM_OPTED_IN = "postmortem.opted_in"
    POSTMORTEM_ESCALATED = "postmortem.escalated"
    DRAFT_SUBMITTED = "draft.submitted"
    SLO_ASSESSED = "slo.assessed"
    SLO_BUDGET_EXHAUSTED = "slo.budget_exhausted"
    DRAFT_CHANGES_REQUESTED = "draft.changes_requested"
    DRAFT_APPROVED = "draft.approved"
    THEMES_NOT_COUNTED = "themes.not_counted"
    THEME_REACHED = "theme.reached"
    POSTMORTEM_CLOSED = "postmortem.closed"
    ITEM_OPENED = "item.opened"
    ITEM_TICKET_OPENED = "item.ticket_opened"
    ITEM_TICKET_REFUSED = "item.ticket_refused"
    ITEM_SLOT_UNAVAILABLE = "item.slot_unavailable"
    ITEM_QUEUED = "item.queued"
    ITEM_ADMITTED = "item.admitted"
    ITEM_ESCALATED = "item.escalated"
    ITEM_ACKNOWLEDGED = "item.acknowledged"
    ITEM_DONE_CLAIMED = "item.done_claimed"
    ITEM_CHECK_PASSED = "item.check_passed"
    ITEM_CHECK_FAILED = "item.check_failed"
    ITEM_VERIFIED = "item.verified"
    ITEM_REOPENED = "item.reopened"
    ITEM_EXTENSION_REQUESTED = "item.extension_requested"
    ITEM_EXTENSION_APPROVED = "item.extension_approved"
    ITEM_EXTENSION_DENIED = "item.extension_denied"
    ITEM_REASSIGNED = "item.reassigned"
    ITEM_RISK_ACCEPTED = "item.risk_accepted"


class AuditEvent(BaseModel):
    """One row of the append-only audit log; (workflow_id, seq) makes writing it idempotent."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    postmortem_id: str
    seq: int = Field(ge=1)
    at: AwareDatetime
    actor: str
    action: str  # an AuditAction's value (a plain string, as the store keeps it)
    detail: str = ""


class EscalationSent(BaseModel):
    model_config = ConfigDict(frozen=True)

    step: str
    notify: str
    plan: int  # which due date's ladder it belongs to (extensions start a new one)
    at: AwareDatetime
    days_overdue: int


class Postmortem(BaseModel):
    """Everything PostmortemWorkflow knows; also the row the storage keeps."""

    id: str
    incident: Incident
    owner: str
    team: str | None
    severity: str
    required: bool
    approvals_required: int
    state: PostmortemState
    opened_at: AwareDatetime
    draft_due: AwareDatetime
    draft: Draft | None = None
    draft_version: int = 0
    submitted_at: AwareDatetime | None = None
    review_due: AwareDatetime | None = None
    escalations: list[EscalationSent] = Field(default_factory=list)
    reviews: list[Review] = Field(default_factory=list)
    action_item_ids: list[str] = Field(default_factory=list)
    slo_review: list[SloAssessment] = Field(default_factory=list)  # of the submitted draft
    closed_at: AwareDatetime | None = None
    last_seq: int = 0
    # The group only whose members (and the people on it) may read it (domain/restricted.py),
    # decided when it opened. A default, so postmortems recorded before it load and replay.
    restricted_to: str | None = None

    def approvals(self) -> set[str]:
        """Reviewers who approved the current draft version."""
        return {
            r.reviewer
            for r in self.reviews
            if r.draft_version == self.draft_version and r.verdict is Verdict.APPROVED
        }

    def action_item_id(self, number: int) -> str:
        return f"{self.id}-item-{number}"

    def action_item_specs(self) -> list[ActionItemSpec]:
        """The submitted draft's action items, with the SLO alerting rules proposed for them."""
        if self.draft is None:
            return []
        return action_item_specs(self.draft, proposed_changes(self.slo_review))


def owning_team(incident: Incident, policy: Policy) -> str | None:
    """The team of the incident's first service that the policy maps to one."""
    return next(
        (t for s in incident.services if (t := policy.team_of_service(s)) is not None), None
    )


def opening_state(incident: Incident, policy: Policy) -> PostmortemState:
    """Drafting if the severity requires a postmortem, else optional."""
    required = policy.severity(incident.severity).postmortem_required
    return PostmortemState.DRAFTING if required else PostmortemState.OPTIONAL


def open_postmortem(incident: Incident, policy: Policy, now: datetime) -> Postmortem:
    """A new postmortem for a resolved incident, as the severity policy shapes it."""
    severity = policy.severity(incident.severity)
    team = owning_team(incident, policy)
    owner = incident.commander or (policy.teams[team].manager if team else policy.default_owner)
    return Postmortem(
        id=incident.postmortem_id,
        incident=incident,
        owner=owner,
        team=team,
        severity=incident.severity,
        required=severity.postmortem_required,
        approvals_required=severity.approvals_required,
        state=opening_state(incident, policy),
        opened_at=now,
        draft_due=business_deadline(incident.resolved_at, severity.draft_due_days, policy.calendar),
        restricted_to=policy.restriction_for(incident.severity, incident.labels),
    )


class Claim(BaseModel):
    model_config = ConfigDict(frozen=True)

    by: str
    evidence: str
    at: AwareDatetime


class Decision(BaseModel):
    """A verifier's verdict on a done claim."""

    model_config = ConfigDict(frozen=True)

    by: str
    verified: bool
    note: str
    at: AwareDatetime


class Extension(BaseModel):
    """A request for a later due date, and its decision (by someone other than the owner)."""

    requested_by: str
    requested_at: AwareDatetime
    previous_due: date
    until: date
    reason: str
    approved: bool | None = None  # None while pending
    decided_by: str | None = None
    decided_at: AwareDatetime | None = None
    decision_reason: str = ""


class RiskAcceptance(BaseModel):
    model_config = ConfigDict(frozen=True)

    by: str
    reason: str
    at: AwareDatetime


class ActionItem(BaseModel):
    """Everything ActionItemWorkflow knows; also the row the storage keeps.

    `spec` is what the approved draft said; `owner`, `team` and `due` are what holds now, after
    reassignments and extensions.
    """

    id: str
    postmortem_id: str
    spec: ActionItemSpec
    owner: str
    team: str
    due: date
    state: ActionItemState = ActionItemState.OPEN
    opened_at: AwareDatetime
    claims: list[Claim] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    extensions: list[Extension] = Field(default_factory=list)
    escalations: list[EscalationSent] = Field(default_factory=list)
    plan: int = 1  # the ladder's version: an approved extension plans a new one
    risk_acceptance: RiskAcceptance | None = None
    checks: list[CheckAttempt] = Field(default_factory=list)  # evidence of every check run
    ticket: TicketRef | None = None  # its Jira issue, once created (None: the built-in tracker)
    ticket_problem: str | None = None  # why Jira refused to create it, for people to fix
    acknowledged_by: str | None = None  # the current owner has seen it (reset on reassignment)
    previous_owners: list[str] = Field(default_factory=list)  # before each reassignment, in order
    acknowledged_at: AwareDatetime | None = None
    verified_at: AwareDatetime | None = None
    last_seq: int = 0

    @property
    def resolved(self) -> bool:
        return self.state in RESOLVED_STATES

    @property
    def pending_extension(self) -> Extension | None:
        return next((e for e in self.extensions if e.approved is None), None)

    def approved_extensions(self) -> int:
        return sum(1 for e in self.extensions if e.approved)

    @property
    def claimed_by(self) -> str | None:
        """Who made the done claim waiting for a verdict (None while there is none)."""
        if self.state is not ActionItemState.DONE_CLAIMED or not self.claims:
            return None
        return self.claims[-1].by

    def worked_on_by(self, person: str) -> bool:
        """Owns it, owned it before a reassignment, or claimed it done at some point."""
        return (
            person == self.owner
            or person == self.spec.owner
            or person in self.previous_owners
            or any(claim.by == person for claim in self.claims)
        )


def open_action_item(start: ActionItemStart, now: datetime) -> ActionItem:
    spec = start.spec
    return ActionItem(
        id=start.item_id,
        postmortem_id=start.postmortem_id,
        spec=spec,
        owner=spec.owner,
        team=spec.team,
        due=spec.due,
        opened_at=now,
    )


# --- What the workflows take and return --------------------------------------------------------


class PostmortemStart(BaseModel):
    incident: Incident
    policy: Policy
    # The first safe point past this many history events continues the run as new (tests ask
    # for fewer); `carried` is the postmortem a run continued as new hands the next.
    continue_after_events: int = Field(
        default=limits.HISTORY_EVENTS_BEFORE_CONTINUING,
        ge=limits.HISTORY_EVENTS_LEAST,
        le=limits.HISTORY_EVENTS_BEFORE_CONTINUING,
    )
    carried: Postmortem | None = None
    # How it was started, so the workflow takes the path made for that (deterministically: it is
    # in the history's first event). 0: started before STARTED_FINDABLE, which the recorded
    # histories replay as they ran. STARTED_FINDABLE: started with its search attributes, its
    # opening's patches in force from the first step (no markers), its opening recorded by a
    # local activity (bench/README.md, "Ingest").
    started: int = 0


# The starter set the search attributes (followthrough/temporal/client.py, start_postmortem).
STARTED_FINDABLE = 1


class PostmortemOutcome(BaseModel):
    id: str
    state: PostmortemState
    action_items: list[ActionItem] = Field(default_factory=list)


class ItemStage(StrEnum):
    """Where an action item's new run picks up after its last one continued as new."""

    LADDER = "ladder"  # its first climb: it holds its WIP slot and has not told its postmortem
    REGRESSED = "regressed"  # open again after a failed re-check (slot released, postmortem told)
    RECHECK = "recheck"  # verified, its re-check still ahead


class ItemCarried(BaseModel):
    """What a run that continued as new hands the next: the item as it was, and where it was.
    Opened, ticketed and its assignment told already: the new run does none of that again."""

    item: ActionItem
    stage: ItemStage
    parent: str | None = None  # the postmortem's workflow id, told once the item is resolved


class ActionItemStart(BaseModel):
    item_id: str
    postmortem_id: str
    spec: ActionItemSpec
    policy: Policy
    postmortem_title: str = ""
    services: list[str] = Field(default_factory=list)  # the incident's: a service's route wins
    # As for PostmortemStart: where the run continues as new, and what it carries over.
    continue_after_events: int = Field(
        default=limits.HISTORY_EVENTS_BEFORE_CONTINUING,
        ge=limits.HISTORY_EVENTS_LEAST,
        le=limits.HISTORY_EVENTS_BEFORE_CONTINUING,
    )
    carried: ItemCarried | None = None


# --- What people send --------------------------------------------------------------------------


class DraftSubmission(BaseModel):
    by: str
    draft: Draft


class Approval(BaseModel):
    by: str
    comment: str = ""


class ChangeRequest(BaseModel):
    by: str
    reason: str


class OptIn(BaseModel):
    """Someone takes on an optional postmortem: it becomes theirs to write."""

    by: str


class CollectAgain(BaseModel):
    """Someone asks for the incident's timeline to be collected from its sources again."""

    by: str


class Acknowledgement(BaseModel):
    by: str


class DoneClaim(BaseModel):
    by: str
    evidence: str


class Verification(BaseModel):
    by: str
    note: str = ""


class Rejection(BaseModel):
    by: str
    reason: str


class ExtensionRequest(BaseModel):
    by: str
    until: date
    reason: str


class ExtensionDecision(BaseModel):
    by: str
    approve: bool
    reason: str = ""


# Who reassigns a deprovisioned person's open items, in the audit trail and the notices: the
# identity provider's SCIM deprovisioning (followthrough/domain/provisioning.py).
IDENTITY_PROVIDER = "identity-provider"


class Reassignment(BaseModel):
    by: str
    to: str
    team: str | None = None  # default: the item's team
    reason: str = ""


class RiskAcceptanceRequest(BaseModel):
    by: str
    reason: str


# --- What the storage activities write ---------------------------------------------------------


class PostmortemChange(BaseModel):
    postmortem: Postmortem
    event: AuditEvent


class ActionItemChange(BaseModel):
    item: ActionItem
    event: AuditEvent


class ItemEscalation(BaseModel):
    """A ladder step taken and the notice it sends, for the one activity that records the step
    and then sends the notice (each as idempotent as on its own: keyed by seq and dedupe key)."""

    change: ActionItemChange
    notice: Notice


# --- Who may do what, and when ----------------------------------------------------------------
# Each rule returns the refusal a person would read, or None when the action is allowed.


_DRAFTABLE = (PostmortemState.OPTIONAL, PostmortemState.DRAFTING, PostmortemState.CHANGES_REQUESTED)


def submitter_refusal(pm: Postmortem, by: str, policy: Policy) -> Refusal | None:
    """Whether `by` may submit a draft now, judged before anything about the draft (the edge
    asks it before a draft's criteria call out anywhere)."""
    if pm.state not in _DRAFTABLE:
        return conflict(f"{pm.id} is {pm.state}; a draft can be submitted only while drafting")
    if pm.state is PostmortemState.OPTIONAL:
        if by not in policy.people:
            return forbidden(f"'{by}' is not in the policy's directory and cannot opt in")
    elif by != pm.owner:
        return forbidden(f"only the postmortem owner ({pm.owner}) can submit its draft")
    return None


def opt_in_refusal(pm: Postmortem, opt_in: OptIn, policy: Policy) -> Refusal | None:
    if pm.state is not PostmortemState.OPTIONAL:
        return conflict(f"{pm.id} is {pm.state}; only an optional postmortem can be opted in to")
    return submitter_refusal(pm, opt_in.by, policy)  # who may opt in: as for submitting


_COLLECTABLE = (*_DRAFTABLE, PostmortemState.IN_REVIEW)


def collect_again_refusal(pm: Postmortem, request: CollectAgain, policy: Policy) -> Refusal | None:
    """The owner or a reviewer, until the draft is approved: later the timeline is settled."""
    if request.by != pm.owner and not policy.may_review(request.by):
        return forbidden(
            f"only the postmortem owner ({pm.owner}) or a reviewer can collect its timeline again"
        )
    if pm.state not in _COLLECTABLE:
        return conflict(
            f"{pm.id} is {pm.state}; the timeline can be collected again only until approval"
        )
    return None


def submit_refusal(
    pm: Postmortem, submission: DraftSubmission, policy: Policy, today: date
) -> Refusal | None:
    if (refusal := submitter_refusal(pm, submission.by, policy)) is not None:
        return refusal
    problems = draft_problems(submission.draft, pm.incident, policy, today=today)
    if problems:
        return invalid(Problems(f"draft for {pm.id} rejected", problems).message)
    return None


def review_refusal(pm: Postmortem, reviewer: str, policy: Policy) -> Refusal | None:
    """Shared by approve and request-changes."""
    if pm.state is not PostmortemState.IN_REVIEW:
        return conflict(f"{pm.id} is {pm.state}, not in review")
    if reviewer == pm.owner:
        return forbidden(f"{reviewer} wrote this draft and cannot review it")
    if not policy.may_review(reviewer):
        return forbidden(f"{reviewer} is not a reviewer in the policy")
    return None


def approval_refusal(pm: Postmortem, approval: Approval, policy: Policy) -> Refusal | None:
    if (refusal := review_refusal(pm, approval.by, policy)) is not None:
        return refusal
    if approval.by in pm.approvals():
        return conflict(f"{approval.by} already approved draft version {pm.draft_version}")
    return None


def change_request_refusal(
    pm: Postmortem, request: ChangeRequest, policy: Policy
) -> Refusal | None:
    if (refusal := review_refusal(pm, request.by, policy)) is not None:
        return refusal
    if not request.reason.strip():
        return invalid("say what needs to change (a reason is required)")
    return None


def acknowledgement_refusal(item: ActionItem, ack: Acknowledgement) -> Refusal | None:
    if item.resolved:
        return conflict(f"{item.id} is {item.state}; there is nothing left to acknowledge")
    if ack.by != item.owner:
        return forbidden(f"only the owner ({item.owner}) can acknowledge {item.id}")
    if item.acknowledged_at is not None:
        when = f"{item.acknowledged_at:%Y-%m-%d %H:%M} UTC"
        return conflict(f"{item.owner} already acknowledged {item.id} on {when}")
    return None


def claim_refusal(item: ActionItem, claim: DoneClaim) -> Refusal | None:
    if item.state is ActionItemState.QUEUED:
        return conflict(f"{item.id} is queued behind its team's WIP cap; its clock has not started")
    if item.state is not ActionItemState.OPEN:
        return conflict(f"{item.id} is {item.state}; only an open item can be claimed done")
    if claim.by != item.owner:
        return forbidden(f"only the owner ({item.owner}) can claim {item.id} done")
    if not claim.evidence.strip():
        return invalid(
            "evidence is required: link the change, the dashboard or the test that shows it"
        )
    return None


def verifier_refusal(item: ActionItem, by: str, policy: Policy) -> Refusal | None:
    """Shared by verify and reject: who may judge a done claim."""
    criterion = item.spec.acceptance_criterion
    if not isinstance(criterion, Manual):
        return conflict(
            f"{item.id} is verified by its {criterion.kind} check, not by hand; the check runs "
            "when it is claimed done"
        )
    if item.state is not ActionItemState.DONE_CLAIMED:
        return conflict(
            f"{item.id} is {item.state}; only an item claimed done can be verified or rejected"
        )
    if by == item.owner:
        return forbidden(f"{by} owns {item.id} and cannot verify their own work")
    if by == item.claimed_by:  # still theirs after reassigning the item to someone else
        return forbidden(f"{by} claimed {item.id} done and cannot judge their own claim")
    if criterion.verifier is not None and by != criterion.verifier:
        return forbidden(f"only the named verifier ({criterion.verifier}) can verify {item.id}")
    if criterion.role is not None and not _has_role(by, criterion.role, item, policy):
        return forbidden(f"only a {criterion.role} can verify {item.id}")
    if by not in policy.people:
        return forbidden(f"'{by}' is not in the policy's directory")
    return None


def _has_role(person: str, role: str, item: ActionItem, policy: Policy) -> bool:
    if role == "council":
        return person in policy.council
    if role == "manager":
        return person == policy.manager_of_team(item.team)
    return policy.may_review(person)


def rejection_refusal(item: ActionItem, rejection: Rejection, policy: Policy) -> Refusal | None:
    if (refusal := verifier_refusal(item, rejection.by, policy)) is not None:
        return refusal
    if not rejection.reason.strip():
        return invalid("say why the acceptance criterion is not met (a reason is required)")
    return None


def extension_request_refusal(
    item: ActionItem, request: ExtensionRequest, policy: Policy
) -> Refusal | None:
    if item.resolved:
        return conflict(f"{item.id} is {item.state}; it needs no more time")
    if request.by != item.owner:
        return forbidden(f"only the owner ({item.owner}) can ask for more time on {item.id}")
    if item.pending_extension is not None:
        return conflict(f"{item.id} already has an extension request waiting for a decision")
    used = item.approved_extensions()
    if used >= policy.max_extensions:
        return conflict(
            f"{item.id} has used its extension budget ({used} of {policy.max_extensions}); "
            "ask the reliability council to accept the risk or reassign it"
        )
    if request.until <= item.due:
        return invalid(f"the new due date must be after the current one ({item.due.isoformat()})")
    if (too_far := due_date_problem("until", request.until, item.due)) is not None:
        return invalid(too_far)  # counted from the current due date
    if not request.reason.strip():
        return invalid("say why more time is needed (a reason is required)")
    return None


def may_decide_for(item: ActionItem, person: str, policy: Policy) -> bool:
    """The owner's manager or a council member: never the owner."""
    if person == item.owner:
        return False
    return person in policy.council or person == policy.teams[item.team].manager


def extension_decision_refusal(
    item: ActionItem, decision: ExtensionDecision, policy: Policy
) -> Refusal | None:
    if item.pending_extension is None:
        return conflict(f"{item.id} has no extension request waiting for a decision")
    if decision.by == item.owner:
        return forbidden(f"{decision.by} owns {item.id} and cannot decide their own extension")
    if decision.by == item.pending_extension.requested_by:  # even after reassigning the item
        return forbidden(f"{decision.by} asked for this extension and cannot decide it")
    if not may_decide_for(item, decision.by, policy):
        manager = policy.teams[item.team].manager
        return forbidden(
            f"only {item.owner}'s manager ({manager}) or a council member can decide "
            f"extensions on {item.id}"
        )
    if not decision.approve and not decision.reason.strip():
        return invalid("say why the extension is denied (a reason is required)")
    return None


def reassignment_refusal(item: ActionItem, change: Reassignment, policy: Policy) -> Refusal | None:
    if item.resolved:
        return conflict(f"{item.id} is {item.state}; there is nothing left to own")
    if change.by == IDENTITY_PROVIDER and change.team is None:
        # The owner was deprovisioned: the provider's word on who takes it over is final, and
        # the item's policy (a snapshot from its start) may predate the manager it names.
        return conflict(f"{change.to} already owns {item.id}") if change.to == item.owner else None
    team = change.team or item.team
    if change.by != item.owner and not may_decide_for(item, change.by, policy):
        return forbidden(
            f"only the owner, {item.owner}'s manager or a council member can reassign {item.id}"
        )
    if team not in policy.teams:
        return invalid(f"team '{team}' is not in the policy")
    if change.to not in policy.people:
        return invalid(f"'{change.to}' is not in the policy's directory")
    if change.to == item.owner and team == item.team:
        return conflict(f"{change.to} already owns {item.id}")
    if not policy.is_in_team(change.to, team):
        return invalid(f"'{change.to}' is not in team '{team}'")
    return None


def risk_acceptance_refusal(
    item: ActionItem, request: RiskAcceptanceRequest, policy: Policy
) -> Refusal | None:
    if item.resolved:
        return conflict(f"{item.id} is already {item.state}")
    if request.by not in policy.council:
        return forbidden(f"only the reliability council can accept the risk of {item.id}")
    if item.worked_on_by(request.by):  # owners past and present and claimants: not their call
        return forbidden(
            f"{request.by} owns or owned {item.id}, or claimed it done, and cannot accept its "
            "risk; another council member can"
        )
    if len(request.reason.split()) < 3:
        return invalid("write down why the risk is acceptable (a reason of a few words at least)")
    return None


# Which of a record's lists each action grows, and how long that list may get (limits.py).
_GROWS = {
    DoneClaim: ("claims", limits.DONE_CLAIMS_PER_ITEM, "done claims"),
    ExtensionRequest: ("extensions", limits.EXTENSION_REQUESTS_PER_ITEM, "extension requests"),
    Reassignment: ("previous_owners", limits.REASSIGNMENTS_PER_ITEM, "reassignments"),
    Approval: ("reviews", limits.REVIEWS_PER_POSTMORTEM, "reviews"),
    ChangeRequest: ("reviews", limits.REVIEWS_PER_POSTMORTEM, "reviews"),
}


def room_refusal(record: Postmortem | ActionItem, action: BaseModel) -> Refusal | None:
    """Refuses an action that would grow the record past its limits: every record activity
    carries the whole state, so a state past Temporal's payload limit would stall its workflow.
    Asked after who-may-do-what, so it never tells a stranger about the record."""
    if (grows := _GROWS.get(type(action))) is not None:
        field, most, what = grows
        if len(getattr(record, field)) >= most:
            return conflict(
                f"{record.id} already has {most} {what}, the most one record keeps; ask the "
                "reliability council to decide it (accept the risk, or write a new action item)"
            )
    size = serialized_size(record) + serialized_size(action)
    if size > limits.STATE_BUDGET_BYTES:
        return conflict(
            f"{record.id}'s record would be {kib(size)}, over its {kib(limits.STATE_BUDGET_BYTES)}"
            " budget; say it in fewer words, or ask the reliability council to decide it"
        )
    return None


def evidence_line(item: ActionItem) -> str:
    """How an item was resolved, for the postmortem's closing record."""
    head = f"{item.id} '{item.spec.title}'"
    if item.risk_acceptance is not None:
        accepted = item.risk_acceptance
        return f"{head}: risk accepted by {accepted.by}: {accepted.reason}"
    passed = [c.result for c in item.checks if c.result.passed]
    if passed:
        tries = len(item.checks)
        return (
            f"{head}: verified by its {item.spec.acceptance_criterion.kind} check "
            f"({tries} attempt{'s' if tries != 1 else ''}): {passed[-1].asked}: {passed[-1].reason}"
        )
    verdict = next((d for d in reversed(item.decisions) if d.verified), None)
    if verdict is not None:
        return f"{head}: verified by {verdict.by}" + (f": {verdict.note}" if verdict.note else "")
    return f"{head}: {item.state}"


def closing_summary(items: list[ActionItem]) -> str:
    verified = sum(1 for i in items if i.state is ActionItemState.VERIFIED)
    accepted = len(items) - verified
    headline = f"all {len(items)} action items resolved: {verified} verified" + (
        f", {accepted} with their risk accepted by the council" if accepted else ""
    )
    return "\n".join([headline, *(f"- {evidence_line(i)}" for i in items)])


# --- WIP caps ----------------------------------------------------------------------------------


class SlotRequest(BaseModel):
    """An action item asks its team for one of its WIP slots."""

    team: str
    cap: int
    item_id: str
    priority: str
    requested_at: AwareDatetime


class SlotRelease(BaseModel):
    team: str
    cap: int
    item_id: str


class TeamSlots(BaseModel):
    """Which of a team's items hold its WIP slots, and which wait for one, in line."""

    team: str
    cap: int
    active: list[str] = Field(default_factory=list)
    waiting: list[SlotRequest] = Field(default_factory=list)

    def request(self, request: SlotRequest) -> list[str]:
        """Queue the request and fill free slots; the items that now hold a slot and must be told.

        A repeated request (a retried activity) from an item that holds a slot tells it again.
        """
        self.cap = request.cap  # a policy change applies from the next request on
        if request.item_id in self.active:
            return [request.item_id]
        if all(w.item_id != request.item_id for w in self.waiting):
            self.waiting.append(request)
        return self._fill()

    def release(self, item_id: str) -> list[str]:
        """Free the item's slot (or drop its place in line); the items that now hold a slot."""
        self.active = [i for i in self.active if i != item_id]
        self.waiting = [w for w in self.waiting if w.item_id != item_id]
        return self._fill()

    def position(self, item_id: str) -> int | None:
        """1 for the next in line; None when the item is not waiting."""
        ids = [w.item_id for w in self.waiting]
        return ids.index(item_id) + 1 if item_id in ids else None

    def _fill(self) -> list[str]:
        """Highest priority first (P0 before P3), then the oldest request."""
        self.waiting.sort(key=lambda w: (w.priority, w.requested_at))
        admitted: list[str] = []
        while self.waiting and len(self.active) < self.cap:
            item_id = self.waiting.pop(0).item_id
            self.active.append(item_id)
            admitted.append(item_id)
        return admitted
