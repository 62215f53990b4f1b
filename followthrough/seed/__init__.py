"""Realistic seeded records: `followthrough seed`, the dashboard benchmark and the browser tests.

Fifteen months of incidents before `now`, each with the postmortem and action items the product
would have recorded for it, written through the store's own write path (snapshots, audit events,
the search index, factor tags), so the dashboard reads them exactly as it reads production data.

Everything about seeded postmortem number i follows from (seed, i) and the postmortems before it
(its own random.Random; their items hold WIP slots), so the ids are stable (`SEED-000123`), the
same seed gives the same record, and a database seeded with 1,000 holds the first 1,000 of one
seeded with 10,000. Postmortems already recorded
are skipped: running it again writes nothing new.

How a history is made, per incident:
- severity weighted (few SEV1, mostly SEV3), services and commander from the policy, milestone
  gaps drawn per severity (detect and acknowledge in minutes, mitigate in tens of minutes to
  hours, resolve in hours; acknowledge and communicate sometimes missing);
- text from a vocabulary of failure scenarios (connection pool exhausted, certificate expired,
  retry storm, config push, DNS, timeouts, ...), some far more common than others, with their
  contributing factors and tags repeating across incidents (recurring themes);
- the postmortem's life by age: drafting, in review (sometimes sent back once), tracking, closed
  once every item is resolved; optional ones (SEV3, SEV4) mostly lapse unless someone opts in;
  overdue drafts and reviews climb the ladder; drafts pass the domain's own checks
  (draft_problems) and, for services with an SLO, the SLO review (estimated from the draft);
- each action item's life by age: acknowledged, sometimes extended, claimed done and verified
  (sometimes rejected once first), risk accepted by the council, or still open past its due date;
  every escalation step whose time came while it was open fires;
- the teams' WIP caps hold as TeamSlotsWorkflow holds them: an item that finds its team's slots
  taken waits in line, clock stopped, until one frees for as long as it will work (postmortem i's
  items take the slots postmortems 0 .. i-1 left, so a prefix stays the same as the count grows).
  A history far larger than the caps can work shows long lines; `seed` counts who waits at `now`.

Every notice a step sends (the domain builds it beside the step, as for the workflows) is in the
outbox as sent, rendered by the notice activity's renderer at the step's time.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from followthrough.domain import handoffs, steps
from followthrough.domain.calendar import BusinessCalendar
from followthrough.domain.criteria import Manual
from followthrough.domain.draft import (
    ActionItemDraft,
    ContributingFactor,
    Draft,
    Priority,
    SloChange,
    SloImpactEstimate,
    TimelineEntry,
    TimelineKind,
    communication_review,
    factor_tags,
)
from followthrough.domain.escalation import (
    plan_ladder,
)
from followthrough.domain.incident import DEMO_SOURCE, Incident, incident_problems
from followthrough.domain.notice import Notice, NoticeKind, OutboxMessage, OutboxStatus
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    Acknowledgement,
    ActionItem,
    ActionItemChange,
    ActionItemStart,
    ActionItemState,
    Approval,
    AuditEvent,
    ChangeRequest,
    DoneClaim,
    DraftSubmission,
    ExtensionDecision,
    ExtensionRequest,
    Postmortem,
    PostmortemChange,
    PostmortemState,
    Rejection,
    RiskAcceptanceRequest,
    Verification,
    acknowledgement_refusal,
    approval_refusal,
    change_request_refusal,
    claim_refusal,
    extension_decision_refusal,
    extension_request_refusal,
    open_action_item,
    open_postmortem,
    rejection_refusal,
    risk_acceptance_refusal,
    submit_refusal,
    verifier_refusal,
)
from followthrough.domain.problems import Refusal
from followthrough.domain.slo import Slo
from followthrough.domain.slo_review import SloEvidence, SloReview, review_slos, slo_question
from followthrough.domain.slo_rules import alert_name
from followthrough.domain.themes import FactorTags, Theme
from followthrough.domain.tickets import TicketRef
from followthrough.notices.render import Links, outbox_message, render_notice
from followthrough.notices.themes import theme_email
from followthrough.seed.vocabulary import (
    APPROVAL_COMMENTS,
    CHANGE_REASONS,
    DEPENDENCIES,
    EXTENSION_REASONS,
    GENERIC_ITEMS,
    REJECT_REASONS,
    RISK_REASONS,
    SCENARIOS,
    VERIFY_NOTES,
)
from followthrough.storage import Store

SOURCE = DEMO_SOURCE  # their postmortems are postmortem-seed-SEED-000123: demo records
ID_PREFIX = f"postmortem-{SOURCE}-"
HISTORY = timedelta(days=456)  # fifteen months
BATCH = 25  # postmortems (with their items and events) per transaction
# Only some services have SLOs, so only some incidents have an SLO review.
SLO_OBJECTIVES = {"checkout": 0.999, "billing": 0.999, "api-gateway": 0.9995}
SLO_PERIOD = timedelta(days=28)
HOUR = timedelta(hours=1)
# Seeded notices link to the Temporal UI's default address; their records have no workflow.
LINKS = Links(temporal_ui="http://127.0.0.1:8233")

Change = PostmortemChange | ActionItemChange
T = TypeVar("T")
Progress = Callable[[int, int], None]
CountThemes = Callable[[FactorTags], list[Theme]]


def seeded_incident_id(index: int) -> str:
    return f"SEED-{index:06d}"


def seeded_postmortem_id(index: int) -> str:
    return f"{ID_PREFIX}{seeded_incident_id(index)}"


SEVERITY_WEIGHTS = {"SEV1": 5, "SEV2": 25, "SEV3": 50, "SEV4": 20}
# Share of requests failing while users hurt.
PERCENT_FAILING = {
    "SEV1": (25, 38, 60, 80),
    "SEV2": (5, 8, 12, 18, 25),
    "SEV3": (1, 2, 3, 5, 8),
    "SEV4": (1, 2),
}
OPT_IN = {"SEV3": 0.75, "SEV4": 0.35}  # chance someone writes an optional postmortem
ITEMS_PER_DRAFT = {"SEV1": (8, 14), "SEV2": (6, 10), "SEV3": (3, 7), "SEV4": (2, 5)}
PRIORITY_WEIGHTS = {
    "SEV1": (30, 40, 20, 10),
    "SEV2": (10, 40, 35, 15),
    "SEV3": (3, 25, 45, 27),
    "SEV4": (0, 15, 45, 40),
}
DUE_DAYS = {
    Priority.P0: (5, 14),
    Priority.P1: (10, 30),
    Priority.P2: (20, 45),
    Priority.P3: (30, 75),
}


@dataclass(frozen=True)
class Gaps:
    """Median minutes between milestones for one severity; each draw is spread around it."""

    detect: float  # started -> detected
    acknowledge: float  # detected -> acknowledged
    mitigate: float  # acknowledged -> mitigated
    resolve: float  # mitigated -> resolved
    communicate: float  # started -> communicated
    communicated: float  # how often communication is recorded at all


GAPS = {
    "SEV1": Gaps(6, 2, 40, 120, 15, 0.97),
    "SEV2": Gaps(10, 4, 55, 180, 25, 0.9),
    "SEV3": Gaps(20, 8, 70, 240, 45, 0.6),
    "SEV4": Gaps(45, 15, 120, 360, 90, 0.3),
}

# Where a seeded incident was reported from, and the milestones that source's resolution
# webhook carries (followthrough/webhooks): PagerDuty, Opsgenie, Alertmanager and Grafana send a
# start and a resolution only, so their figures stay hollow until the reviewed timeline fills
# them in, as they do in production. Drawn apart from the history's own random numbers, so the
# rest of a seeded record is what it was.
REPORTED_BY = {
    "pagerduty": 30,
    "opsgenie": 10,
    "alertmanager": 15,
    "grafana": 10,
    "incidentio": 15,
    "firehydrant": 10,
    "generic": 10,
}
CARRIED = {
    "pagerduty": ("started",),
    "opsgenie": ("started",),
    "alertmanager": ("started",),
    "grafana": ("started",),
    "incidentio": ("started", "mitigated"),
    "firehydrant": ("started", "detected", "acknowledged", "mitigated"),
    "generic": ("started", "detected", "acknowledged", "mitigated", "communicated"),
}


# The milestones a seeded draft adds when its incident lacks them, and as which kind.
DRAFTED_AS: dict[str, TimelineKind] = {
    "detected": "detected",
    "acknowledged": "acknowledged",
    "mitigated": "mitigated",
    # communicated: the first of the drafted status updates (`_status_updates`)
}


def reported_by(index: int) -> str:
    """The source seeded incident number `index` came from (its own stable draw)."""
    return _weighted(random.Random(f"reported-by-{index}"), REPORTED_BY)


# --- SLOs --------------------------------------------------------------------------------------


def seeded_slos(policy: Policy) -> list[Slo]:
    """An availability SLO for each of the policy's services that SLO_OBJECTIVES names."""
    return [
        Slo(
            id=f"{service}-availability",
            name=f"{service} availability",
            service=service,
            objective=objective,
            period=SLO_PERIOD,
        )
        for service, objective in SLO_OBJECTIVES.items()
        if service in policy.services
    ]


