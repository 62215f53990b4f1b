"""CouncilDecisionWorkflow: a decision asked of the reliability council, from opening to lifting.

run() reads like the process: record the open decision and tell the council; wait for a council
member's `decide`; record it and tell the council; for a pause of feature work or a release
freeze, measure its lift condition again on a durable timer until it holds (or a council member
lifts it by hand), then record the lift and tell the council. The id comes from the trigger
(domain/decisions.py), so a theme or a proposal opens one decision however often it is started.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Optional, cast

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from activities import CHECK_LIFT, OPEN_TICKET, RECORD_DECISION
    from followthrough.domain import decisions
    from followthrough.domain.decisions import (
        SYSTEM,
        Choice,
        Decision,
        DecisionRequest,
        LiftAnswer,
        LiftCheck,
        LiftRequest,
        Opening,
    )
    from followthrough.domain.policy import Policy
    from followthrough.domain.steps import decision_notice
    from followthrough.domain.tickets import TicketRef
    from workflows import (
        RECORD_TIMEOUT,
        TICKET_RETRY,
        InFlight,
        judge_when_opened,
        reached,
        refuse,
        send_notice,
    )

# Prometheus answers within seconds; a check that fails is asked again at the next interval.
CHECK_TIMEOUT = timedelta(minutes=2)
CHECK_RETRY = RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(seconds=30))
TICKET_TIMEOUT = timedelta(minutes=2)
# A database down for a while delays the record; the decision itself is held here meanwhile.
RECORD_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))


class DecisionStart(BaseModel):
    opening: Opening
    policy: Policy
    decision: Decision | None = None  # carried over by continue-as-new


@workflow.defn
class CouncilDecisionWorkflow:
    @workflow.init
    def __init__(self, start: DecisionStart) -> None:
        self.policy = start.policy
        self.decision = start.decision or Decision(opening=start.opening)
        self.opened = start.decision is not None  # the council acts once the opening is recorded
        self.writing = asyncio.Lock()  # one record at a time, each of the latest snapshot
        self.in_flight = InFlight()

    @workflow.run
    async def run(self, start: DecisionStart) -> Decision:
        if start.decision is None:
            await self._record()
            self.opened = True
            self._tell_council("opened")
            await workflow.wait_condition(lambda: self.decision.decided is not None)
        if self.decision.in_force:
            await self._until_lifted()
        await self._settle()
        return self.decision

    async def _settle(self) -> None:
        """Let the handlers finish first: the decide handler starts its notice (and an
        initiative's tickets) after the decision is taken, and those must run to the end."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self.in_flight.all_done()
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _until_lifted(self) -> None:
        """Measure the lift condition on a durable timer; a council member may lift it first."""
        every = self.policy.council_decisions.recheck_every
        while self.decision.in_force:
            at = decisions.next_check(self.decision, every, workflow.now())
            if not await reached(at, lambda: not self.decision.in_force):  # lifted by hand
                return
            answer = await self._check()
            if not self.decision.in_force:  # lifted by hand while Prometheus was asked
                return
            self.decision = decisions.checked(self.decision, answer, workflow.now())
            if answer.holds:
                await self._lift(SYSTEM, answer.evidence)
                return
            await self._record()
            if workflow.info().is_continue_as_new_suggested():
                await self._settle()
                workflow.continue_as_new(
                    DecisionStart(
                        opening=self.decision.opening, policy=self.policy, decision=self.decision
                    )
                )

    async def _check(self) -> LiftAnswer:
        request = self.decision.decided
        assert request is not None and request.lifts_when is not None
        check = LiftCheck(
            decision_id=self.decision.id, condition=request.lifts_when, at=workflow.now()
        )
        try:
            answer: LiftAnswer = await workflow.execute_activity(
                CHECK_LIFT,
                check,
                start_to_close_timeout=CHECK_TIMEOUT,
                retry_policy=CHECK_RETRY,
                result_type=LiftAnswer,
            )
        except ActivityError as err:
            return LiftAnswer(holds=False, evidence=f"not measured: {err.cause or err}")
        return answer

    async def _lift(self, by: str, reason: str) -> None:
        self.decision = decisions.lift(self.decision, by, reason, workflow.now())
        await self._record()
        self._tell_council("lifted")

    # --- what the council does ------------------------------------------------------------------

    @workflow.update
    async def decide(self, request: DecisionRequest) -> Decision:
        await judge_when_opened(lambda: self.opened, self._validate_decide, request)
        self.decision = decisions.decide(self.decision, request, workflow.now())
        await self._record()
        self._tell_council("decided")
        if request.choice is Choice.APPROVE_INITIATIVE and self.decision.opening.items:
            self.in_flight.start(self._open_tickets())  # Jira down must not hold up the answer
        return self.decision

    async def _open_tickets(self) -> None:
        """The initiative's items as tickets under its epic (with the built-in tracker: none)."""
        opened: list[TicketRef] = []
        for ticket in decisions.initiative_tickets(self.decision, self.policy, workflow.now()):
            try:
                ref = await workflow.execute_activity(
                    OPEN_TICKET,
                    ticket,
                    start_to_close_timeout=TICKET_TIMEOUT,
                    retry_policy=TICKET_RETRY,
                    # None without a tracker; the pydantic converter decodes the Optional.
                    result_type=cast(type, Optional[TicketRef]),  # noqa: UP045
                )
            except ActivityError as err:  # refused for good: logged, the others still open
                workflow.logger.error("ticket %s not opened: %s", ticket.action_item_id, err.cause)
                continue
            if ref is not None:
                opened.append(ref)
        if opened:
            self.decision = self.decision.model_copy(update={"tickets": opened})
            await self._record()

    @decide.validator
    def _validate_decide(self, request: DecisionRequest) -> None:
        refuse(decisions.decide_refusal(self.decision, request, self.policy, workflow.now()))

    @workflow.update
    async def lift(self, request: LiftRequest) -> Decision:
        await judge_when_opened(lambda: self.opened, self._validate_lift, request)
        await self._lift(request.by, request.reason or "lifted by hand")
        return self.decision

    @lift.validator
    def _validate_lift(self, request: LiftRequest) -> None:
        refuse(decisions.lift_refusal(self.decision, request, self.policy))

    @workflow.query
    def snapshot(self) -> Decision:
        return self.decision

    # --- bookkeeping ----------------------------------------------------------------------------

    async def _record(self) -> None:
        """Write the decision as it stands when the write starts: writes never overlap, so the
        last one written is the latest state."""
        async with self.writing:
            await self._write()

    async def _write(self) -> None:
        try:
            await workflow.execute_activity(
                RECORD_DECISION,
                self.decision.model_copy(deep=True),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
            )
        except ActivityError as err:  # refused for good: the next record writes it all again
            workflow.logger.error("decision %s not recorded: %s", self.decision.id, err.cause)

    def _tell_council(self, step: str) -> None:
        """In the background: mail that cannot go out never holds up a decision or a lift."""
        notice = decision_notice(self.decision, self.policy, step, workflow.now())
        self.in_flight.start(send_notice(notice))


async def open_decision(opening: Opening, policy: Policy) -> None:
    """From a workflow: start the decision as a child that outlives its starter (run it in the
    background: nothing waits on it). One of that id already started is the same decision."""
    try:
        await workflow.start_child_workflow(
            CouncilDecisionWorkflow.run,
            DecisionStart(opening=opening, policy=policy),
            id=opening.decision_id,
            parent_close_policy=ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        workflow.logger.info("decision %s is open already", opening.decision_id)
