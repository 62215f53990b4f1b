"""The process, step by step: each thing a person or the system does to a postmortem or an item.

Each step is a pure function: it takes the record as it is and what happened, and returns the
record as it is now together with the audit event that says so (numbered: the record's next
seq). Nothing is changed in place. The workflows call these steps (after their validators have
allowed the action) and record what they return; the demo seeder (followthrough/seed/) builds
its records through the very same steps, so a seeded trail reads like a real one.

Who may take a step, and when, is asked before it, of the refusals in domain/postmortem.py.
Whom a step tells, and what, is the notice built beside it (the end of this module): the
workflows send it, the seeder puts it in the outbox as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Generic, TypeVar

from followthrough.domain.calendar import BusinessCalendar
from followthrough.domain.checks import CheckAttempt, CheckResult
from followthrough.domain.decisions import Decision as CouncilDecision
from followthrough.domain.escalation import PlannedStep, business_deadline, days_overdue
from followthrough.domain.notice import ItemFacts, Notice, NoticeKind, Recipient
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    SYSTEM_ACTOR,
    Acknowledgement,
    ActionItem,
    ActionItemState,
    Approval,
    AuditAction,
    AuditEvent,
    ChangeRequest,
    Claim,
    Decision,
    DoneClaim,
    DraftSubmission,
    EscalationSent,
    Extension,
    ExtensionDecision,
    ExtensionRequest,
    OptIn,
    Postmortem,
    PostmortemState,
    Reassignment,
    Rejection,
    Review,
    RiskAcceptance,
    RiskAcceptanceRequest,
    Verdict,
    Verification,
    closing_summary,
)
from followthrough.domain.slo_review import SloAssessment
from followthrough.domain.themes import FactorTags, Theme
from followthrough.domain.tickets import TicketDone, TicketRef

TRACKER_ACTOR = "jira"  # who claims an item done when its ticket moves to done
# A fix that regressed is due again this many business days after its failed re-check.
REGRESSION_DAYS = 10

Record = TypeVar("Record", Postmortem, ActionItem)


@dataclass(frozen=True)
class Step(Generic[Record]):
    """The record after one step, and the audit event that records the step."""

    state: Record
    event: AuditEvent


def _happened(
    record: Record, at: datetime, actor: str, action: AuditAction, detail: str = ""
) -> Step[Record]:
    seq = record.last_seq + 1
    state = record.model_copy(update={"last_seq": seq})
    postmortem_id = record.id if isinstance(record, Postmortem) else record.postmortem_id
    event = AuditEvent(
        workflow_id=record.id,
        postmortem_id=postmortem_id,
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        detail=detail,
    )
    return Step(state, event)


# --- the postmortem ----------------------------------------------------------------------------


def record_opening(pm: Postmortem, at: datetime) -> Step[Postmortem]:
    need = "required" if pm.required else "optional"
    detail = (
        f"{pm.severity} postmortem ({need}) for '{pm.incident.title}', owner {pm.owner}, "
        f"draft due {pm.draft_due.isoformat()}"
    ) + "".join(f"; {gap.note}" for gap in pm.incident.unmapped_severities)
    return _happened(pm, at, SYSTEM_ACTOR, AuditAction.POSTMORTEM_OPENED, detail)


def lapse(pm: Postmortem, at: datetime) -> Step[Postmortem]:
    """An optional postmortem nobody opted in to within the policy's window."""
    pm = pm.model_copy(update={"state": PostmortemState.NOT_REQUIRED, "closed_at": at})
    return _happened(
        pm,
        at,
        SYSTEM_ACTOR,
        AuditAction.POSTMORTEM_NOT_REQUIRED,
        "nobody opted in within the policy's window",
    )


def opt_in(pm: Postmortem, opt_in: OptIn, policy: Policy, at: datetime) -> Step[Postmortem]:
    """Someone takes on an optional postmortem: theirs to write, due as a required one's."""
    draft_days = policy.severity(pm.severity).draft_due_days
    pm = pm.model_copy(
        update={
            "state": PostmortemState.DRAFTING,
            "owner": opt_in.by,
            "draft_due": business_deadline(at, draft_days, policy.calendar),
        }
    )
    detail = f"{opt_in.by} opted in; draft due {pm.draft_due.isoformat()}"
    return _happened(pm, at, opt_in.by, AuditAction.POSTMORTEM_OPTED_IN, detail)