def flowing_cap(postmortems: int) -> int:
    """A WIP cap that bears `postmortems` seeded ones in each team: one slot per six lets most
    of the work flow while some waits at the peaks."""
    return max(1, math.ceil(postmortems / 6))


def sized_for(policy: Policy, postmortems: int) -> Policy:
    """`policy` with each capped team's WIP cap raised to bear `postmortems` seeded ones: what
    the benchmarks and the larger tests seed (and serve) against. The demo keeps its own caps."""
    teams = {
        name: team.model_copy(update={"wip_cap": max(team.wip_cap, flowing_cap(postmortems))})
        if team.wip_cap is not None
        else team
        for name, team in policy.teams.items()
    }
    return policy.model_copy(update={"teams": teams})


# --- one incident's history --------------------------------------------------------------------


@dataclass
class Seeded:
    """Seeded postmortem number `index`: everything it recorded and the notices its steps sent
    (the recurring themes' apart: their email reads the record, so it is rendered once written)."""

    postmortem: Postmortem
    items: list[ActionItem]
    changes: list[Change]
    outbox: list[OutboxMessage]
    theme_notices: list[Notice]


def _allowed(refusal: Refusal | None) -> None:
    """The seeded people act only as the workflows would let them."""
    if refusal is not None:
        raise AssertionError(f"the seeded history breaks a rule: {refusal}")


def seeded_incidents(
    policy: Policy, now: datetime, seed: int = 7, count_themes: CountThemes | None = None
) -> Iterator[Seeded]:
    """Seeded postmortems 0, 1, 2, ... as recorded by `now`; the same for the same arguments.
    Each is played after those before it, whose action items hold their teams' WIP slots.

    `count_themes` counts an approval's factor tags as the themes activity does (the store's
    `themes.note_factor_tags`) and returns the themes it reached; without it, none are counted.
    Counted in the order played, a theme is reached by the postmortem that completes it in that
    order, at its approval."""
    start = now - HISTORY - timedelta(days=1)
    slots = {
        name: _Slots(team.wip_cap, start, now)
        for name, team in policy.teams.items()
        if team.wip_cap is not None
    }
    for index in itertools.count():
        rng = random.Random(f"followthrough-seed:{seed}:{index}")
        yield _History(rng, index, policy, now, slots, count_themes).run()


