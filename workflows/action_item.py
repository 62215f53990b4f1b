"""ActionItemWorkflow: one follow-up, from approval until it is verified or its risk accepted.

"Done" is a claim: the owner claims it with evidence, and someone who is not the owner verifies it
against the acceptance criterion or rejects it, which reopens the item. Meanwhile the item's due
date drives its escalation ladder on durable timers: a reminder to the owner, a due notice, the
owner's manager, then the reliability council, each step once and at its business-day time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional, cast

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import (
        COMMENT_TICKET,
        ESCALATE_ITEM,
        IMPACT_FACTS,
        OPEN_TICKET,
        RECORD_ACTION_ITEM,
        RELEASE_SLOT,
        REQUEST_SLOT,
        RUN_CHECK,
        UPDATE_TICKET_DUE,
    )
    from followthrough.domain import handoffs, steps
    from followthrough.domain.checks import CheckAttempt, CheckRequest, CheckResult
    from followthrough.domain.criteria import TicketResolved
    from followthrough.domain.escalation import PlannedStep, plan_ladder
    from followthrough.domain.impact import (
        ImpactFacts,
        ImpactFactsRequest,
        ImpactScore,
        impact_score,
        priority_for,
    )
    from followthrough.domain.limits import DONE_CLAIMS_PER_ITEM
    from followthrough.domain.notice import Notice
    from followthrough.domain.postmortem import (
        Acknowledgement,
        ActionItem,
        ActionItemChange,
        ActionItemStart,
        ActionItemState,
        DoneClaim,
        ExtensionDecision,
        ExtensionRequest,
        ItemCarried,
        ItemEscalation,
        ItemStage,
        Reassignment,
        Rejection,
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
    from followthrough.domain.routing import ticket_route
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
        CONTINUE_AS_NEW_PATCH,
        ESCALATION_HEARTBEAT,
        ITEM_RESOLVED,
        NOTICE_RETRY,
        NOTICE_TIMEOUT,
        OWNING_TEAM,
        RECORD_TIMEOUT,
        TICKET_DONE,
        TICKET_RETRY,
        InFlight,
        history_is_long,
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
# A few tries: a ticket with the author's priority beats a ticket held up by the record.
IMPACT_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=30))
# A ladder step is recorded and its notice sent by one activity (escalate_item), in the
# background; histories from before ran the record, then send_notice.
ONE_ACTIVITY_ESCALATION_PATCH = "scale-escalation-one-activity"


@workflow.defn
class ActionItemWorkflow:
    @workflow.init
    def __init__(self, start: ActionItemStart) -> None:
        self.start = start
        self.policy = start.policy
        carried = start.carried
        self.item: ActionItem = (
            carried.item if carried is not None else open_action_item(start, workflow.now())
        )
        # set once the opening is recorded; people's actions wait for it
        self.opened = carried is not None
        self.admitted = False  # holds a WIP slot (or the team has no cap)
        self.place_in_line: int | None = None
        self.in_flight = InFlight()  # notices and ticket updates, in the background
        self.stage = carried.stage if carried is not None else ItemStage.LADDER
        # the parent learns of the resolution once (when the first climb ends)
        self.postmortem_told = self.stage is not ItemStage.LADDER
        self.parent = carried.parent if carried is not None else self._parent()
        self.postmortem_title = start.postmortem_title
        self.services = start.services
        self.continues = False  # continues as new when its history grows long (decided in run)

    @workflow.run
    async def run(self, start: ActionItemStart) -> ActionItem:
        self.continues = workflow.patched(CONTINUE_AS_NEW_PATCH)
        item = self.item
        workflow.upsert_search_attributes(
            [ACTION_ITEM_STATE.value_set(item.state.value), OWNING_TEAM.value_set(item.team)]
        )
        cap = self._wip_cap()
        if start.carried is None:  # a new item (a continued one was opened by its first run)
            await self._apply(steps.record_item_opening(item, workflow.now()))
            self.opened = True
            now = workflow.now()
            self.in_flight.hand_off(handoffs.assigned_notice(self.item, self.policy, now))
            self.in_flight.start(self._open_ticket())
            if cap is not None:
                await self._take_a_slot(cap)
        if self.stage is not ItemStage.RECHECK:
            await self._follow_the_ladder()  # the first climb, or again after a regression
        if self.stage is ItemStage.LADDER:
            if cap is not None:
                await self._release_the_slot(cap)
            await self._tell_the_postmortem()
        self.stage = ItemStage.RECHECK
        while await self._still_effective_is_due():
            if await self._recheck():
                break
            self.stage = ItemStage.REGRESSED
            await self._follow_the_ladder()  # regressed: open again until fixed and verified
            self.stage = ItemStage.RECHECK
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self.in_flight.all_done()
        return self.item

    # --- continuing as new, so that an item followed for years keeps a short history ---------

    def _ready_to_continue(self) -> bool:
        """Its history is long and nothing is left half done: no handler running, nothing in
        flight (a notice or ticket update is waited out, never dropped or sent twice)."""
        return (
            self.continues
            and history_is_long(self.start.continue_after_events)
            and self.in_flight.idle()
            and workflow.all_handlers_finished()
        )

    def _continue_as_new(self) -> None:  # it raises: the run ends here
        """The same item in a new run, resuming where this one is (same workflow id, so
        people's actions, queries and its postmortem's signal reach it there)."""
        carried = ItemCarried(item=self.item, stage=self.stage, parent=self.parent)
        workflow.logger.info("%s continues as new at %s", self.item.id, self.stage.value)
        workflow.continue_as_new(self.start.model_copy(update={"carried": carried}))

    @staticmethod
    def _parent() -> str | None:
        parent = workflow.info().parent
        return parent.workflow_id if parent is not None else None

    # --- the team's WIP cap ---------------------------------------------------------------------

    def _wip_cap(self) -> int | None:
        return self.policy.teams[self.item.spec.team].wip_cap

    async def _release_the_slot(self, cap: int) -> None:
        start = self.start
        try:
            await workflow.execute_activity(
                RELEASE_SLOT,
                SlotRelease(team=start.spec.team, cap=cap, item_id=start.item_id),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=SLOT_RETRY,
            )
        except ActivityError as err:  # the item is resolved either way; the team's record
            workflow.logger.error("slot of %s not released: %s", start.item_id, err.cause)

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
            await self._apply(steps.start_without_slot(self.item, str(err.cause), workflow.now()))
            return
        await workflow.wait_condition(lambda: self.admitted or self.place_in_line is not None)
        if self.admitted:
            return
        queued_at = workflow.now()
        await self._apply(steps.queue(self.item, cap, self.place_in_line, queued_at))
        self._send(
            steps.queued_notice(self.item, self.policy, cap, self.place_in_line, workflow.now())
        )
        await workflow.wait_condition(lambda: self.admitted or self.item.resolved)
        if self.item.resolved:
            return
        await self._apply(steps.admit(self.item, self.policy.calendar, queued_at, workflow.now()))

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
        while not self.item.resolved:
            if self._ready_to_continue():  # the top of the loop: nothing of a step half taken
                self._continue_as_new()
            if self.item.state is ActionItemState.DONE_CLAIMED:
                if self.item.spec.acceptance_criterion.automated:
                    await self._verify_by_check()
                else:  # a person verifies or rejects
                    await workflow.wait_condition(
                        lambda: (
                            self.item.state is not ActionItemState.DONE_CLAIMED
                            or self._ready_to_continue()
                        )
                    )
                continue
            step = self._next_step()
            plan = self.item.plan

            def changed(plan: int = plan) -> bool:
                item = self.item
                return (
                    item.resolved
                    or item.plan != plan
                    or (item.state is ActionItemState.DONE_CLAIMED)
                    or self._ready_to_continue()
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
        criterion = self.item.spec.acceptance_criterion
        claim = len(self.item.claims)
        needed = criterion.passes_required
        claimed_done = ActionItemState.DONE_CLAIMED
        # Passes of this claim a run before this one recorded (it continued as new between two
        # of them): a run that did not continue as new always starts at the first.
        passed = [c for c in self.item.checks if c.round == claim and c.purpose == "verification"]
        result = passed[-1].result if passed else None
        for number in range(len(passed) + 1, needed + 1):
            if number > 1:
                last = workflow.now() if number > len(passed) + 1 else passed[-1].result.at
                next_check = last + criterion.spacing

                def changed() -> bool:
                    return self.item.state is not claimed_done or self._ready_to_continue()

                if not await reached(next_check, changed):
                    if self._ready_to_continue():  # a long history: the new run goes on from here
                        self._continue_as_new()
                    return  # resolved some other way meanwhile (the council accepted the risk)
            result = await self._check(claim, "verification")
            if not result.passed:
                await self._reopen(result, number, needed)
                return
        assert result is not None  # a criterion asks for one pass at least
        await self._apply(steps.verify_by_check(self.item, result, needed, workflow.now()))
        self.in_flight.hand_off(handoffs.verified_notice(self.item, self.policy, workflow.now()))

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
        checked = CheckAttempt(attempt=attempt, round=round, purpose=purpose, result=result)
        await self._apply(steps.record_check(self.item, checked, workflow.now()))
        return result

    async def _reopen(self, result: CheckResult, number: int, needed: int) -> None:
        """Check `number` of `needed` failed: the item is open again and the owner hears."""
        why = f"check {number} of {needed} failed"
        await self._apply(steps.reopen(self.item, result, why, workflow.now()))
        self._send(
            steps.check_failed_notice(
                self.item, self.policy, result, workflow.now(), number, needed
            )
        )

    # --- after verification: tell the postmortem, and re-check if the criterion asks ---------

    async def _tell_the_postmortem(self) -> None:
        if self.parent is None or self.postmortem_told:
            return
        self.postmortem_told = True
        handle = workflow.get_external_workflow_handle(self.parent)
        await handle.signal(ITEM_RESOLVED, self.item)

    async def _still_effective_is_due(self) -> bool:
        """Wait out the re-check delay; False when there is nothing to re-check."""
        item = self.item
        days = item.spec.acceptance_criterion.recheck_after_days
        if days is None or item.state is not ActionItemState.VERIFIED or item.verified_at is None:
            return False
        at: datetime = item.verified_at + timedelta(days=days)
        if not self.continues:  # as histories from before waited
            await workflow.sleep(at - workflow.now())
        elif not await reached(at, self._ready_to_continue):
            self._continue_as_new()  # a long history: the new run waits out the rest
        return True

    async def _recheck(self) -> bool:
        """Still effective? If not, the item reopens with a new due date and the council hears."""
        result = await self._check(len(self.item.claims), "recheck")
        if result.passed:
            return True
        await self._apply(steps.regress(self.item, result, self.policy.calendar, workflow.now()))
        self._send(steps.check_failed_notice(self.item, self.policy, result, workflow.now()))
        self._send(steps.regressed_notice(self.item, self.policy, result, workflow.now()))
        return False

    def _next_step(self) -> PlannedStep | None:
        item = self.item
        fired = {e.step for e in item.escalations if e.plan == item.plan}
        ladder = self.policy.escalation.ladder(item.spec.priority.value)
        planned = plan_ladder(item.due, ladder, self.policy.calendar)
        return next((step for step in planned if step.name not in fired), None)

    async def _escalate(self, step: PlannedStep) -> None:
        taken = steps.escalate(self.item, self.policy, step, workflow.now())
        if workflow.patched(ONE_ACTIVITY_ESCALATION_PATCH):
            change = self._hold(taken)
            notice = steps.escalation_notice(self.item, self.policy, step, workflow.now())
            self.in_flight.start(self._escalate_in_background(change, notice))
        else:
            await self._apply(taken)
            notice = steps.escalation_notice(self.item, self.policy, step, workflow.now())
            self._send(notice)
        item = self.item
        escalation = TicketEscalation(
            step=step.name,
            told=[r.name for r in notice.to],
            due=item.due,
            days_overdue=notice.days_overdue,
        )
        self._comment_on_ticket(f"{step.name}/plan-{item.plan}", escalation)

    # --- the item's ticket (Jira; nothing when the built-in tracker is used) -------------------

    async def _impact(self) -> ImpactScore | None:
        """The item's impact score from its incident's recorded facts; None when they cannot be
        read (the ticket then takes the author's priority rather than wait)."""
        request = ImpactFactsRequest(
            postmortem_id=self.item.postmortem_id, window_days=self.policy.themes.window_days
        )
        try:
            facts = await workflow.execute_activity(
                IMPACT_FACTS,
                request,
                result_type=cast(type, Optional[ImpactFacts]),  # noqa: UP045
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=IMPACT_RETRY,
            )
        except ActivityError as err:
            workflow.logger.warning("impact of %s not read: %s", self.item.id, err.cause)
            return None
        if facts is None:
            return None
        with_class = facts.model_copy(update={"removes_class": self.item.spec.removes_class})
        return impact_score(with_class, self.policy.impact, self.policy.failure_classes)

    async def _open_ticket(self) -> None:
        """Create the item's ticket, or find the one a retried create already made, where its
        team (or service) plans: the route is decided here, once, from the item's policy."""
        item, spec = self.item, self.item.spec
        route = None
        if workflow.patched("route-tickets"):  # histories from before routing asked without one
            route = ticket_route(
                self.policy, item.team, self.services, spec.objective, spec.this_sprint
            )
        priority, author, impact = spec.priority.value, None, None
        if workflow.patched("impact-priority"):
            impact = await self._impact()
            if impact is not None:
                author, priority = priority, priority_for(impact.score, self.policy.impact)
        request = TicketRequest(
            action_item_id=item.id,
            postmortem_id=item.postmortem_id,
            postmortem_title=self.postmortem_title,
            summary=spec.title,
            details=spec.description,
            accepted_when=spec.acceptance_criterion.summary(),
            proposed_change=spec.proposed_change,
            priority=priority,
            due=item.due,
            owner=item.owner,
            owner_email=self.policy.email_of(item.owner),
            route=route,
            author_priority=author,
            impact=impact,
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
        except ActivityError as err:  # refused for good: bad credentials, no such project, or
            # a route naming a tracker that is not configured
            problem = str(err.cause or err)
            await self._apply(steps.ticket_refused(self.item, problem, workflow.now()))
            return
        if ticket is None:
            return  # no Jira configured: the built-in tracker
        await self._apply(steps.ticket_opened(self.item, ticket, workflow.now()))
        # An extension granted while Jira was slow or down found no ticket to move; the ticket
        # was asked for with the old due date, so it moves now.
        if self.item.due != request.due and workflow.patched("ticket-due-after-open"):
            due = TicketDue(key=ticket.key, due=self.item.due)
            await self._update_ticket(UPDATE_TICKET_DUE, due)

    async def _escalate_in_background(self, change: ActionItemChange, notice: Notice) -> None:
        """Record the step and send its notice, as record and send_notice do in turn: retried as
        a notice is (SMTP down for hours), and only logged if it fails for good."""
        event = change.event
        workflow.logger.info("%s by %s", event.action, event.actor, extra={"seq": event.seq})
        try:
            await workflow.execute_activity(
                ESCALATE_ITEM,
                ItemEscalation(change=change, notice=notice),
                start_to_close_timeout=NOTICE_TIMEOUT,
                heartbeat_timeout=ESCALATION_HEARTBEAT,
                retry_policy=NOTICE_RETRY,
            )
        except ActivityError as err:
            workflow.logger.error("notice %s not delivered: %s", notice.dedupe_key, err.cause)

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
        await self._apply(steps.ticket_done(item, done, workflow.now()))
        claim = DoneClaim(by=self.item.claims[-1].by, evidence=self.item.claims[-1].evidence)
        self.in_flight.hand_off(
            handoffs.done_claimed_notice(self.item, self.policy, claim, workflow.now())
        )

    def _send(self, notice: Notice) -> None:
        self.in_flight.start(send_notice(notice))

    # --- what people do -----------------------------------------------------------------------

    @workflow.update
    async def acknowledge(self, ack: Acknowledgement) -> ActionItem:
        """The owner has seen the item; escalations say so (the ladder itself keeps going)."""
        await judge_when_opened(lambda: self.opened, self._validate_acknowledge, ack)
        await self._apply(steps.acknowledge(self.item, ack, workflow.now()))
        return self.item

    @acknowledge.validator
    def _validate_acknowledge(self, ack: Acknowledgement) -> None:
        refuse(acknowledgement_refusal(self.item, ack))

    @workflow.update
    async def claim_done(self, claim: DoneClaim) -> ActionItem:
        await judge_when_opened(lambda: self.opened, self._validate_claim_done, claim)
        await self._apply(steps.claim_done(self.item, claim, workflow.now()))
        self.in_flight.hand_off(
            handoffs.done_claimed_notice(self.item, self.policy, claim, workflow.now())
        )
        return self.item

    @claim_done.validator
    def _validate_claim_done(self, claim: DoneClaim) -> None:
        refuse(claim_refusal(self.item, claim) or room_refusal(self.item, claim))

    @workflow.update
    async def verify(self, verification: Verification) -> ActionItem:
        await judge_when_opened(lambda: self.opened, self._validate_verify, verification)
        await self._apply(steps.verify(self.item, verification, workflow.now()))
        self.in_flight.hand_off(handoffs.verified_notice(self.item, self.policy, workflow.now()))
        return self.item

    @verify.validator
    def _validate_verify(self, verification: Verification) -> None:
        refuse(verifier_refusal(self.item, verification.by, self.policy))

    @workflow.update
    async def reject(self, rejection: Rejection) -> ActionItem:
        await judge_when_opened(lambda: self.opened, self._validate_reject, rejection)
        await self._apply(steps.reject(self.item, rejection, workflow.now()))
        self.in_flight.hand_off(
            handoffs.rejected_notice(self.item, self.policy, rejection, workflow.now())
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
        await self._apply(steps.request_extension(self.item, request, workflow.now()))
        # Sent before hand-offs were (no patch): whom it tells is the activity's input, not a
        # command, so histories that told the manager alone replay as they ran.
        self._send(
            handoffs.extension_requested_notice(self.item, self.policy, request, workflow.now())
        )
        return self.item

    @request_extension.validator
    def _validate_request_extension(self, request: ExtensionRequest) -> None:
        refuse(
            extension_request_refusal(self.item, request, self.policy)
            or room_refusal(self.item, request)
        )

    @workflow.update
    async def decide_extension(self, decision: ExtensionDecision) -> ActionItem:
        await judge_when_opened(lambda: self.opened, self._validate_decide_extension, decision)
        extension = self.item.pending_extension
        assert extension is not None  # the validator just checked
        number = self.item.extensions.index(extension) + 1
        step = steps.decide_extension(self.item, decision, workflow.now())
        item = step.state
        if decision.approve and item.ticket is not None:
            due = TicketDue(key=item.ticket.key, due=item.due)
            self.in_flight.start(self._update_ticket(UPDATE_TICKET_DUE, due))
        await self._apply(step)
        self._send(
            steps.extension_decided_notice(
                self.item, self.policy, decision, number, extension.until, workflow.now()
            )
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
        previous = self.item.owner
        step = steps.reassign(self.item, change, workflow.now())
        workflow.upsert_search_attributes([OWNING_TEAM.value_set(step.state.team)])
        await self._apply(step)
        number = step.event.seq  # the reassignment's own seq: unique per item
        self._send(
            steps.reassigned_notice(
                self.item, self.policy, change, previous, number, workflow.now()
            )
        )
        now = workflow.now()
        item, policy = self.item, self.policy
        self.in_flight.hand_off(
            handoffs.reassigned_away_notice(item, policy, change, previous, number, now)
        )
        return self.item

    @reassign.validator
    def _validate_reassign(self, change: Reassignment) -> None:
        refuse(
            reassignment_refusal(self.item, change, self.policy) or room_refusal(self.item, change)
        )

    @workflow.update
    async def accept_risk(self, request: RiskAcceptanceRequest) -> ActionItem:
        await judge_when_opened(lambda: self.opened, self._validate_accept_risk, request)
        await self._apply(steps.accept_risk(self.item, request, workflow.now()))
        self._send(steps.risk_accepted_notice(self.item, self.policy, request, workflow.now()))
        return self.item

    @accept_risk.validator
    def _validate_accept_risk(self, request: RiskAcceptanceRequest) -> None:
        refuse(risk_acceptance_refusal(self.item, request, self.policy))

    @workflow.query
    def snapshot(self) -> ActionItem:
        return self.item

    # --- bookkeeping --------------------------------------------------------------------------

    async def _apply(self, step: steps.Step[ActionItem]) -> None:
        """Take a step of the process: hold its new state (findable by its state) and record it."""
        await record(RECORD_ACTION_ITEM, self._hold(step))

    def _hold(self, step: steps.Step[ActionItem]) -> ActionItemChange:
        """Hold the step's new state (findable by its state); the change that records it."""
        moved = step.state.state is not self.item.state
        self.item = step.state
        if moved:
            workflow.upsert_search_attributes([ACTION_ITEM_STATE.value_set(self.item.state.value)])
        return ActionItemChange(item=self.item.model_copy(deep=True), event=step.event)