def stage_recipients(pm: Postmortem, policy: Policy, stage: str, role: str) -> list[str]:
    """Who an overdue draft or review tells at a ladder step for `role`."""
    if role == "council":
        return list(policy.council)
    if role == "manager":
        return [policy.manager_of_team(pm.team) if pm.team else policy.default_owner]
    if stage == "review":  # the reviewers are late; the owner hears of it too
        return sorted({*policy.reviewers, pm.owner} - pm.approvals())
    return [pm.owner]


def escalate_stage(
    pm: Postmortem,
    policy: Policy,
    stage: str,
    deadline: datetime,
    version: int,
    step: PlannedStep,
    at: datetime,
) -> Step[Postmortem]:
    """An overdue draft (version 0) or review of a draft version reached a ladder step."""
    calendar = policy.calendar
    overdue = days_overdue(calendar.local_date(deadline), calendar.local_date(at), calendar)
    names = stage_recipients(pm, policy, stage, step.notify)
    sent = EscalationSent(
        step=f"{stage}:{step.name}", notify=step.notify, plan=version, at=at, days_overdue=overdue
    )
    pm = pm.model_copy(update={"escalations": [*pm.escalations, sent]})
    detail = f"{stage} overdue ({step.name}): told {', '.join(names)}; {overdue} business days late"
    return _happened(pm, at, SYSTEM_ACTOR, AuditAction.POSTMORTEM_ESCALATED, detail)


def submit_draft(
    pm: Postmortem,
    submission: DraftSubmission,
    slo_review: list[SloAssessment],
    policy: Policy,
    at: datetime,
) -> Step[Postmortem]:
    """The draft goes to review (opting in to an optional postmortem makes you its owner)."""
    review_days = policy.severity(pm.severity).review_due_days
    pm = pm.model_copy(
        update={
            "owner": submission.by if pm.state is PostmortemState.OPTIONAL else pm.owner,
            "draft": submission.draft,
            "slo_review": slo_review,
            "draft_version": pm.draft_version + 1,
            "submitted_at": at,
            "review_due": business_deadline(at, review_days, policy.calendar),
            "state": PostmortemState.IN_REVIEW,
        }
    )
    detail = (
        f"version {pm.draft_version} with {len(submission.draft.action_items)} action items; "
        f"needs {pm.approvals_required} approval(s)"
    )
    return _happened(pm, at, submission.by, AuditAction.DRAFT_SUBMITTED, detail)


def assess_slo(
    pm: Postmortem, by: str, assessment: SloAssessment, at: datetime
) -> Step[Postmortem]:
    """One SLO's assessment of the submitted draft, in the submitter's name."""
    return _happened(pm, at, by, AuditAction.SLO_ASSESSED, assessment.summary())


def recommend_freeze(pm: Postmortem, assessment: SloAssessment, at: datetime) -> Step[Postmortem]:
    """The incident exhausted an SLO's error budget: the council is told to freeze releases."""
    slo = assessment.slo
    detail = (
        f"{slo.id}: budget remaining {assessment.impact.budget_remaining_after:.1%}; release "
        f"freeze recommended for {slo.service} (except P0 and security fixes) until it is "
        "back within its SLO; told the council"
    )
    return _happened(pm, at, SYSTEM_ACTOR, AuditAction.SLO_BUDGET_EXHAUSTED, detail)


def _review(pm: Postmortem, by: str, verdict: Verdict, comment: str, at: datetime) -> list[Review]:
    review = Review(
        reviewer=by, verdict=verdict, comment=comment, at=at, draft_version=pm.draft_version
    )
    return [*pm.reviews, review]