class _Slots:
    """One team's WIP slots over the seeded history, as TeamSlotsWorkflow hands them out: how
    many items hold a slot in each hour. An item holds every hour its work touches, so counting
    by the hour never lets a moment hold more than the cap (a freed slot is handed on at the next
    hour); the product hands it on at once, highest priority first, which the seed leaves out."""

    def __init__(self, cap: int, start: datetime, now: datetime) -> None:
        self.cap = cap
        self.start = start
        self.hours = math.ceil((now - start) / HOUR) + 1  # the last: still open at `now`
        self.held = [0] * self.hours
        self.waiting: list[tuple[datetime, datetime | None]] = []  # (queued, admitted)

    def _hours(self, begin: datetime, end: datetime | None) -> range:
        """The hours [begin, end) touches; end None: open for good."""
        first = math.floor((begin - self.start) / HOUR)
        last = self.hours if end is None else math.ceil((end - self.start) / HOUR)
        return range(first, max(last, first + 1))

    def full_hour(self, begin: datetime, end: datetime | None) -> int | None:
        """The last hour of [begin, end) with every slot taken; None when the work fits."""
        hours = self._hours(begin, end)
        if max(self.held[hours.start : hours.stop]) < self.cap:
            return None
        return next(h for h in reversed(hours) if self.held[h] >= self.cap)

    def free_after(self, hour: int) -> datetime | None:
        """The start of the first hour after `hour` with a slot free; None: none before the end."""
        for h in range(hour + 1, self.hours):
            if self.held[h] < self.cap:
                return self.start + timedelta(hours=h)
        return None

    def hold(self, begin: datetime, end: datetime | None) -> None:
        for h in self._hours(begin, end):
            self.held[h] += 1

    def place_in_line(self, at: datetime) -> int:
        """Where an item queued at `at` stands: behind those still waiting then."""
        return 1 + sum(1 for q, a in self.waiting if q <= at and (a is None or a > at))


