"""ActionItemWorkflow: one follow-up, from approval until it is verified or its risk accepted.

"Done" is a claim: the owner claims it with evidence, and someone who is not the owner verifies it
against the acceptance criterion or rejects it, which reopens the item. Meanwhile the item's due
date drives its escalation ladder on durable timers: a reminder to the owner, a due notice, the
owner's manager, then the reliability council, each step once and at its business-day time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Optional, cast

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import (
        COMMENT_TICKET,
        OPEN_TICKET,
        RECORD_ACTION_ITEM,
        RELEASE_SLOT,
        REQUEST_SLOT,
        RUN_CHECK,
        UPDATE_TICKET_DUE,
    )
    from followthrough.domain.checks import CheckAttempt, CheckRequest, CheckResult
    from followthrough.domain.criteria import TicketResolved
    from followthrough.domain.escalation import PlannedStep, days_overdue, plan_ladder
    from followthrough.domain.limits import DONE_CLAIMS_PER_ITEM
    from followthrough.domain.notice import ItemFacts, Notice, NoticeKind, Recipient
    from followthrough.domain.postmortem import (
        SYSTEM_ACTOR,
        Acknowledgement,
        ActionItem,
        ActionItemChange,
        ActionItemStart,
        ActionItemState,
        Claim,
        Decision,
        DoneClaim,
        EscalationSent,
        Extension,
        ExtensionDecision,
        ExtensionRequest,
        Reassignment,
        Rejection,
        RiskAcceptance,
        RiskAcceptanceRequest,
        SlotRelease,
        SlotRequest,
        Verification,
        acknowledgement_refusal,
        claim_refusal,
        extension_decision_refusal,
        extension_request_refusal,
        open_action_item,
        reassignment_refusal,
        rejection_refusal,
        risk_acceptance_refusal,
        room_refusal,
        verifier_refusal,
    )
    from followthrough.domain.tickets import (
        TicketComment,
        TicketDone,
        TicketDue,
        TicketEscalation,
        TicketRef,
        TicketRequest,
    )
    from workflows import (
        ACTION_ITEM_STATE,
        ITEM_RESOLVED,
        OWNING_TEAM,
        TICKET_DONE,
        TICKET_RETRY,
        InFlight,
        audit_event,
        judge_when_opened,
        reached,
        record,
        refuse,
        send_notice,
    )
    from workflows.team_slots import ADMITTED, QUEUED


# A check calls out with its own timeout (at most 60 s); a broken checker gets a few tries.
CHECK_TIMEOUT = timedelta(seconds=120)
CHECK_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(minutes=1))
# Asking the team's slots workflow for a slot: about half an hour of tries (Temporal restarting),
# then the item starts without one rather than wait forever.
SLOT_RETRY = RetryPolicy(maximum_attempts=30, maximum_interval=timedelta(minutes=1))
# A ticket is a handful of Jira requests of at most 30 s each (search, create, search, link).
TICKET_TIMEOUT = timedelta(minutes=5)
TRACKER_ACTOR = "jira"  # who claims an item done when its ticket moves to done
# A fix that regressed is due again this many business days after its failed re-check.
REGRESSION_DAYS = 10


@workflow.defn
class ActionItemWorkflow:
    @workflow.init
    def __init__(self, start: ActionItemStart) -> None:
        self.policy = start.policy
        self.item: ActionItem = open_action_item(start, workflow.now())
        self.opened = False  # set once the opening is recorded; people's actions wait for it
        self.admitted = False  # holds a WIP slot (or the team has no cap)
        self.place_in_line: int | None = None
        self.in_flight = InFlight()  # notices and ticket updates, in the background
        self.postmortem_told = False  # the parent learns of the resolution once
        self.postmortem_title = start.postmortem_title

    @workflow.run
    async def run(self, start: ActionItemStart) -> ActionItem:
        item = self.item
        workflow.upsert_search_attributes(
            [ACTION_ITEM_STATE.value_set(item.state.value), OWNING_TEAM.value_set(item.team)]
        )
        spec = item.spec
        await self._record(
            SYSTEM_ACTOR,
            "item.opened",
            f"{spec.priority} '{spec.title}' owned by {item.owner} ({item.team}), due "
            f"{item.due.isoformat()}; accepted when: {spec.acceptance_criterion.summary()}",
        )
        self.opened = True
        self.in_flight.start(self._open_ticket())
        cap = self._wip_cap()
        if cap is not None:
            await self._take_a_slot(cap)
        await self._follow_the_ladder()
        if cap is not None:
            try:
                await workflow.execute_activity(
                    RELEASE_SLOT,
                    SlotRelease(team=start.spec.team, cap=cap, item_id=item.id),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=SLOT_RETRY,
                )
            except ActivityError as err:  # the item is resolved either way; the team's record
                workflow.logger.error("slot of %s not released: %s", item.id, err.cause)
        await self._tell_the_postmortem()
        while await self._still_effective_is_due():
            if await self._recheck():
                break
            await self._follow_the_ladder()  # regressed: open again until fixed and verified
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self.in_flight.all_done()
        return self.item

    # --- the team's WIP cap ---------------------------------------------------------------------

    def _wip_cap(self) -> int | None:
        return self.policy.teams[self.item.spec.team].wip_cap

    async def _take_a_slot(self, cap: int) -> None:
        """Hold one of the team's WIP slots; beyond the cap, wait with the clock stopped."""
        item = self.item
        try:
            await workflow.execute_activity(
                REQUEST_SLOT,
                SlotRequest(
                    team=item.spec.team,
                    cap=cap,
                    item_id=item.id,
                    priority=item.spec.priority.value,
                    requested_at=workflow.now(),
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=SLOT_RETRY,
            )
        except ActivityError as err:  # better over the cap than never started
            await self._record(
                SYSTEM_ACTOR, "item.slot_unavailable", f"started without a WIP slot: {err.cause}"
            )
            return
        await workflow.wait_condition(lambda: self.admitted or self.place_in_line is not None)
        if self.admitted:
            return
        queued_at = workflow.now()
        await self._transition(
            ActionItemState.QUEUED,
            SYSTEM_ACTOR,
            "item.queued",
            f"team {item.spec.team} is at its WIP cap of {cap}; number {self.place_in_line} "
            "in line, clock stopped",
        )
        self._notify(
            NoticeKind.WIP_QUEUED,
            self._recipients("manager"),
            "queued",
            ItemFacts(team=item.spec.team, wip_cap=cap, place_in_line=self.place_in_line),
        )
        await workflow.wait_condition(lambda: self.admitted or item.resolved)
        if item.resolved:
            return
        calendar = self.policy.calendar
        waited = calendar.business_days_between(
            calendar.local_date(queued_at), calendar.local_date(workflow.now())
        )
        if waited > 0:  # the clock did not run while queued
            item.due = calendar.add_business_days(item.due, waited)
        await self._transition(
            ActionItemState.OPEN,
            SYSTEM_ACTOR,
            "item.admitted",
            f"a WIP slot freed up after {waited} business days; due {item.due.isoformat()}",
        )

    @workflow.signal(name=ADMITTED)
    def slot_admitted(self) -> None:
        self.admitted = True

    @workflow.signal(name=QUEUED)
    def slot_queued(self, position: int) -> None:
        self.place_in_line = position

    # --- the escalation ladder ----------------------------------------------------------------

    async def _follow_the_ladder(self) -> None:
        """Fire each step of the current plan once, at its time, until the item is resolved.

        A done claim pauses the ladder (the verifier has the ball); an approved extension starts a
        new plan for the new due date.
        """
        item = self.item
        while not item.resolved:
            if item.state is ActionItemState.DONE_CLAIMED:
                if item.spec.acceptance_criterion.automated:
                    await self._verify_by_check()
                else:  # a person verifies or rejects
                    await workflow.wait_condition(
                        lambda: item.state is not ActionItemState.DONE_CLAIMED
                    )
                continue
            step = self._next_step()
            plan = item.plan

            def changed(plan: int = plan) -> bool:
                return (
                    item.resolved
                    or item.plan != plan
                    or (item.state is ActionItemState.DONE_CLAIMED)
                )

            if step is None:  # the ladder is climbed: only resolution or a new plan moves on
                await workflow.wait_condition(changed)
                continue
            if await reached(step.at, changed):  # else something changed first: look again
                await self._escalate(step)

    # --- verification by check --------------------------------------------------------------------

    async def _verify_by_check(self) -> None:
        """Run the criterion's check (N times, spaced over M hours if it asks): all pass, the item
        is verified; the first failure reopens it and tells the owner what failed."""
        item = self.item
        criterion = item.spec.acceptance_criterion
        claim = len(item.claims)
        needed = criterion.passes_required
        claimed_done = ActionItemState.DONE_CLAIMED
        for number in range(1, needed + 1):
            if number > 1:
                next_check = workflow.now() + criterion.spacing
                if not await reached(next_check, lambda: item.state is not claimed_done):
                    return  # resolved some other way meanwhile (the council accepted the risk)
            result = await self._check(claim, "verification")
            if not result.passed:
                await self._reopen(result, number, needed)
                return
        now = workflow.now()
        item.decisions.append(Decision(by=SYSTEM_ACTOR, verified=True, note=result.reason, at=now))
        item.verified_at = now
        passes = f" ({needed} of {needed} passes)" if needed > 1 else ""
        await self._transition(
            ActionItemState.VERIFIED,
            SYSTEM_ACTOR,
            "item.verified",
            f"{criterion.kind} check passed{passes}: {result.reason}",
        )

    async def _check(self, round: int, purpose: str) -> CheckResult:
        """One attempt, recorded with its evidence whatever the outcome."""
        item = self.item
        criterion = item.spec.acceptance_criterion
        if isinstance(criterion, TicketResolved) and criterion.ticket is None and item.ticket:
            criterion = criterion.model_copy(update={"ticket": item.ticket.key})  # its own ticket
        attempt = len(item.checks) + 1
        try:
            result: CheckResult = await workflow.execute_activity(
                RUN_CHECK,
                CheckRequest(action_item_id=item.id, attempt=attempt, criterion=criterion),
                result_type=CheckResult,
                start_to_close_timeout=CHECK_TIMEOUT,
                retry_policy=CHECK_RETRY,
            )
        except ActivityError as err:  # the checker itself broke: a failed attempt, not a crash
            result = CheckResult(
                passed=False,
                at=workflow.now(),
                asked=criterion.what(),
                answer="",
                reason=f"the check could not run: {err.cause or err}",
            )
        item.checks.append(
            CheckAttempt(attempt=attempt, round=round, purpose=purpose, result=result)
        )
        verdict = "passed" if result.passed else "failed"
        await self._record(
            SYSTEM_ACTOR, f"item.check_{verdict}", f"{result.asked}: {result.reason}"
        )
        return result

    async def _reopen(
        self, result: CheckResult, number: int | None = None, needed: int | None = None
    ) -> None:
        """Check `number` of `needed` failed; without them, the re-check after verification."""
        item = self.item
        why = (
            f"check {number} of {needed} failed"
            if number
            else "the re-check after verification failed"
        )
        item.decisions.append(
            Decision(by=SYSTEM_ACTOR, verified=False, note=result.reason, at=workflow.now())
        )
        await self._transition(
            ActionItemState.OPEN, SYSTEM_ACTOR, "item.reopened", f"{why}: {result.reason}"
        )
        self._notify(
            NoticeKind.CHECK_FAILED,
            self._recipients("owner"),
            f"check-{len(item.checks)}/failed",
            ItemFacts(check=result, check_number=number, checks_required=needed),
        )

    # --- after verification: tell the postmortem, and re-check if the criterion asks ---------

    async def _tell_the_postmortem(self) -> None:
        parent = workflow.info().parent
        if parent is None or self.postmortem_told:
            return
        self.postmortem_told = True
        handle = workflow.get_external_workflow_handle(parent.workflow_id)
        await handle.signal(ITEM_RESOLVED, self.item)

    async def _still_effective_is_due(self) -> bool:
        """Wait out the re-check delay; False when there is nothing to re-check."""
        item = self.item
        days = item.spec.acceptance_criterion.recheck_after_days
        if days is None or item.state is not ActionItemState.VERIFIED or item.verified_at is None:
            return False
        await workflow.sleep(item.verified_at + timedelta(days=days) - workflow.now())
        return True

    async def _recheck(self) -> bool:
        """Still effective? If not, the item reopens with a new due date and the council hears."""
        item = self.item
        result = await self._check(len(item.claims), "recheck")
        if result.passed:
            return True
        calendar = self.policy.calendar
        item.due = calendar.add_business_days(calendar.local_date(workflow.now()), REGRESSION_DAYS)
        item.plan += 1
        item.verified_at = None
        await self._reopen(result)
        self._notify(
            NoticeKind.REGRESSED,
            self._recipients("council"),
            f"check-{len(item.checks)}/regressed",
            ItemFacts(check=result, owner=item.owner),
        )
        return False

    def _next_step(self) -> PlannedStep | None:
        item = self.item
        fired = {e.step for e in item.escalations if e.plan == item.plan}
        ladder = self.policy.escalation.ladder(item.spec.priority.value)
        planned = plan_ladder(item.due, ladder, self.policy.calendar)
        return next((step for step in planned if step.name not in fired), None)

    async def _escalate(self, step: PlannedStep) -> None:
        item = self.item
        now = workflow.now()
        overdue = days_overdue(item.due, self.policy.calendar.local_date(now), self.policy.calendar)
        to = self._recipients(step.notify)
        item.escalations.append(
            EscalationSent(
                step=step.name, notify=step.notify, plan=item.plan, at=now, days_overdue=overdue
            )
        )
        await self._record(
            SYSTEM_ACTOR,
            "item.escalated",
            f"{step.name}: told {', '.join(r.name for r in to)} ({step.notify}); "
            + (f"{overdue} business days overdue" if overdue else f"due {item.due.isoformat()}"),
        )
        self._notify(
            NoticeKind.ITEM_STEP,
            to,
            f"{step.name}/plan-{item.plan}",
            step=step.name,
            notify=step.notify,
            days_overdue=overdue,
        )
        escalation = TicketEscalation(
            step=step.name, told=[r.name for r in to], due=item.due, days_overdue=overdue
        )
        self._comment_on_ticket(f"{step.name}/plan-{item.plan}", escalation)

    # --- the item's ticket (Jira; nothing when the built-in tracker is used) -------------------

    async def _open_ticket(self) -> None:
        """Create the item's ticket, or find the one a retried create already made."""
        item, spec = self.item, self.item.spec
        request = TicketRequest(
            action_item_id=item.id,
            postmortem_id=item.postmortem_id,
            postmortem_title=self.postmortem_title,
            summary=spec.title,
            details=spec.description,
            accepted_when=spec.acceptance_criterion.summary(),
            proposed_change=spec.proposed_change,
            priority=spec.priority.value,
            due=item.due,
            owner=item.owner,
            owner_email=self.policy.email_of(item.owner),
        )
        try:
            ticket = await workflow.execute_activity(
                OPEN_TICKET,
                request,
                # None when no Jira is configured; the pydantic converter decodes the Optional.
                result_type=cast(type, Optional[TicketRef]),  # noqa: UP045
                start_to_close_timeout=TICKET_TIMEOUT,
                retry_policy=TICKET_RETRY,
            )
        except ActivityError as err:  # Jira refused for good: bad credentials, no such project
            item.ticket_problem = str(err.cause or err)
            await self._record(SYSTEM_ACTOR, "item.ticket_refused", item.ticket_problem)
            return
        if ticket is None:
            return  # no Jira configured: the built-in tracker
        item.ticket = ticket
        await self._record(SYSTEM_ACTOR, "item.ticket_opened", f"{ticket.key} {ticket.url}")

    def _comment_on_ticket(self, key: str, escalation: TicketEscalation) -> None:
        if self.item.ticket is not None:
            comment = TicketComment(
                key=self.item.ticket.key, dedupe_key=f"{self.item.id}/{key}", escalation=escalation
            )
            self.in_flight.start(self._update_ticket(COMMENT_TICKET, comment))

    async def _update_ticket(self, activity: str, change: TicketComment | TicketDue) -> None:
        try:
            await workflow.execute_activity(
                activity, change, start_to_close_timeout=TICKET_TIMEOUT, retry_policy=TICKET_RETRY
            )
        except ActivityError as err:  # the email went out; a refused comment must not fail us
            workflow.logger.error("ticket %s not updated: %s", change.key, err.cause)

    @workflow.signal(name=TICKET_DONE)
    async def ticket_done(self, done: TicketDone) -> None:
        """The ticket reached a done status: a done claim, which starts verification (never
        skips it). Duplicates, and tickets moved while the item is not open, change nothing."""
        await workflow.wait_condition(lambda: self.opened)
        item = self.item
        if item.ticket is None or done.key != item.ticket.key:
            return
        if item.state is not ActionItemState.OPEN:
            return
        if len(item.claims) >= DONE_CLAIMS_PER_ITEM:  # as for people (room_refusal): the council
            return  # decides an item that keeps failing; its state must not grow without end
        moved = f"{done.key} moved to {done.status}" + (
            f" ({done.resolution})" if done.resolution else ""
        )
        evidence = moved + (f" by {done.by}" if done.by else "") + f", seen by {done.source}"
        item.claims.append(Claim(by=TRACKER_ACTOR, evidence=evidence, at=workflow.now()))
        await self._transition(
            ActionItemState.DONE_CLAIMED, TRACKER_ACTOR, "item.done_claimed", evidence
        )

    def _recipients(self, role: str) -> list[Recipient]:
        if role == "owner":
            names = [self.item.owner]
        elif role == "manager":
            names = [self.policy.manager_of_team(self.item.team)]
        else:
            names = list(self.policy.council)
        return [Recipient(name=n, email=self.policy.email_of(n)) for n in names]

    def _notify(
        self,
        kind: NoticeKind,
        to: list[Recipient],
        key: str,
        facts: ItemFacts | None = None,
        *,
        step: str | None = None,
        notify: str | None = None,
        days_overdue: int = 0,
    ) -> None:
        notice = Notice(
            dedupe_key=f"{self.item.id}/{key}",
            kind=kind,
            at=workflow.now(),
            to=to,
            postmortem_id=self.item.postmortem_id,
            action_item_id=self.item.id,
            step=step,
            notify=notify,
            due=self.item.due,
            days_overdue=days_overdue,
            facts=facts,
        )
        self.in_flight.start(send_notice(notice))

    # --- what people do -----------------------------------------------------------------------

    @workflow.update
    async def acknowledge(self, ack: Acknowledgement) -> ActionItem:
        """The owner has seen the item; escalations say so (the ladder itself keeps going)."""
        await judge_when_opened(lambda: self.opened, self._validate_acknowledge, ack)
        self.item.acknowledged_by, self.item.acknowledged_at = ack.by, workflow.now()
        await self._record(ack.by, "item.acknowledged", f"due {self.item.due.isoformat()}")
        return self.item

    @acknowledge.validator
    def _validate_acknowledge(self, ack: Acknowledgement) -> None:
        refuse(acknowledgement_refusal(self.item, ack))

    @workflow.update
    async def claim_done(self, claim: DoneClaim) -> ActionItem:
        await judge_when_opened(lambda: self.opened, self._validate_claim_done, claim)
        self.item.claims.append(Claim(by=claim.by, evidence=claim.evidence, at=workflow.now()))
        await self._transition(
            ActionItemState.DONE_CLAIMED, claim.by, "item.done_claimed", claim.evidence
        )
        return self.item

    @claim_done.validator
    def _validate_claim_done(self, claim: DoneClaim) -> None:
        refuse(claim_refusal(self.item, claim) or room_refusal(self.item, claim))

    @workflow.update
    async def verify(self, verification: Verification) -> ActionItem:
        await judge_when_opened(lambda: self.opened, self._validate_verify, verification)
        now = workflow.now()
        self.item.decisions.append(
            Decision(by=verification.by, verified=True, note=verification.note, at=now)
        )
        self.item.verified_at = now
        await self._transition(
            ActionItemState.VERIFIED, verification.by, "item.verified", verification.note
        )
        return self.item

    @verify.validator
    def _validate_verify(self, verification: Verification) -> None:
        refuse(verifier_refusal(self.item, verification.by, self.policy))

    @workflow.update
    async def reject(self, rejection: Rejection) -> ActionItem:
        await judge_when_opened(lambda: self.opened, self._validate_reject, rejection)
        self.item.decisions.append(
            Decision(by=rejection.by, verified=False, note=rejection.reason, at=workflow.now())
        )
        await self._transition(
            ActionItemState.OPEN, rejection.by, "item.reopened", rejection.reason
        )
        return self.item

    @reject.validator
    def _validate_reject(self, rejection: Rejection) -> None:
        refuse(
            rejection_refusal(self.item, rejection, self.policy)
            or room_refusal(self.item, rejection)
        )

    @workflow.update
    async def request_extension(self, request: ExtensionRequest) -> ActionItem:
        await judge_when_opened(lambda: self.opened, self._validate_request_extension, request)
        item = self.item
        item.extensions.append(
            Extension(
                requested_by=request.by,
                requested_at=workflow.now(),
                previous_due=item.due,
                until=request.until,
                reason=request.reason,
            )
        )
        number = len(item.extensions)
        detail = f"until {request.until.isoformat()}: {request.reason}"
        await self._record(request.by, "item.extension_requested", detail)
        self._notify(
            NoticeKind.EXTENSION_REQUESTED,
            self._recipients("manager"),
            f"extension-{number}/requested",
            ItemFacts(by=request.by, until=request.until, reason=request.reason),
        )
        return item

    @request_extension.validator
    def _validate_request_extension(self, request: ExtensionRequest) -> None:
        refuse(
            extension_request_refusal(self.item, request, self.policy)
            or room_refusal(self.item, request)
        )

    @workflow.update
    async def decide_extension(self, decision: ExtensionDecision) -> ActionItem:
        await judge_when_opened(lambda: self.opened, self._validate_decide_extension, decision)
        item = self.item
        extension = item.pending_extension
        assert extension is not None  # the validator just checked
        number = item.extensions.index(extension) + 1
        extension.approved = decision.approve
        extension.decided_by = decision.by
        extension.decided_at = workflow.now()
        extension.decision_reason = decision.reason
        verdict = "approved" if decision.approve else "denied"
        if decision.approve:
            item.due = extension.until
            item.plan += 1  # the ladder starts over for the new due date
            if item.ticket is not None:
                due = TicketDue(key=item.ticket.key, due=item.due)
                self.in_flight.start(self._update_ticket(UPDATE_TICKET_DUE, due))
        detail = f"{verdict}: due {item.due.isoformat()}" + (
            f"; {decision.reason}" if decision.reason else ""
        )
        await self._record(decision.by, f"item.extension_{verdict}", detail)
        self._notify(
            NoticeKind.EXTENSION_DECIDED,
            self._recipients("owner"),
            f"extension-{number}/{verdict}",
            ItemFacts(
                by=decision.by,
                approved=decision.approve,
                until=extension.until,
                reason=decision.reason,
            ),
            step=verdict,
        )
        return item

    @decide_extension.validator
    def _validate_decide_extension(self, decision: ExtensionDecision) -> None:
        refuse(
            extension_decision_refusal(self.item, decision, self.policy)
            or room_refusal(self.item, decision)
        )

    @workflow.update
    async def reassign(self, change: Reassignment) -> ActionItem:
        await judge_when_opened(lambda: self.opened, self._validate_reassign, change)
        item = self.item
        previous = item.owner
        item.previous_owners.append(previous)  # state only: no new command, histories replay
        item.owner, item.team = change.to, change.team or item.team
        item.acknowledged_by = item.acknowledged_at = None  # the new owner has not seen it yet
        workflow.upsert_search_attributes([OWNING_TEAM.value_set(item.team)])
        number = item.last_seq + 1  # the seq of the reassignment event below: unique per item
        await self._record(
            change.by,
            "item.reassigned",
            f"from {previous} to {item.owner} ({item.team})"
            + (f": {change.reason}" if change.reason else ""),
        )
        self._notify(
            NoticeKind.REASSIGNED,
            self._recipients("owner"),
            f"reassigned-{number}",
            ItemFacts(by=change.by, previous_owner=previous, reason=change.reason),
        )
        return item

    @reassign.validator
    def _validate_reassign(self, change: Reassignment) -> None:
        refuse(
            reassignment_refusal(self.item, change, self.policy) or room_refusal(self.item, change)
        )

    @workflow.update
    async def accept_risk(self, request: RiskAcceptanceRequest) -> ActionItem:
        await judge_when_opened(lambda: self.opened, self._validate_accept_risk, request)
        item = self.item
        item.risk_acceptance = RiskAcceptance(
            by=request.by, reason=request.reason, at=workflow.now()
        )
        await self._transition(
            ActionItemState.RISK_ACCEPTED, request.by, "item.risk_accepted", request.reason
        )
        self._notify(
            NoticeKind.RISK_ACCEPTED,
            self._recipients("owner") + self._recipients("manager"),
            "risk-accepted",
            ItemFacts(by=request.by, reason=request.reason),
        )
        return item

    @accept_risk.validator
    def _validate_accept_risk(self, request: RiskAcceptanceRequest) -> None:
        refuse(risk_acceptance_refusal(self.item, request, self.policy))

    @workflow.query
    def snapshot(self) -> ActionItem:
        return self.item

    # --- bookkeeping --------------------------------------------------------------------------

    async def _transition(
        self, state: ActionItemState, actor: str, action: str, detail: str
    ) -> None:
        self.item.state = state
        workflow.upsert_search_attributes([ACTION_ITEM_STATE.value_set(state.value)])
        await self._record(actor, action, detail)

    async def _record(self, actor: str, action: str, detail: str) -> None:
        item = self.item
        item.last_seq += 1
        event = audit_event(item.id, item.postmortem_id, item.last_seq, actor, action, detail)
        snapshot = item.model_copy(deep=True)
        await record(RECORD_ACTION_ITEM, ActionItemChange(item=snapshot, event=event))