def approve(pm: Postmortem, approval: Approval, at: datetime) -> Step[Postmortem]:
    """One approval; the last one needed starts tracking the draft's action items."""
    pm = pm.model_copy(
        update={"reviews": _review(pm, approval.by, Verdict.APPROVED, approval.comment, at)}
    )
    have, need = len(pm.approvals()), pm.approvals_required
    detail = f"approval {have} of {need}"
    if approval.comment:
        detail += f": {approval.comment}"
    if have >= need:
        assert pm.draft is not None  # in review means a draft was submitted
        item_ids = [pm.action_item_id(spec.number) for spec in pm.action_item_specs()]
        pm = pm.model_copy(update={"state": PostmortemState.TRACKING, "action_item_ids": item_ids})
    return _happened(pm, at, approval.by, AuditAction.DRAFT_APPROVED, detail)


def request_changes(pm: Postmortem, request: ChangeRequest, at: datetime) -> Step[Postmortem]:
    pm = pm.model_copy(
        update={
            "reviews": _review(pm, request.by, Verdict.CHANGES_REQUESTED, request.reason, at),
            "state": PostmortemState.CHANGES_REQUESTED,
        }
    )
    return _happened(pm, at, request.by, AuditAction.DRAFT_CHANGES_REQUESTED, request.reason)


def themes_not_counted(pm: Postmortem, reason: str, at: datetime) -> Step[Postmortem]:
    detail = f"the factor tags were not counted: {reason}"
    return _happened(pm, at, SYSTEM_ACTOR, AuditAction.THEMES_NOT_COUNTED, detail)


def theme_reached(pm: Postmortem, theme: Theme, at: datetime) -> Step[Postmortem]:
    """The approved draft's factor tag reached the theme threshold: the council is told."""
    detail = (
        f"'{theme.tag}' is in {len(theme.postmortem_ids)} postmortems since "
        f"{theme.window_start.date().isoformat()}: told the council"
    )
    return _happened(pm, at, SYSTEM_ACTOR, AuditAction.THEME_REACHED, detail)


def close(pm: Postmortem, items: list[ActionItem], at: datetime) -> Step[Postmortem]:
    """Every action item is resolved: the postmortem closes with their evidence."""
    pm = pm.model_copy(update={"state": PostmortemState.CLOSED, "closed_at": at})
    return _happened(pm, at, SYSTEM_ACTOR, AuditAction.POSTMORTEM_CLOSED, closing_summary(items))


# --- an action item ----------------------------------------------------------------------------


def record_item_opening(item: ActionItem, at: datetime) -> Step[ActionItem]:
    spec = item.spec
    detail = (
        f"{spec.priority} '{spec.title}' owned by {item.owner} ({item.team}), due "
        f"{item.due.isoformat()}; accepted when: {spec.acceptance_criterion.summary()}"
    )
    return _happened(item, at, SYSTEM_ACTOR, AuditAction.ITEM_OPENED, detail)


def ticket_opened(item: ActionItem, ticket: TicketRef, at: datetime) -> Step[ActionItem]:
    item = item.model_copy(update={"ticket": ticket})
    detail = f"{ticket.key} {ticket.url}"
    return _happened(item, at, SYSTEM_ACTOR, AuditAction.ITEM_TICKET_OPENED, detail)


def ticket_refused(item: ActionItem, problem: str, at: datetime) -> Step[ActionItem]:
    """Jira refused the ticket for good; people fix what it says."""
    item = item.model_copy(update={"ticket_problem": problem})
    return _happened(item, at, SYSTEM_ACTOR, AuditAction.ITEM_TICKET_REFUSED, problem)


def start_without_slot(item: ActionItem, reason: str, at: datetime) -> Step[ActionItem]:
    detail = f"started without a WIP slot: {reason}"
    return _happened(item, at, SYSTEM_ACTOR, AuditAction.ITEM_SLOT_UNAVAILABLE, detail)


def queue(item: ActionItem, cap: int, place: int | None, at: datetime) -> Step[ActionItem]:
    """Beyond its team's WIP cap: the item waits in line with its clock stopped."""
    item = item.model_copy(update={"state": ActionItemState.QUEUED})
    detail = (
        f"team {item.spec.team} is at its WIP cap of {cap}; number {place} in line, clock stopped"
    )
    return _happened(item, at, SYSTEM_ACTOR, AuditAction.ITEM_QUEUED, detail)