class _History:
    """Plays one incident's postmortem and action items forward to `now`."""

    def __init__(
        self,
        rng: random.Random,
        index: int,
        policy: Policy,
        now: datetime,
        slots: dict[str, _Slots],
        count_themes: CountThemes | None,
    ) -> None:
        self.rng = rng
        self.slots = slots  # the capped teams'; earlier postmortems' items hold some
        self.count_themes = count_themes
        self.index = index
        self.policy = policy
        self.calendar: BusinessCalendar = policy.calendar
        self.now = now
        self.scenario = _weighted(rng, {s: s.weight for s in SCENARIOS})
        self.dependency = rng.choice(DEPENDENCIES)
        self.percent = 0  # of requests failing, drawn with the severity
        self.minutes = rng.choice((7, 12, 18, 25, 40, 55))
        self.services: list[str] = []  # the incident's
        self.author: str | None = None  # who opted in to an optional postmortem
        self.events: list[AuditEvent] = []  # the postmortem's, in order
        self.lives: list[_ItemLife] = []  # its action items'
        # What its steps sent, in order, with the records as they stood: rendered once the
        # history is played (an item's life played again from its admission sends anew).
        self.sent: list[tuple[Notice, Postmortem, ActionItem | None]] = []
        self.milestones: dict[str, datetime | None] = {}  # what happened, whatever was reported
        incident = self._incident()
        problems = incident_problems(incident, policy)
        if problems:
            raise AssertionError(f"seeded incident {incident.id}: {'; '.join(problems)}")
        opened = incident.resolved_at + timedelta(minutes=self.rng.uniform(1, 10))
        self.pm = open_postmortem(incident, policy, opened)

    def run(self) -> Seeded:
        self._take(steps.record_opening(self.pm, self.pm.opened_at))
        self.tell(handoffs.opened_notice(self.pm, self.policy, self.pm.opened_at))
        self._postmortem_life()
        # Each event goes with the final snapshot: the store keeps a workflow's newest one, so
        # the snapshots in between would be written only to be overwritten.
        pm = self.pm
        changes: list[Change] = [PostmortemChange(postmortem=pm, event=e) for e in self.events]
        for life in self.lives:
            changes += [ActionItemChange(item=life.item, event=e) for e in life.events]
        items = [life.item for life in self.lives]
        return Seeded(
            postmortem=pm,
            items=items,
            changes=changes,
            outbox=self._outbox(),
            theme_notices=[n for n, _, _ in self.sent if n.kind is NoticeKind.RECURRING_THEME],
        )

    def _take(self, step: steps.Step[Postmortem]) -> None:
        """One step of the postmortem's process, as its workflow takes it."""
        self.pm = step.state
        self.events.append(step.event)

    def tell(self, notice: Notice | None, item: ActionItem | None = None) -> None:
        """A notice sent, once per dedupe key: a draft submitted again exhausts the same budget,
        and nobody hears twice."""
        if notice is None:  # the step tells nobody (a hand-off with no one to hand to)
            return
        if all(told.dedupe_key != notice.dedupe_key for told, _, _ in self.sent):
            self.sent.append((notice, self.pm, item))

    def _outbox(self) -> list[OutboxMessage]:
        """The notices as the notice activity renders and records them: each shows what was
        sent before about its item, or for the postmortem's own notices, about it."""
        outbox: list[OutboxMessage] = []
        for notice, pm, item in self.sent:
            if notice.kind is NoticeKind.RECURRING_THEME:
                continue
            earlier = [m for m in outbox if item is None or m.action_item_id == item.id]
            email = render_notice(notice, pm, item, earlier, LINKS)
            outbox.append(_sent(outbox_message(notice, pm.id, email)))
        return outbox

    def _last(self) -> datetime:
        return self.events[-1].at

    # --- the incident ----------------------------------------------------------------------

    def _incident(self) -> Incident:
        rng, policy = self.rng, self.policy
        severity = _weighted(rng, {s: SEVERITY_WEIGHTS.get(s, 10) for s in policy.severities})
        self.percent = rng.choice(PERCENT_FAILING.get(severity, (2, 5, 10)))
        services = [rng.choice(sorted(policy.services))] if policy.services else []
        if services and rng.random() < 0.25:
            services.append(rng.choice(sorted(policy.services)))
        services = self.services = list(dict.fromkeys(services))
        team = policy.team_of_service(services[0]) if services else None
        people = sorted(policy.teams[team].members) if team else sorted(policy.people)
        commander = rng.choice(people) if rng.random() < 0.8 else None
        resolved = self.now - timedelta(seconds=rng.uniform(3600, HISTORY.total_seconds()))
        # What happened; the incident carries what its source's webhook would have.
        self.milestones = self._milestones(severity, resolved)
        carried = CARRIED[reported_by(self.index)]
        milestones = {
            name: at if name.removesuffix("_at") in carried else None
            for name, at in self.milestones.items()
        }
        return Incident(
            id=seeded_incident_id(self.index),
            title=self._text(rng.choice(self.scenario.titles), services),
            severity=severity,
            source=SOURCE,
            services=services,
            commander=commander,
            summary=self._text(self.scenario.summary, services),
            url=f"https://incidents.example.com/{seeded_incident_id(self.index)}",
            resolved_at=resolved,
            **milestones,
        )

    def _milestones(self, severity: str, resolved: datetime) -> dict[str, datetime | None]:
        gaps = GAPS.get(severity, GAPS["SEV3"])
        detect, ack = self._minutes(gaps.detect), self._minutes(gaps.acknowledge)
        mitigate, resolve = self._minutes(gaps.mitigate), self._minutes(gaps.resolve)
        started = resolved - timedelta(minutes=detect + ack + mitigate + resolve)
        communicated = None
        if self.rng.random() < gaps.communicated:
            communicated = started + timedelta(minutes=self._minutes(gaps.communicate))
        return {
            "started_at": started,
            "detected_at": started + timedelta(minutes=detect),
            # Some tools never send an acknowledgement.
            "acknowledged_at": (
                started + timedelta(minutes=detect + ack) if self.rng.random() > 0.08 else None
            ),
            "mitigated_at": started + timedelta(minutes=detect + ack + mitigate),
            "communicated_at": communicated,
        }

    def _minutes(self, median: float) -> float:
        """Around the median, with the long tail real incidents have."""
        return round(self.rng.lognormvariate(math.log(median), 0.6), 1)

    def _text(self, template: str, services: Sequence[str]) -> str:
        return template.format(
            service=services[0] if services else "the platform",
            dependency=self.dependency,
            percent=self.percent,
            minutes=self.minutes,
            scenario=self.scenario.name,
        )

    # --- the postmortem --------------------------------------------------------------------

    def _postmortem_life(self) -> None:
        rng, now, pm = self.rng, self.now, self.pm
        severity = self.policy.severity(pm.severity)
        if not pm.required:
            window_end = pm.opened_at + timedelta(days=severity.optional_window_days)
            opt_in = rng.random() < OPT_IN.get(pm.severity, 0.3)
            submitted = pm.opened_at + (window_end - pm.opened_at) * rng.uniform(0.1, 0.8)
            if not opt_in and window_end <= now:
                self._take(steps.lapse(pm, window_end))
                return
            if not opt_in or submitted > now:
                return  # still optional
            self.author = self._author(pm)  # opting in makes you the owner
        else:
            submitted = self._draft_done_at(pm)
            self._stage_escalations("draft", min(submitted, now))
            if submitted > now:
                return  # still drafting
        self._review(submitted)

    def _author(self, pm: Postmortem) -> str:
        team = self.policy.teams.get(pm.team or "")
        return self.rng.choice(sorted(team.members) if team else sorted(self.policy.people))

    def _draft_done_at(self, pm: Postmortem) -> datetime:
        """Three in four drafts are in by their due date; the rest up to eight days late."""
        if self.rng.random() < 0.75:
            return pm.opened_at + (pm.draft_due - pm.opened_at) * self.rng.uniform(0.25, 0.95)
        return pm.draft_due + timedelta(hours=self.rng.uniform(12, 8 * 24))

    def _review(self, submitted: datetime) -> None:
        """Submitted, sometimes sent back once and submitted again, then approved."""
        rng, now = self.rng, self.now
        sent_back = rng.random() < 0.15
        asked = submitted + timedelta(hours=rng.uniform(4, 72))
        again = asked + timedelta(hours=rng.uniform(20, 96))
        # Written for the last submission: its due dates are still ahead then.
        draft, review = self._draft(self.pm, again if sent_back else submitted)
        self._submit(draft, review, submitted)
        if sent_back:
            self._stage_escalations("review", min(asked, now))
            if asked > now:
                return
            request = ChangeRequest(by=self._reviewers(1)[0], reason=rng.choice(CHANGE_REASONS))
            _allowed(change_request_refusal(self.pm, request, self.policy))
            self._take(steps.request_changes(self.pm, request, asked))
            self.tell(handoffs.changes_requested_notice(self.pm, self.policy, request, asked))
            self._stage_escalations("draft", min(again, now))
            if again > now:
                return
            self._submit(draft, review, again)
        self._approvals()

    def _submit(self, draft: Draft, review: SloReview, at: datetime) -> None:
        submission = DraftSubmission(by=self.author or self.pm.owner, draft=draft)
        _allowed(submit_refusal(self.pm, submission, self.policy, at.astimezone(UTC).date()))
        self._take(steps.submit_draft(self.pm, submission, review.assessments, self.policy, at))
        for assessment in review.assessments:
            self._take(steps.assess_slo(self.pm, submission.by, assessment, at))
            if assessment.freeze_recommended:
                self._take(steps.recommend_freeze(self.pm, assessment, at))
                self.tell(steps.budget_exhausted_notice(self.pm, self.policy, assessment, at))
        self.tell(handoffs.draft_submitted_notice(self.pm, self.policy, at))

    def _reviewers(self, count: int) -> list[str]:
        policy, owner = self.policy, self.pm.owner
        able = sorted(p for p in {*policy.reviewers, *policy.council} if p != owner)
        return self.rng.sample(able, min(count, len(able)))

    def _approvals(self) -> None:
        assert self.pm.submitted_at is not None
        at = self.pm.submitted_at
        for reviewer in self._reviewers(self.pm.approvals_required):
            at += timedelta(hours=self.rng.uniform(2, 80))
            self._stage_escalations("review", min(at, self.now))
            if at > self.now:
                return  # still in review
            approval = Approval(by=reviewer, comment=self.rng.choice(APPROVAL_COMMENTS))
            _allowed(approval_refusal(self.pm, approval, self.policy))
            self._take(steps.approve(self.pm, approval, at))
        if self.pm.state is PostmortemState.TRACKING:
            self.tell(handoffs.approved_notice(self.pm, self.policy, at))
            self._follow_up(at)

    def _stage_escalations(self, stage: str, until: datetime) -> None:
        """The steps an overdue draft or review fires before `until`, as the workflow fires them:
        the item ladder's steps from the due date on, once per stage and draft version."""
        pm = self.pm
        if stage == "review":
            assert pm.review_due is not None
            deadline, version = pm.review_due, pm.draft_version
        else:
            deadline, version = pm.draft_due, 0
        fired = {e.step for e in pm.escalations if e.plan == version}
        ladder = [s for s in self.policy.escalation.default if s.business_days >= 0]
        for step in plan_ladder(self.calendar.local_date(deadline), ladder, self.calendar):
            if f"{stage}:{step.name}" in fired:
                continue
            at = max(step.at, self._last())  # a step whose time passed fires at once
            if at >= until:
                return
            notice = steps.stage_notice(self.pm, self.policy, stage, deadline, version, step, at)
            self._take(
                steps.escalate_stage(self.pm, self.policy, stage, deadline, version, step, at)
            )
            self.tell(notice)

    def _follow_up(self, approved: datetime) -> None:
        pm = self.pm
        assert pm.draft is not None
        tags = factor_tags(pm.draft)
        if tags and self.count_themes is not None:
            note = steps.factors_to_count(pm, tags, self.policy, approved)
            for theme in self.count_themes(note):
                self._take(steps.theme_reached(self.pm, theme, approved))
                self.tell(steps.theme_notice(self.pm, self.policy, theme, approved))
        for spec in pm.action_item_specs():
            opened = approved + timedelta(seconds=self.rng.uniform(1, 30))
            start = ActionItemStart(
                item_id=pm.action_item_id(spec.number),
                postmortem_id=pm.id,
                spec=spec,
                policy=self.policy,
                postmortem_title=pm.incident.title,
            )
            life = _ItemLife(self, open_action_item(start, opened))
            life.run()
            self.lives.append(life)
        if all(life.item.resolved for life in self.lives):
            closed = max(life.events[-1].at for life in self.lives)
            self._take(steps.close(self.pm, [life.item for life in self.lives], closed))

    # --- the draft -------------------------------------------------------------------------

    def _draft(self, pm: Postmortem, submitted: datetime) -> tuple[Draft, SloReview]:
        """A draft the SLO review accepts (submit_refusal checks the rest when it is submitted)."""
        incident = pm.incident
        today = self.calendar.local_date(submitted)
        draft = Draft(
            summary=incident.summary,
            impact=self._impact(incident),
            timeline=self._timeline(incident),
            contributing_factors=self._factors(incident),
            detection_gaps=[self._text(self.scenario.detection_gap, incident.services)],
            recovery_steps=[self._text(s, incident.services) for s in self.scenario.recovery],
            action_items=self._action_items(pm, today),
            slo_impact=self._slo_estimate(incident),
        )
        review = self._slo_review(pm, draft)
        if review.problems:
            draft = self._meet_slo_duties(draft, review, today)
            review = self._slo_review(pm, draft)
        if review.problems:
            raise AssertionError(f"seeded draft for {pm.id}: {'; '.join(review.problems)}")
        return self._answer_communication(pm, draft, today), review

    def _impact(self, incident: Incident) -> str:
        started, mitigated = self.milestones["started_at"], self.milestones["mitigated_at"]
        assert started is not None and mitigated is not None
        minutes = round((mitigated - started).total_seconds() / 60)
        service = incident.services[0] if incident.services else "platform"
        customers = self.rng.choice((40, 300, 1200, 4100, 9800))
        return (
            f"{self.percent}% of {service} requests failed for {minutes} minutes; about "
            f"{customers:,} customers saw errors."
        )

    def _timeline(self, incident: Incident) -> list[TimelineEntry]:
        """The decision, and what happened that the incident's source did not say: the owner
        adds the milestones the webhook lacked (communication as the first status update)."""
        detected, mitigated = self.milestones["detected_at"], self.milestones["mitigated_at"]
        assert detected is not None and mitigated is not None
        decided = detected + (mitigated - detected) * 0.6
        timeline = [
            TimelineEntry(
                at=decided,
                kind="decision",
                description=self._text(self.scenario.decision, incident.services),
            ),
            *self._status_updates(incident),
        ]
        for name, kind in DRAFTED_AS.items():
            at = self.milestones[f"{name}_at"]
            if at is None or incident.milestone(name) is not None:
                continue
            timeline.append(
                TimelineEntry(at=at, kind=kind, description=f"{name} (from the responders' notes)")
            )
        return sorted(timeline, key=lambda e: e.at)

    def _status_updates(self, incident: Incident) -> list[TimelineEntry]:
        """Status updates from the communicated milestone until mitigation, 20 to 45 minutes
        apart, so some contracts hold and some break. Their own random numbers: the rest of
        the seeded history stays as it was."""
        first, end = self.milestones["communicated_at"], self.milestones["mitigated_at"]
        if first is None or end is None:
            return []
        rng = random.Random(incident.id)
        updates: list[TimelineEntry] = []
        at = first
        while at < end and len(updates) < 12:
            updates.append(
                TimelineEntry(at=at, kind="status_update", description="Status page updated")
            )
            at += timedelta(minutes=rng.randint(20, 45))
        return updates

    def _answer_communication(self, pm: Postmortem, draft: Draft, today: date) -> Draft:
        """What an author adds when the timeline broke the communication contract."""
        review = communication_review(pm.incident, draft, self.policy)
        if review is None or review.held:
            return draft
        items = list(draft.action_items)
        owner_of = items[0]
        items.append(
            ActionItemDraft(
                title="Name a communications lead who posts status updates on schedule",
                owner=owner_of.owner,
                team=owner_of.team,
                due=today + timedelta(days=14),
                priority="P2",
                acceptance_criterion={
                    "description": "The incident runbook names 1 communications lead who posts "
                    "a status update every 30 minutes"
                },
                communication=True,
            )
        )
        return draft.model_copy(update={"action_items": items})

    def _factors(self, incident: Incident) -> list[ContributingFactor]:
        chosen = self.scenario.factors
        if len(chosen) > 1 and self.rng.random() < 0.3:
            chosen = chosen[:1]
        return [
            ContributingFactor(
                description=self._text(text, incident.services),
                tags=[t for t in tags if not self.policy.unknown_tags([t])],
            )
            for text, tags in chosen
        ]

    def _action_items(self, pm: Postmortem, today: date) -> list[ActionItemDraft]:
        rng, policy = self.rng, self.policy
        services = pm.incident.services
        templates = list(self.scenario.items) + rng.sample(GENERIC_ITEMS, len(GENERIC_ITEMS))
        low, high = ITEMS_PER_DRAFT.get(pm.severity, (3, 6))
        count = min(rng.randint(low, high), len(templates))
        weights = PRIORITY_WEIGHTS.get(pm.severity, (5, 25, 45, 25))
        drafted = []
        for title, criterion in templates[:count]:
            team = pm.team if pm.team and rng.random() < 0.6 else rng.choice(sorted(policy.teams))
            owner = rng.choice(sorted(policy.teams[team].members))
            priority = rng.choices(list(Priority), weights=weights)[0]
            low_days, high_days = DUE_DAYS[priority]
            manager = policy.teams[team].manager
            verifier = manager if manager != owner and rng.random() < 0.3 else None
            drafted.append(
                ActionItemDraft(
                    title=self._text(title, services),
                    owner=owner,
                    team=team,
                    due=today + timedelta(days=rng.randint(low_days, high_days)),
                    priority=priority.value,
                    acceptance_criterion={
                        "description": self._text(criterion, services),
                        **({"verifier": verifier} if verifier else {}),
                    },
                )
            )
        return drafted

    # --- the SLO review --------------------------------------------------------------------

    def _slos(self, incident: Incident) -> list[Slo]:
        return [s for s in seeded_slos(self.policy) if s.service in incident.services]

    def _slo_estimate(self, incident: Incident) -> SloImpactEstimate | None:
        if not self._slos(incident):
            return None
        stated = self.rng.random() < 0.5
        return SloImpactEstimate(
            fraction_affected=self.percent / 100,
            traffic_weight=round(self.rng.uniform(0.6, 1.6), 2),
            budget_remaining_before=round(self.rng.uniform(0.5, 1.0), 2) if stated else None,
        )

    def _slo_review(self, pm: Postmortem, draft: Draft) -> SloReview:
        """The review the workflow runs at submission, with no Prometheus: estimated."""
        slos = self._slos(pm.incident)
        question = slo_question(pm.id, pm.incident, draft)
        if not slos or question is None:
            return SloReview()
        evidence = [
            SloEvidence(slo=slo, problem="no Prometheus to ask (set FOLLOWTHROUGH_PROMETHEUS_URL)")
            for slo in slos
        ]
        return review_slos(draft, pm.incident, self.policy, question, evidence)

    def _meet_slo_duties(self, draft: Draft, review: SloReview, today: date) -> Draft:
        """What an author adds when the SLO review sends the draft back."""
        items = list(draft.action_items)
        for assessment in review.assessments:
            slo = assessment.slo
            if assessment.has("postmortem_required") and not any(
                a.priority == Priority.P0 for a in items
            ):
                items[0] = items[0].model_copy(
                    update={"priority": "P0", "due": today + timedelta(days=10)}
                )
            if assessment.has("late_detection", "missed_detection", "no_slo_alert"):
                items.append(
                    self._slo_item(
                        items,
                        f"Page on the {slo.id} burn rate",
                        f"The {alert_name(slo, 'page')} alert is loaded in Prometheus and fired "
                        "in 1 staging test",
                        SloChange(slo=slo.id, change="alerting"),
                        today,
                    )
                )
            if assessment.has("sli_misses_user_pain"):
                items.append(
                    self._slo_item(
                        items,
                        f"Review the {slo.id} SLI against user-facing errors",
                        "The SLI counts 100% of the 5xx answers users saw in this incident",
                        SloChange(slo=slo.id, change="sli"),
                        today,
                    )
                )
        return draft.model_copy(update={"action_items": items})

    def _slo_item(
        self,
        items: list[ActionItemDraft],
        title: str,
        criterion: str,
        change: SloChange,
        today: date,
    ) -> ActionItemDraft:
        owner_of = items[0]
        return ActionItemDraft(
            title=title,
            owner=owner_of.owner,
            team=owner_of.team,
            due=today + timedelta(days=self.rng.randint(10, 30)),
            priority="P1",
            acceptance_criterion={"description": criterion},
            slo_change=change,
        )


