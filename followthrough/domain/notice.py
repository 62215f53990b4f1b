"""Notices: the messages workflows ask to send, and the outbox record of each one.

A workflow decides *that* someone must be told, whom (deterministically, from its policy) and the
facts of it; an activity renders the message from templates (followthrough/notices/templates),
which hold all its wording, sends it once per dedupe key and records it.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from followthrough.domain.checks import CheckResult
from followthrough.domain.decisions import Decision
from followthrough.domain.incident import UnmappedSeverity
from followthrough.domain.themes import Theme


class NoticeKind(StrEnum):
    ITEM_STEP = "item_step"  # a ladder step: reminder, due, manager, council, ...
    EXTENSION_REQUESTED = "extension_requested"
    EXTENSION_DECIDED = "extension_decided"
    REASSIGNED = "reassigned"
    WIP_QUEUED = "wip_queued"
    RISK_ACCEPTED = "risk_accepted"
    CHECK_FAILED = "check_failed"  # a done claim's check failed: the item is open again
    REGRESSED = "regressed"  # a verified item failed its later re-check
    POSTMORTEM_OVERDUE = "postmortem_overdue"  # a draft or a review past its due time
    COUNCIL_DIGEST = "council_digest"  # the weekly list for the reliability council
    MONTHLY_DIGEST = "monthly_digest"  # the previous month's headline numbers, to the council
    RECURRING_THEME = "recurring_theme"  # a contributing-factor tag came back: to the council
    BUDGET_EXHAUSTED = "budget_exhausted"  # an incident used up an SLO's budget: to the council
    SEVERITY_UNMAPPED = "severity_unmapped"  # a source's severity the policy lacks: operators
    STUCK_WORK = "stuck_work"  # a workflow's tasks or an activity keep failing: to the operators
    # Hand-offs: work just landed on someone (followthrough.domain.handoffs). Not urgent.
    POSTMORTEM_OPENED = "postmortem_opened"  # to its owner: yours to write, due when
    OPT_IN_OFFERED = "opt_in_offered"  # an optional postmortem: to the owning team
    DRAFT_SUBMITTED = "draft_submitted"  # to each reviewer who has not yet approved
    CHANGES_REQUESTED = "changes_requested"  # to the owner, with the reviewer's reason
    POSTMORTEM_APPROVED = "postmortem_approved"  # to the owner and every item owner
    ITEM_ASSIGNED = "item_assigned"  # an approved item, to its owner
    REASSIGNED_AWAY = "reassigned_away"  # a reassigned item, to its previous owner
    DONE_CLAIMED = "done_claimed"  # to whoever may verify the claim
    ITEM_VERIFIED = "item_verified"  # a claim verified (by hand or by check): to the owner
    CLAIM_REJECTED = "claim_rejected"  # a claim judged not done by a person: to the owner
    HANDOFF_DIGEST = "handoff_digest"  # a person's held non-urgent notices, once a day
    AUDIENCE_SUMMARY = "audience_summary"  # an approved postmortem, to an audience of its severity
    # A council decision opened, decided or lifted (`step`): to the council, email only.
    COUNCIL_DECISION = "council_decision"


# Notices that go by email alone: an audience's summary is for readers outside engineering (not
# their Slack, nor a team's); a council decision has no postmortem, so no channel to post in.
EMAIL_ONLY_KINDS = frozenset({NoticeKind.AUDIENCE_SUMMARY, NoticeKind.COUNCIL_DECISION})

# The notices of hand-offs (followthrough.domain.handoffs), each worded by the handoff template.
HANDOFF_KINDS = frozenset(
    {
        NoticeKind.POSTMORTEM_OPENED,
        NoticeKind.OPT_IN_OFFERED,
        NoticeKind.DRAFT_SUBMITTED,
        NoticeKind.CHANGES_REQUESTED,
        NoticeKind.POSTMORTEM_APPROVED,
        NoticeKind.ITEM_ASSIGNED,
        NoticeKind.REASSIGNED_AWAY,
        NoticeKind.DONE_CLAIMED,
        NoticeKind.ITEM_VERIFIED,
        NoticeKind.CLAIM_REJECTED,
    }
)
# What a person may take in a daily digest: the hand-offs, and the item events that hand work
# over too. Escalations, overdue notices and what goes to the council or operators stay immediate.
NON_URGENT_KINDS = HANDOFF_KINDS | {
    NoticeKind.REASSIGNED,
    NoticeKind.EXTENSION_REQUESTED,
    NoticeKind.EXTENSION_DECIDED,
    NoticeKind.CHECK_FAILED,
}


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    email: str


class ItemFacts(BaseModel):
    """What happened to an action item, as facts: the item_event templates put them into words.

    Each kind fills what its message needs (the notice itself carries the item, the due date as
    it stands after the change, and the step).
    """

    model_config = ConfigDict(frozen=True)

    by: str | None = None  # who asked for time, decided, reassigned or accepted the risk
    reason: str | None = None  # theirs, in their words
    until: date | None = None  # the due date an extension asks for
    approved: bool | None = None  # an extension's decision
    previous_owner: str | None = None  # reassigned: whose it was
    owner: str | None = None  # regressed: who owns it now
    team: str | None = None  # queued: the team at its WIP cap, the cap and the item's place
    wip_cap: int | None = None
    place_in_line: int | None = None
    check: CheckResult | None = None  # a failed check: what was asked, the answer, why
    check_number: int | None = None  # check N of M failed; None: the re-check after verifying
    checks_required: int | None = None
    evidence: str | None = None  # done claimed: what the owner points to
    new_owner: str | None = None  # reassigned away: whose it is now
    draft_version: int | None = None  # a draft submitted or sent back: which version


class Notice(BaseModel):
    """What to tell whom, and the key that makes telling it idempotent."""

    model_config = ConfigDict(frozen=True)

    dedupe_key: str = Field(min_length=1, max_length=300)
    kind: NoticeKind
    at: AwareDatetime  # workflow time: when the workflow decided to send it
    to: list[Recipient] = Field(min_length=1)
    postmortem_id: str
    action_item_id: str | None = None
    step: str | None = None  # the ladder step, or the postmortem stage ("draft", "review")
    notify: str | None = None  # owner, manager or council: who the step is addressed to
    due: date | None = None
    days_overdue: int = 0
    note: str = ""  # only in histories from before `facts`: the message's words, sent as they are
    facts: ItemFacts | None = None  # what happened to the item: an extension, a reassignment, ...
    theme: Theme | None = None  # for a recurring theme: which one
    slo_id: str | None = None  # for an exhausted budget: which SLO (its assessment is on the pm)
    unmapped_severity: UnmappedSeverity | None = None  # for a policy gap: which value, and source
    audience: str | None = None  # for an audience's summary: which audience (policy `audiences`)
    page_url: str | None = None  # the postmortem's published page, when it was published
    # For a council decision: the decision as it stood (postmortem_id then holds its id).
    decision: Decision | None = None


class OutboxStatus(StrEnum):
    PENDING = "pending"  # recorded, not yet handed to SMTP or the local outbox
    SENT = "sent"  # accepted by the SMTP server
    KEPT = "kept"  # no SMTP configured: kept in the local outbox
    FAILED = "failed"  # cannot be rendered, refused for good, or given up on: `error` says why
    HELD = "held"  # every recipient takes a daily digest: it goes out in theirs


class NoticeDelivery(StrEnum):
    """How a person takes non-urgent notices (hand-offs); they choose it themselves."""

    IMMEDIATE = "immediate"  # each one as it happens (the default)
    DAILY = "daily"  # gathered into one digest a day; escalations still come at once


class OutboxMessage(BaseModel):
    dedupe_key: str
    kind: NoticeKind
    postmortem_id: str
    action_item_id: str | None
    recipients: list[str]
    subject: str
    text: str
    html: str
    status: OutboxStatus
    created_at: AwareDatetime
    sent_at: AwareDatetime | None
    error: str | None = None  # why a failed message did not go out


# "day": each person's held hand-offs (same workflow, same commands: only the input differs)
DigestPeriod = Literal["week", "month", "day"]


class DigestRequest(BaseModel):
    """A council digest, as of a moment (the schedule's firing time): the weekly list, or the
    previous month's numbers."""

    at: AwareDatetime | None = None  # None: when the digest workflow runs
    period: DigestPeriod = "week"  # histories from before carry none: a week


class DigestEntry(BaseModel):
    item_id: str
    title: str
    priority: str
    owner: str
    team: str
    due: date
    days_overdue: int
    incident: str  # "INC-2041 SEV2: Checkout returned 502s"
    escalated_to_council: bool
    note: str = ""  # for risk acceptances: who and why


class Digest(BaseModel):
    """What the council reads each week; built from the record, as of `at`."""

    at: AwareDatetime
    week: str  # ISO week, e.g. 2026-W48
    escalated: list[DigestEntry] = Field(default_factory=list)
    overdue: list[DigestEntry] = Field(default_factory=list)
    risk_accepted: list[DigestEntry] = Field(default_factory=list)
    open_items: int = 0
    verified_this_week: int = 0

    @property
    def subject(self) -> str:
        return (
            f"Reliability council digest, {self.week}: {len(self.escalated)} escalated, "
            f"{len(self.overdue)} overdue, {len(self.risk_accepted)} risk accepted"
        )