def admit(
    item: ActionItem, calendar: BusinessCalendar, queued_at: datetime, at: datetime
) -> Step[ActionItem]:
    """A WIP slot freed up: the clock starts, and the due date moves by the business days waited."""
    waited = calendar.business_days_between(calendar.local_date(queued_at), calendar.local_date(at))
    due = calendar.add_business_days(item.due, waited) if waited > 0 else item.due
    item = item.model_copy(update={"due": due, "state": ActionItemState.OPEN})
    detail = f"a WIP slot freed up after {waited} business days; due {item.due.isoformat()}"
    return _happened(item, at, SYSTEM_ACTOR, AuditAction.ITEM_ADMITTED, detail)


def item_recipients(item: ActionItem, policy: Policy, role: str) -> list[str]:
    """Who `role` is for this item: its owner, the owner's manager, or the council."""
    if role == "owner":
        return [item.owner]
    if role == "manager":
        return [policy.manager_of_team(item.team)]
    return list(policy.council)


def escalate(item: ActionItem, policy: Policy, step: PlannedStep, at: datetime) -> Step[ActionItem]:
    """The item's ladder reached `step` while it was open."""
    overdue = days_overdue(item.due, policy.calendar.local_date(at), policy.calendar)
    names = item_recipients(item, policy, step.notify)
    sent = EscalationSent(
        step=step.name, notify=step.notify, plan=item.plan, at=at, days_overdue=overdue
    )
    item = item.model_copy(update={"escalations": [*item.escalations, sent]})
    detail = f"{step.name}: told {', '.join(names)} ({step.notify}); " + (
        f"{overdue} business days overdue" if overdue else f"due {item.due.isoformat()}"
    )
    return _happened(item, at, SYSTEM_ACTOR, AuditAction.ITEM_ESCALATED, detail)


def acknowledge(item: ActionItem, ack: Acknowledgement, at: datetime) -> Step[ActionItem]:
    """The owner has seen the item; escalations say so (the ladder itself keeps going)."""
    item = item.model_copy(update={"acknowledged_by": ack.by, "acknowledged_at": at})
    detail = f"due {item.due.isoformat()}"
    return _happened(item, at, ack.by, AuditAction.ITEM_ACKNOWLEDGED, detail)


def claim_done(item: ActionItem, claim: DoneClaim, at: datetime) -> Step[ActionItem]:
    claimed = Claim(by=claim.by, evidence=claim.evidence, at=at)
    item = item.model_copy(
        update={"claims": [*item.claims, claimed], "state": ActionItemState.DONE_CLAIMED}
    )
    return _happened(item, at, claim.by, AuditAction.ITEM_DONE_CLAIMED, claim.evidence)


def ticket_done(item: ActionItem, done: TicketDone, at: datetime) -> Step[ActionItem]:
    """The item's ticket reached a done status: a done claim in the tracker's name."""
    moved = f"{done.key} moved to {done.status}" + (
        f" ({done.resolution})" if done.resolution else ""
    )
    evidence = moved + (f" by {done.by}" if done.by else "") + f", seen by {done.source}"
    return claim_done(item, DoneClaim(by=TRACKER_ACTOR, evidence=evidence), at)


def record_check(item: ActionItem, attempt: CheckAttempt, at: datetime) -> Step[ActionItem]:
    """One check attempt, with its evidence, whatever the outcome."""
    item = item.model_copy(update={"checks": [*item.checks, attempt]})
    result = attempt.result
    action = AuditAction.ITEM_CHECK_PASSED if result.passed else AuditAction.ITEM_CHECK_FAILED
    return _happened(item, at, SYSTEM_ACTOR, action, f"{result.asked}: {result.reason}")


def _decided(item: ActionItem, by: str, verified: bool, note: str, at: datetime) -> list[Decision]:
    return [*item.decisions, Decision(by=by, verified=verified, note=note, at=at)]


def verify_by_check(
    item: ActionItem, result: CheckResult, passes: int, at: datetime
) -> Step[ActionItem]:
    """Every one of the `passes` checks the criterion asks for passed."""
    item = item.model_copy(
        update={
            "decisions": _decided(item, SYSTEM_ACTOR, True, result.reason, at),
            "verified_at": at,
            "state": ActionItemState.VERIFIED,
        }
    )
    kind = item.spec.acceptance_criterion.kind
    counted = f" ({passes} of {passes} passes)" if passes > 1 else ""
    detail = f"{kind} check passed{counted}: {result.reason}"
    return _happened(item, at, SYSTEM_ACTOR, AuditAction.ITEM_VERIFIED, detail)