@dataclass(frozen=True)
class _Mark:
    """Where an item's life stood, to play it again from there."""

    item: ActionItem
    events: int
    rng: tuple[Any, ...]
    sent: int
    started: datetime


class _ItemLife:
    """One action item from its opening to `now`: people act at drawn moments, in order, and
    every escalation step whose time comes while it is open fires first, as its workflow does."""

    def __init__(self, history: _History, item: ActionItem) -> None:
        self.history = history
        self.rng = history.rng
        self.policy = history.policy
        self.calendar = history.calendar
        self.now = history.now
        self.item = item
        self.events: list[AuditEvent] = []
        self.started = item.opened_at  # when its clock started (after a wait in line)

    def run(self) -> None:
        self._take(steps.record_item_opening(self.item, self.item.opened_at))
        self._tell(handoffs.assigned_notice(self.item, self.policy, self.item.opened_at))
        if self.rng.random() < 0.45:
            self._ticket()
        slots = self.history.slots.get(self.item.team)
        if slots is None:
            self._work()
        else:
            self._work_in_a_slot(slots)

    def _work(self) -> None:
        """What its owner and the others do from the moment its clock starts."""
        rng = self.rng
        if rng.random() < 0.7:
            self._act_at(self.started + timedelta(hours=rng.uniform(1, 48)), self._acknowledge)
        if rng.random() < 0.1:
            self._extend()
        fate = rng.random()
        if fate < 0.03:  # never done: overdue and escalated until now
            if self.item.team in self.history.slots:
                # ... but not for good while it holds one of its team's few WIP slots: the
                # council accepts the risk once the ladder has been climbed for months.
                self._act_at(self._due_at() + timedelta(days=rng.uniform(45, 150)), self._accept)
            self._escalate_until(self.now)
        elif fate < 0.08:  # the council accepts the risk some time after it fell due
            self._act_at(self._due_at() + timedelta(days=rng.uniform(3, 40)), self._accept)
            self._escalate_until(self.now)
        else:
            self._done(rejected_once=rng.random() < 0.08)

    def _work_in_a_slot(self, slots: _Slots) -> None:
        """Work at once if a slot is free for as long as the work holds it; otherwise wait in
        line until one is (the work is played again from its admission: the same draws, later)."""
        queued_at = begin = self._last()
        mark = self._mark()
        while True:
            self._work()
            end = self._slot_freed_at()
            full = slots.full_hour(begin, end)
            if full is None:
                slots.hold(begin, end)
                if begin != queued_at:
                    slots.waiting.append((queued_at, begin))
                return
            self._back_to(mark)
            cap, place = slots.cap, slots.place_in_line(queued_at)
            self._take(steps.queue(self.item, cap, place, queued_at))
            self._tell(steps.queued_notice(self.item, self.policy, cap, place, queued_at))
            admitted = slots.free_after(full)
            if admitted is None or admitted > self.now:
                slots.waiting.append((queued_at, None))
                return  # still waiting in line
            self._take(steps.admit(self.item, self.calendar, queued_at, admitted))
            self.started = begin = admitted

    def _slot_freed_at(self) -> datetime | None:
        """When the item gives its slot back (verified or its risk accepted); None: not by now."""
        item = self.item
        if item.verified_at is not None:
            return item.verified_at
        return item.risk_acceptance.at if item.risk_acceptance is not None else None

    def _mark(self) -> _Mark:
        sent = len(self.history.sent)
        return _Mark(self.item, len(self.events), self.rng.getstate(), sent, self.started)

    def _back_to(self, mark: _Mark) -> None:
        """Undo what was played since `mark`: its steps, its notices and its draws."""
        self.item, self.started = mark.item, mark.started
        del self.events[mark.events :]
        del self.history.sent[mark.sent :]
        self.rng.setstate(mark.rng)

    def _take(self, step: steps.Step[ActionItem]) -> None:
        """One step of the item's process, as its workflow takes it."""
        self.item = step.state
        self.events.append(step.event)

    def _tell(self, notice: Notice | None) -> None:
        self.history.tell(notice, self.item)

    def _done(self, rejected_once: bool) -> None:
        """Claimed done (most a little before the due date, a third late), then verified."""
        rng = self.rng
        span = max(self._due_at() - self.started, timedelta(days=1))
        claimed = self.started + span * rng.lognormvariate(math.log(0.8), 0.45)
        if not self._act_at(claimed, self._claim):
            return
        if rejected_once:
            if not self._act_at(self._last() + timedelta(hours=rng.uniform(2, 96)), self._reject):
                return
            if not self._act_at(self._last() + timedelta(days=rng.uniform(1, 10)), self._claim):
                return
        self._act_at(self._last() + timedelta(hours=rng.uniform(2, 96)), self._verify)

    # --- time ------------------------------------------------------------------------------

    def _last(self) -> datetime:
        return self.events[-1].at

    def _due_at(self) -> datetime:
        return self.calendar.start_of(self.calendar.add_business_days(self.item.due, 0))

    def _reached(self, at: datetime) -> bool:
        """Fire the steps due before `at`; whether `at` has come by now."""
        self._escalate_until(min(at, self.now))
        return at <= self.now

    def _act_at(self, at: datetime, act: Callable[[datetime], None]) -> bool:
        """Act at `at` (never before the last thing recorded); False when it is still to come."""
        at = max(at, self._last() + timedelta(minutes=1))
        if not self._reached(at):
            return False
        act(at)
        return True

    def _escalate_until(self, until: datetime) -> None:
        if self.item.state is not ActionItemState.OPEN:
            return  # a done claim pauses the ladder; a queued item's clock has not started
        item = self.item
        fired = {e.step for e in item.escalations if e.plan == item.plan}
        ladder = self.policy.escalation.ladder(item.spec.priority.value)
        for step in plan_ladder(item.due, ladder, self.calendar):
            if step.name in fired:
                continue
            # A step whose time passed while the ladder waited (a done claim) fires at once.
            at = max(step.at, self._last())
            if at >= until:
                return
            self._take(steps.escalate(self.item, self.policy, step, at))
            self._tell(steps.escalation_notice(self.item, self.policy, step, at))

    # --- what happens to it ----------------------------------------------------------------

    def _ticket(self) -> None:
        item = self.item
        key = f"{item.team[:3].upper()}-{1000 + self.history.index * 20 + item.spec.number}"
        ticket = TicketRef(key=key, url=f"https://jira.example.com/browse/{key}")
        self._take(steps.ticket_opened(item, ticket, item.opened_at + timedelta(seconds=5)))

    def _acknowledge(self, at: datetime) -> None:
        ack = Acknowledgement(by=self.item.owner)
        _allowed(acknowledgement_refusal(self.item, ack))
        self._take(steps.acknowledge(self.item, ack, at))

    def _extend(self) -> None:
        """More time, asked a few days before the due date; the manager (or council) agrees."""
        item, rng = self.item, self.rng
        asked = self._due_at() - timedelta(days=rng.uniform(1, 4))
        if asked <= self._last() or not self._reached(asked):
            return
        item = self.item
        until = item.due + timedelta(days=rng.randint(7, 30))
        request = ExtensionRequest(by=item.owner, until=until, reason=rng.choice(EXTENSION_REASONS))
        _allowed(extension_request_refusal(item, request, self.policy))
        self._take(steps.request_extension(item, request, asked))
        self._tell(handoffs.extension_requested_notice(self.item, self.policy, request, asked))
        decided = asked + timedelta(hours=rng.uniform(2, 40))
        if not self._reached(decided):
            return  # still waiting for a decision
        manager = self.policy.manager_of_team(self.item.team)
        by = manager if manager != self.item.owner else self.policy.council[0]
        decision = ExtensionDecision(by=by, approve=True)
        _allowed(extension_decision_refusal(self.item, decision, self.policy))
        number = len(self.item.extensions)  # the pending one is the newest
        self._take(steps.decide_extension(self.item, decision, decided))
        self._tell(
            steps.extension_decided_notice(
                self.item, self.policy, decision, number, request.until, decided
            )
        )

    def _claim(self, at: datetime) -> None:
        item = self.item
        services = self.history.services or ["platform"]
        change = 100 + self.history.index * 16 + len(item.claims) * 8 + item.spec.number
        evidence = f"https://git.example.com/{item.team}/{services[0]}/-/merge_requests/{change}"
        claim = DoneClaim(by=item.owner, evidence=evidence)
        _allowed(claim_refusal(item, claim))
        self._take(steps.claim_done(item, claim, at))
        self._tell(handoffs.done_claimed_notice(self.item, self.policy, claim, at))

    def _verifier(self) -> str:
        item, policy = self.item, self.policy
        criterion = item.spec.acceptance_criterion
        if isinstance(criterion, Manual) and criterion.verifier is not None:
            return criterion.verifier
        manager = policy.manager_of_team(item.team)
        if manager != item.owner:
            return manager
        return self.rng.choice(sorted(p for p in policy.reviewers if p != item.owner))

    def _verify(self, at: datetime) -> None:
        verification = Verification(by=self._verifier(), note=self.rng.choice(VERIFY_NOTES))
        _allowed(verifier_refusal(self.item, verification.by, self.policy))
        self._take(steps.verify(self.item, verification, at))
        self._tell(handoffs.verified_notice(self.item, self.policy, at))

    def _reject(self, at: datetime) -> None:
        rejection = Rejection(by=self._verifier(), reason=self.rng.choice(REJECT_REASONS))
        _allowed(rejection_refusal(self.item, rejection, self.policy))
        self._take(steps.reject(self.item, rejection, at))
        self._tell(handoffs.rejected_notice(self.item, self.policy, rejection, at))

    def _accept(self, at: datetime) -> None:
        request = RiskAcceptanceRequest(
            by=self.rng.choice(sorted(self.policy.council)), reason=self.rng.choice(RISK_REASONS)
        )
        _allowed(risk_acceptance_refusal(self.item, request, self.policy))
        self._take(steps.accept_risk(self.item, request, at))
        self._tell(steps.risk_accepted_notice(self.item, self.policy, request, at))


