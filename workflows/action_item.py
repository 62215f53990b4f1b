"""ActionItemWorkflow: one follow-up, from approval until its acceptance criterion is verified.

"Done" is a claim: the owner claims it with evidence, and someone who is not the owner verifies it
against the acceptance criterion or rejects it, which reopens the item.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import RECORD_ACTION_ITEM
    from followthrough.domain.postmortem import (
        SYSTEM_ACTOR,
        ActionItem,
        ActionItemChange,
        ActionItemStart,
        ActionItemState,
        Claim,
        Decision,
        DoneClaim,
        Rejection,
        Verification,
        claim_refusal,
        rejection_refusal,
        verifier_refusal,
    )
    from workflows import (
        ACTION_ITEM_STATE,
        OWNING_TEAM,
        audit_event,
        judge_when_opened,
        record,
        refuse,
    )


@workflow.defn
class ActionItemWorkflow:
    @workflow.init
    def __init__(self, start: ActionItemStart) -> None:
        self.policy = start.policy
        self.item = ActionItem(
            id=start.item_id,
            postmortem_id=start.postmortem_id,
            spec=start.spec,
            opened_at=workflow.now(),
        )
        self.opened = False  # set once the opening is recorded; people's actions wait for it

    @workflow.run
    async def run(self, start: ActionItemStart) -> ActionItem:
        workflow.upsert_search_attributes(
            [
                ACTION_ITEM_STATE.value_set(self.item.state.value),
                OWNING_TEAM.value_set(self.item.spec.team),
            ]
        )
        spec = self.item.spec
        await self._record(
            SYSTEM_ACTOR,
            "item.opened",
            f"{spec.priority} '{spec.title}' owned by {spec.owner} ({spec.team}), due "
            f"{spec.due.isoformat()}; accepted when: {spec.acceptance_criterion.description}",
        )
        self.opened = True
        await workflow.wait_condition(
            lambda: self.item.state is ActionItemState.VERIFIED and workflow.all_handlers_finished()
        )
        return self.item

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
        refuse(claim_refusal(self.item, claim))

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
        refuse(rejection_refusal(self.item, rejection, self.policy))

    @workflow.query
    def snapshot(self) -> ActionItem:
        return self.item

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
        await record(
            RECORD_ACTION_ITEM, ActionItemChange(item=item.model_copy(deep=True), event=event)
        )