def reopen(item: ActionItem, result: CheckResult, why: str, at: datetime) -> Step[ActionItem]:
    """A check failed: the done claim is refused and the item is open again."""
    item = item.model_copy(
        update={
            "decisions": _decided(item, SYSTEM_ACTOR, False, result.reason, at),
            "state": ActionItemState.OPEN,
        }
    )
    detail = f"{why}: {result.reason}"
    return _happened(item, at, SYSTEM_ACTOR, AuditAction.ITEM_REOPENED, detail)


def regress(
    item: ActionItem, result: CheckResult, calendar: BusinessCalendar, at: datetime
) -> Step[ActionItem]:
    """The re-check after verification failed: open again, due REGRESSION_DAYS from now."""
    due = calendar.add_business_days(calendar.local_date(at), REGRESSION_DAYS)
    item = item.model_copy(update={"due": due, "plan": item.plan + 1, "verified_at": None})
    return reopen(item, result, "the re-check after verification failed", at)


def verify(item: ActionItem, verification: Verification, at: datetime) -> Step[ActionItem]:
    item = item.model_copy(
        update={
            "decisions": _decided(item, verification.by, True, verification.note, at),
            "verified_at": at,
            "state": ActionItemState.VERIFIED,
        }
    )
    return _happened(item, at, verification.by, AuditAction.ITEM_VERIFIED, verification.note)


def reject(item: ActionItem, rejection: Rejection, at: datetime) -> Step[ActionItem]:
    item = item.model_copy(
        update={
            "decisions": _decided(item, rejection.by, False, rejection.reason, at),
            "state": ActionItemState.OPEN,
        }
    )
    return _happened(item, at, rejection.by, AuditAction.ITEM_REOPENED, rejection.reason)


def request_extension(
    item: ActionItem, request: ExtensionRequest, at: datetime
) -> Step[ActionItem]:
    extension = Extension(
        requested_by=request.by,
        requested_at=at,
        previous_due=item.due,
        until=request.until,
        reason=request.reason,
    )
    item = item.model_copy(update={"extensions": [*item.extensions, extension]})
    detail = f"until {request.until.isoformat()}: {request.reason}"
    return _happened(item, at, request.by, AuditAction.ITEM_EXTENSION_REQUESTED, detail)


def decide_extension(
    item: ActionItem, decision: ExtensionDecision, at: datetime
) -> Step[ActionItem]:
    """The pending extension approved (a new due date and a new ladder) or denied."""
    pending = item.pending_extension
    assert pending is not None  # extension_decision_refusal asks first
    decided = pending.model_copy(
        update={
            "approved": decision.approve,
            "decided_by": decision.by,
            "decided_at": at,
            "decision_reason": decision.reason,
        }
    )
    extensions = [decided if e is pending else e for e in item.extensions]
    update: dict[str, object] = {"extensions": extensions}
    if decision.approve:  # the ladder starts over for the new due date
        update |= {"due": pending.until, "plan": item.plan + 1}
    item = item.model_copy(update=update)
    verdict = "approved" if decision.approve else "denied"
    detail = f"{verdict}: due {item.due.isoformat()}" + (
        f"; {decision.reason}" if decision.reason else ""
    )
    action = (
        AuditAction.ITEM_EXTENSION_APPROVED
        if decision.approve
        else AuditAction.ITEM_EXTENSION_DENIED
    )
    return _happened(item, at, decision.by, action, detail)


def reassign(item: ActionItem, change: Reassignment, at: datetime) -> Step[ActionItem]:
    """A new owner (and maybe team), who has not seen the item yet."""
    previous = item.owner
    item = item.model_copy(
        update={
            "previous_owners": [*item.previous_owners, previous],
            "owner": change.to,
            "team": change.team or item.team,
            "acknowledged_by": None,
            "acknowledged_at": None,
        }
    )
    detail = f"from {previous} to {item.owner} ({item.team})" + (
        f": {change.reason}" if change.reason else ""
    )
    return _happened(item, at, change.by, AuditAction.ITEM_REASSIGNED, detail)