def _sent(message: OutboxMessage) -> OutboxMessage:
    """As the outbox holds a message sent when it was made."""
    return message.model_copy(update={"status": OutboxStatus.SENT, "sent_at": message.created_at})


def _weighted(rng: random.Random, weights: dict[T, int]) -> T:
    choices = list(weights)
    return rng.choices(choices, weights=[weights[c] for c in choices])[0]


# --- writing it --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedSummary:
    postmortems: int  # asked for
    written: int  # postmortems this run recorded
    skipped: int  # already recorded
    action_items: int  # recorded by this run
    audit_events: int  # new audit events
    seconds: float
    # Per capped team, of all the seeded items: (waiting in line at now, items, its WIP cap).
    waiting: dict[str, tuple[int, int, int]]

    def line(self) -> str:
        return (
            f"{self.written} postmortems, {self.action_items} action items and "
            f"{self.audit_events} audit events seeded in {self.seconds:.1f} s"
            + (f"; {self.skipped} postmortems were there already" if self.skipped else "")
        )

    def lines_in_line(self) -> list[str]:
        """Teams whose WIP cap leaves most of their seeded items waiting: the history is larger
        than the policy lets them work, which the demo should say rather than hide."""
        return [
            f"{team}: {waiting} of {items} seeded action items wait in line at its WIP cap of "
            f"{cap}; raise teams.{team}.wip_cap in the policy to about "
            f"{flowing_cap(self.postmortems)} to see that work flow"
            for team, (waiting, items, cap) in sorted(self.waiting.items())
            if waiting * 2 > items
        ]


