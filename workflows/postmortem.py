"""PostmortemWorkflow: from a resolved incident to a closed postmortem.

run() reads like the process: open the postmortem, wait for a draft that passes review, follow
every action item through to verification, close. People act through updates, each with a
validator beside its handler that refuses bad input before anything changes.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import RECORD_POSTMORTEM
    from followthrough.domain.draft import action_item_specs
    from followthrough.domain.postmortem import (
        SYSTEM_ACTOR,
        ActionItem,
        ActionItemStart,
        Approval,
        ChangeRequest,
        DraftSubmission,
        Postmortem,
        PostmortemChange,
        PostmortemOutcome,
        PostmortemStart,
        PostmortemState,
        Review,
        Verdict,
        approval_refusal,
        change_request_refusal,
        open_postmortem,
        submit_refusal,
    )
    from workflows import (
        OWNING_TEAM,
        POSTMORTEM_SEVERITY,
        POSTMORTEM_STATE,
        audit_event,
        judge_when_opened,
        record,
        refuse,
    )
    from workflows.action_item import ActionItemWorkflow


@workflow.defn
class PostmortemWorkflow:
    @workflow.init
    def __init__(self, start: PostmortemStart) -> None:
        self.policy = start.policy
        self.pm: Postmortem = open_postmortem(start.incident, start.policy, workflow.now())
        self.opened = False  # set once the opening is recorded; people's actions wait for it

    @workflow.run
    async def run(self, start: PostmortemStart) -> PostmortemOutcome:
        self._set_search_attributes()
        await self._record(SYSTEM_ACTOR, "postmortem.opened", self._opened_detail())
        self.opened = True

        if self.pm.state is PostmortemState.OPTIONAL and not await self._someone_opts_in():
            await self._transition(
                PostmortemState.NOT_REQUIRED,
                SYSTEM_ACTOR,
                "postmortem.not_required",
                "nobody opted in within the policy's window",
            )
            return await self._finish([])

        await workflow.wait_condition(lambda: self.pm.state is PostmortemState.TRACKING)
        items = await self._follow_action_items()
        await self._transition(
            PostmortemState.CLOSED,
            SYSTEM_ACTOR,
            "postmortem.closed",
            f"all {len(items)} action items verified",
        )
        return await self._finish(items)

    # --- the process, step by step ------------------------------------------------------------

    async def _someone_opts_in(self) -> bool:
        window = timedelta(days=self.policy.severity(self.pm.severity).optional_window_days)
        try:
            await workflow.wait_condition(
                lambda: self.pm.state is not PostmortemState.OPTIONAL, timeout=window
            )
        except TimeoutError:
            return False
        return True

    async def _follow_action_items(self) -> list[ActionItem]:
        """Each approved action item becomes a child workflow; wait until every one is verified."""
        assert self.pm.draft is not None
        children = [
            await workflow.start_child_workflow(
                ActionItemWorkflow.run,
                ActionItemStart(
                    item_id=item_id, postmortem_id=self.pm.id, spec=spec, policy=self.policy
                ),
                id=item_id,
            )
            for spec in action_item_specs(self.pm.draft)
            if (item_id := self.pm.action_item_id(spec.number))
        ]
        return list(await asyncio.gather(*children))

    async def _finish(self, items: list[ActionItem]) -> PostmortemOutcome:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PostmortemOutcome(id=self.pm.id, state=self.pm.state, action_items=items)

    # --- what people do -----------------------------------------------------------------------

    @workflow.update
    async def submit_draft(self, submission: DraftSubmission) -> Postmortem:
        await judge_when_opened(lambda: self.opened, self._validate_submit_draft, submission)
        pm = self.pm
        if pm.state is PostmortemState.OPTIONAL:
            pm.owner = submission.by  # opting in makes you the owner
        pm.draft = submission.draft
        pm.draft_version += 1
        pm.submitted_at = workflow.now()
        await self._transition(
            PostmortemState.IN_REVIEW,
            submission.by,
            "draft.submitted",
            f"version {pm.draft_version} with {len(submission.draft.action_items)} action items; "
            f"needs {pm.approvals_required} approval(s)",
        )
        return self.pm

    @submit_draft.validator
    def _validate_submit_draft(self, submission: DraftSubmission) -> None:
        refuse(submit_refusal(self.pm, submission, self.policy, workflow.now().date()))

    @workflow.update
    async def approve(self, approval: Approval) -> Postmortem:
        await judge_when_opened(lambda: self.opened, self._validate_approve, approval)
        self.pm.reviews.append(self._review(approval.by, Verdict.APPROVED, approval.comment))
        have, need = len(self.pm.approvals()), self.pm.approvals_required
        detail = f"approval {have} of {need}"
        if approval.comment:
            detail += f": {approval.comment}"
        if have >= need:
            assert self.pm.draft is not None  # in review means a draft was submitted
            self.pm.action_item_ids = [
                self.pm.action_item_id(spec.number) for spec in action_item_specs(self.pm.draft)
            ]
            await self._transition(PostmortemState.TRACKING, approval.by, "draft.approved", detail)
        else:
            await self._record(approval.by, "draft.approved", detail)
        return self.pm

    @approve.validator
    def _validate_approve(self, approval: Approval) -> None:
        refuse(approval_refusal(self.pm, approval, self.policy))

    @workflow.update
    async def request_changes(self, request: ChangeRequest) -> Postmortem:
        await judge_when_opened(lambda: self.opened, self._validate_request_changes, request)
        self.pm.reviews.append(self._review(request.by, Verdict.CHANGES_REQUESTED, request.reason))
        await self._transition(
            PostmortemState.CHANGES_REQUESTED, request.by, "draft.changes_requested", request.reason
        )
        return self.pm

    @request_changes.validator
    def _validate_request_changes(self, request: ChangeRequest) -> None:
        refuse(change_request_refusal(self.pm, request, self.policy))

    @workflow.query
    def snapshot(self) -> Postmortem:
        return self.pm

    # --- bookkeeping --------------------------------------------------------------------------

    def _review(self, reviewer: str, verdict: Verdict, comment: str) -> Review:
        return Review(
            reviewer=reviewer,
            verdict=verdict,
            comment=comment,
            at=workflow.now(),
            draft_version=self.pm.draft_version,
        )

    def _opened_detail(self) -> str:
        pm = self.pm
        need = "required" if pm.required else "optional"
        return (
            f"{pm.severity} postmortem ({need}) for '{pm.incident.title}', owner {pm.owner}, "
            f"draft due {pm.draft_due.isoformat()}"
        )

    def _set_search_attributes(self) -> None:
        updates = [
            POSTMORTEM_STATE.value_set(self.pm.state.value),
            POSTMORTEM_SEVERITY.value_set(self.pm.severity),
        ]
        if self.pm.team:
            updates.append(OWNING_TEAM.value_set(self.pm.team))
        workflow.upsert_search_attributes(updates)

    async def _transition(
        self, state: PostmortemState, actor: str, action: str, detail: str
    ) -> None:
        self.pm.state = state
        if state in (PostmortemState.CLOSED, PostmortemState.NOT_REQUIRED):
            self.pm.closed_at = workflow.now()
        workflow.upsert_search_attributes([POSTMORTEM_STATE.value_set(state.value)])
        await self._record(actor, action, detail)

    async def _record(self, actor: str, action: str, detail: str) -> None:
        self.pm.last_seq += 1
        event = audit_event(self.pm.id, self.pm.id, self.pm.last_seq, actor, action, detail)
        snapshot = self.pm.model_copy(deep=True)
        await record(RECORD_POSTMORTEM, PostmortemChange(postmortem=snapshot, event=event))