def accept_risk(item: ActionItem, request: RiskAcceptanceRequest, at: datetime) -> Step[ActionItem]:
    """The council closes the item without the fix, with its written reason."""
    accepted = RiskAcceptance(by=request.by, reason=request.reason, at=at)
    item = item.model_copy(
        update={"risk_acceptance": accepted, "state": ActionItemState.RISK_ACCEPTED}
    )
    return _happened(item, at, request.by, AuditAction.ITEM_RISK_ACCEPTED, request.reason)


# --- who hears of it: the notice a step sends ---------------------------------------------------
#
# Built from the record as it is after the step; `at` is when the notice is sent.


def recipients(policy: Policy, names: list[str]) -> list[Recipient]:
    return [Recipient(name=n, email=policy.email_of(n)) for n in names]


def _item_notice(
    item: ActionItem,
    policy: Policy,
    kind: NoticeKind,
    roles: list[str],
    key: str,
    at: datetime,
    facts: ItemFacts | None = None,
    *,
    step: str | None = None,
    notify: str | None = None,
    days_overdue: int = 0,
) -> Notice:
    names = [name for role in roles for name in item_recipients(item, policy, role)]
    return Notice(
        dedupe_key=f"{item.id}/{key}",
        kind=kind,
        at=at,
        to=recipients(policy, names),
        postmortem_id=item.postmortem_id,
        action_item_id=item.id,
        step=step,
        notify=notify,
        due=item.due,
        days_overdue=days_overdue,
        facts=facts,
    )


def escalation_notice(item: ActionItem, policy: Policy, step: PlannedStep, at: datetime) -> Notice:
    """The ladder step `escalate` just took, to whom it is addressed."""
    return _item_notice(
        item,
        policy,
        NoticeKind.ITEM_STEP,
        [step.notify],
        f"{step.name}/plan-{item.plan}",
        at,
        step=step.name,
        notify=step.notify,
        days_overdue=item.escalations[-1].days_overdue,
    )


def queued_notice(
    item: ActionItem, policy: Policy, cap: int, place: int | None, at: datetime
) -> Notice:
    """The manager hears that the item waits for a WIP slot."""
    facts = ItemFacts(team=item.spec.team, wip_cap=cap, place_in_line=place)
    return _item_notice(item, policy, NoticeKind.WIP_QUEUED, ["manager"], "queued", at, facts)


def check_failed_notice(
    item: ActionItem,
    policy: Policy,
    result: CheckResult,
    at: datetime,
    number: int | None = None,
    needed: int | None = None,
) -> Notice:
    """The owner hears which check failed; without `number` and `needed`, the re-check after
    verification."""
    facts = ItemFacts(check=result, check_number=number, checks_required=needed)
    key = f"check-{len(item.checks)}/failed"
    return _item_notice(item, policy, NoticeKind.CHECK_FAILED, ["owner"], key, at, facts)


def regressed_notice(item: ActionItem, policy: Policy, result: CheckResult, at: datetime) -> Notice:
    """The council hears that a verified fix stopped working."""
    facts = ItemFacts(check=result, owner=item.owner)
    key = f"check-{len(item.checks)}/regressed"
    return _item_notice(item, policy, NoticeKind.REGRESSED, ["council"], key, at, facts)


def extension_decided_notice(
    item: ActionItem,
    policy: Policy,
    decision: ExtensionDecision,
    number: int,
    until: date,
    at: datetime,
) -> Notice:
    """The owner hears of the decision on extension `number`, which asked for `until`."""
    verdict = "approved" if decision.approve else "denied"
    facts = ItemFacts(
        by=decision.by, approved=decision.approve, until=until, reason=decision.reason
    )
    key = f"extension-{number}/{verdict}"
    return _item_notice(
        item, policy, NoticeKind.EXTENSION_DECIDED, ["owner"], key, at, facts, step=verdict
    )