def seed(
    store: Store,
    policy: Policy,
    *,
    postmortems: int,
    now: datetime,
    seed: int = 7,
    progress: Progress | None = None,
) -> SeedSummary:
    """Record seeded postmortems 0 .. postmortems-1 (those not recorded yet) as of `now`. Those
    recorded already are played again (their items hold WIP slots), not written."""
    if postmortems < 0:
        raise ValueError(f"postmortems must be 0 or more, not {postmortems}")
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime (with a time zone)")
    began = time.perf_counter()
    known = {slo.id for slo in store.slos.all()}
    missing = [slo for slo in seeded_slos(policy) if slo.id not in known]
    if missing:
        store.slos.save(missing, now)
    recorded = store.records.postmortem_ids(ID_PREFIX)
    written = items = events = 0
    capped = {name: t.wip_cap for name, t in policy.teams.items() if t.wip_cap is not None}
    waiting: Counter[str] = Counter()
    seeded: Counter[str] = Counter()
    if progress is not None:
        progress(0, postmortems)
    # Counting is idempotent: a postmortem recorded already gets back the themes it reached.
    played_all = seeded_incidents(policy, now, seed, store.themes.note_factor_tags)
    history = itertools.islice(played_all, postmortems)
    for first in range(0, postmortems, BATCH):
        played = list(itertools.islice(history, BATCH))
        for item in (item for one in played for item in one.items):
            seeded[item.team] += 1
            waiting[item.team] += item.state is ActionItemState.QUEUED
        batch = [one for one in played if one.postmortem.id not in recorded]
        events += store.records.record_many(
            [change for one in batch for change in one.changes],
            [message for one in batch for message in one.outbox],
        )
        themes = [
            _sent(outbox_message(n, n.postmortem_id, theme_email(store.records, policy, n, LINKS)))
            for one in batch
            for n in one.theme_notices
        ]
        store.records.record_many([], themes)
        written += len(batch)
        items += sum(len(one.items) for one in batch)
        if progress is not None:
            progress(first + len(played), postmortems)
    return SeedSummary(
        postmortems=postmortems,
        written=written,
        skipped=postmortems - written,
        action_items=items,
        audit_events=events,
        seconds=time.perf_counter() - began,
        waiting={team: (waiting[team], seeded[team], cap) for team, cap in capped.items()},
    )