def reassigned_notice(
    item: ActionItem,
    policy: Policy,
    change: Reassignment,
    previous_owner: str,
    number: int,
    at: datetime,
) -> Notice:
    """The new owner hears; `number` (the reassignment's seq) keeps each one apart."""
    facts = ItemFacts(by=change.by, previous_owner=previous_owner, reason=change.reason)
    key = f"reassigned-{number}"
    return _item_notice(item, policy, NoticeKind.REASSIGNED, ["owner"], key, at, facts)


def risk_accepted_notice(
    item: ActionItem, policy: Policy, request: RiskAcceptanceRequest, at: datetime
) -> Notice:
    """The owner and their manager hear that the council closed the item without the fix."""
    facts = ItemFacts(by=request.by, reason=request.reason)
    return _item_notice(
        item, policy, NoticeKind.RISK_ACCEPTED, ["owner", "manager"], "risk-accepted", at, facts
    )


def stage_notice(
    pm: Postmortem,
    policy: Policy,
    stage: str,
    deadline: datetime,
    version: int,
    step: PlannedStep,
    at: datetime,
) -> Notice:
    """An overdue draft or review reached a ladder step (`escalate_stage`): whom it tells."""
    calendar = policy.calendar
    return Notice(
        dedupe_key=f"{pm.id}/{stage}-v{version}/{step.name}",
        kind=NoticeKind.POSTMORTEM_OVERDUE,
        at=at,
        to=recipients(policy, stage_recipients(pm, policy, stage, step.notify)),
        postmortem_id=pm.id,
        step=stage,
        notify=step.notify,
        due=calendar.local_date(deadline),
        days_overdue=days_overdue(calendar.local_date(deadline), calendar.local_date(at), calendar),
    )


def unmapped_severity_notices(pm: Postmortem, policy: Policy, at: datetime) -> list[Notice]:
    """Each severity the policy did not map, to the operators, once per source and value."""
    return [
        Notice(
            dedupe_key=gap.dedupe_key,
            kind=NoticeKind.SEVERITY_UNMAPPED,
            at=at,
            to=recipients(policy, policy.operator_names),
            postmortem_id=pm.id,
            unmapped_severity=gap,
        )
        for gap in pm.incident.unmapped_severities
    ]


def theme_notice(pm: Postmortem, policy: Policy, theme: Theme, at: datetime) -> Notice:
    """The council hears of a recurring theme (`theme_reached`)."""
    return Notice(
        dedupe_key=theme.key,
        kind=NoticeKind.RECURRING_THEME,
        at=at,
        to=recipients(policy, list(policy.council)),
        postmortem_id=pm.id,
        notify="council",
        theme=theme,
    )


def budget_exhausted_notice(
    pm: Postmortem, policy: Policy, assessment: SloAssessment, at: datetime
) -> Notice:
    """The council hears of an exhausted error budget (`recommend_freeze`)."""
    return Notice(
        dedupe_key=f"{pm.id}/budget-exhausted/{assessment.slo.id}",
        kind=NoticeKind.BUDGET_EXHAUSTED,
        at=at,
        to=recipients(policy, list(policy.council)),
        postmortem_id=pm.id,
        notify="council",
        slo_id=assessment.slo.id,
    )


def factors_to_count(pm: Postmortem, tags: list[str], policy: Policy, at: datetime) -> FactorTags:
    """What an approved postmortem's contributing factors add to the themes count."""
    return FactorTags(
        postmortem_id=pm.id,
        resolved_at=pm.incident.resolved_at,
        tags=tags,
        team=pm.team,
        services=pm.incident.services,
        severity=pm.severity,
        at=at,
        threshold=policy.themes.threshold,
        window_days=policy.themes.window_days,
    )


def decision_notice(decision: CouncilDecision, policy: Policy, step: str, at: datetime) -> Notice:
    """The council hears of a decision opened, decided or lifted (`step`): once each."""
    return Notice(
        dedupe_key=f"{decision.id}/{step}",
        kind=NoticeKind.COUNCIL_DECISION,
        at=at,
        to=recipients(policy, list(policy.council)),
        postmortem_id=decision.id,  # the outbox's subject column: the decision
        step=step,
        notify="council",
        decision=decision,
    )
