"""PostmortemWorkflow: from a resolved incident to a closed postmortem.

run() reads like the process: open the postmortem, wait for a draft that passes review, follow
every action item through to verification, close. People act through updates, each with a
validator beside its handler that refuses bad input before anything changes.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Optional, cast

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities import (
        COLLECT_TIMELINE,
        COMMENT_TICKET,
        NOTE_THEMES,
        PUBLISH_POSTMORTEM,
        RECORD_POSTMORTEM,
        SLO_EVIDENCE,
    )
    from followthrough.domain import handoffs, steps
    from followthrough.domain.decisions import budget_opening, theme_opening
    from followthrough.domain.draft import factor_tags
    from followthrough.domain.escalation import PlannedStep, plan_ladder
    from followthrough.domain.postmortem import (
        STARTED_FINDABLE,
        ActionItem,
        ActionItemStart,
        Approval,
        ChangeRequest,
        CollectAgain,
        DraftSubmission,
        OptIn,
        Postmortem,
        PostmortemChange,
        PostmortemOutcome,
        PostmortemStart,
        PostmortemState,
        approval_refusal,
        change_request_refusal,
        collect_again_refusal,
        open_postmortem,
        opt_in_refusal,
        room_refusal,
        submit_refusal,
    )
    from followthrough.domain.problems import Problems, conflict, invalid
    from followthrough.domain.publishing import PublishedPage, page_request
    from followthrough.domain.slo_review import (
        SloAssessment,
        SloEvidence,
        SloReview,
        review_slos,
        slo_question,
    )
    from followthrough.domain.themes import Theme
    from followthrough.domain.tickets import TicketComment
    from followthrough.domain.timeline import SourceReport, TimelineRequest
    from workflows import (
        CONTINUE_AS_NEW_PATCH,
        ITEM_RESOLVED,
        POSTMORTEM_STATE,
        RECORD_TIMEOUT,
        TICKET_RETRY,
        InFlight,
        history_is_long,
        judge_when_opened,
        postmortem_attributes,
        reached,
        record,
        refuse,
        send_notice,
    )
    from workflows.action_item import TICKET_TIMEOUT, ActionItemWorkflow
    from workflows.council_decision import open_decision


# Prometheus answers within seconds; this bounds a submission waiting on a stuck worker.
SLO_EVIDENCE_TIMEOUT = timedelta(minutes=2)
# A person waits on the SLO review: a few tries, then the submission is refused (nothing changes).
SLO_EVIDENCE_RETRY = RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(seconds=10))
# Counting factor tags stands between approval and the action items: tries for about half an
# hour (a database restart), then the items start without the themes, and the audit says so.
THEMES_RETRY = RetryPolicy(maximum_attempts=30, maximum_interval=timedelta(minutes=1))
# Each source has a minute (activities/timeline.py); a failing source is a report, not an error,
# so only the database failing is retried, a few times; then the draft simply shows less.
COLLECT_TIMEOUT = timedelta(minutes=3)
COLLECT_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(minutes=1))
# Confluence down for hours delays the page, never the postmortem (publishing runs in the
# background): back off to every 10 minutes, for about two days; a refusal stops at once.
# Each request waits at most FOLLOWTHROUGH_CONFLUENCE_TIMEOUT; a publishing makes about six.
PUBLISH_TIMEOUT = timedelta(minutes=5)
PUBLISH_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=10), maximum_attempts=300)
# The audiences' summary waits this long for the page's link, then links the dashboard instead.
LINK_WAIT = timedelta(minutes=10)


@workflow.defn
class PostmortemWorkflow:
    @workflow.init
    def __init__(self, start: PostmortemStart) -> None:
        self.start = start
        self.policy = start.policy
        self.pm: Postmortem = start.carried or open_postmortem(
            start.incident, start.policy, workflow.now()
        )
        # set once the opening is recorded; people's actions wait for it
        self.opened = start.carried is not None
        # Started findable: the patches of its opening are in force without their markers.
        self.findable = start.started >= STARTED_FINDABLE
        self.resolved_items: dict[str, ActionItem] = {}  # told by each action item
        # notices, sent while the process goes on
        self.in_flight = InFlight(handoffs=self.findable or None)
        self.sharing = False  # publishes its page and tells its audiences (decided on approval)
        self.continues = False  # continues as new when its history grows long (decided in run)

    @workflow.run
    async def run(self, start: PostmortemStart) -> PostmortemOutcome:
        self.continues = self.findable or workflow.patched(CONTINUE_AS_NEW_PATCH)
        self._set_search_attributes()
        if start.carried is None:  # a continued postmortem was opened by its first run
            await self._open()
            if self.pm.state is PostmortemState.OPTIONAL and not await self._someone_opts_in():
                await self._apply(steps.lapse(self.pm, workflow.now()))
                return await self._finish([])

        await self._until_approved()
        self._share()
        if workflow.patched("recurring-themes"):  # histories from before themes replay as they ran
            await self._note_themes()
        items = await self._follow_action_items()
        await self._apply(steps.close(self.pm, items, workflow.now()))
        if self.sharing:  # the page says it is closed, with every item's outcome
            self.in_flight.start(self._republish())
        return await self._finish(items)

    # --- the process, step by step ------------------------------------------------------------

    async def _open(self) -> None:
        # Started findable: recorded in the first workflow task (bench/README.md, "Ingest").
        await self._apply(steps.record_opening(self.pm, workflow.now()), local=self.findable)
        self.opened = True
        # Only incidents from after unmapped severities were kept have any: recorded histories
        # never take this branch, and the patch marks the new command for any that would.
        if self.pm.incident.unmapped_severities and (
            self.findable or workflow.patched("unmapped-severity-notice")
        ):
            self._tell_operators_of_policy_gaps()
        self.in_flight.hand_off(handoffs.opened_notice(self.pm, self.policy, workflow.now()))
        # In the background: the draft never waits on the incident's tools. Histories from
        # before collection started none; the patch keeps them replaying as they ran.
        if self.findable or workflow.patched("collect-timeline"):
            self._collect_timeline()

    async def _someone_opts_in(self) -> bool:
        window = timedelta(days=self.policy.severity(self.pm.severity).optional_window_days)
        lapsed = await reached(
            workflow.now() + window, lambda: self.pm.state is not PostmortemState.OPTIONAL
        )
        return not lapsed

    async def _until_approved(self) -> None:
        """Wait for approval; an overdue draft or review climbs the ladder meanwhile.

        Drafts may bounce between review and changes (and timelines be collected again) without
        end: a long history continues as new at the top of the loop, nothing half done."""
        while self.pm.state is not PostmortemState.TRACKING:
            if self._ready_to_continue():
                self._continue_as_new()
            stage, deadline, version = self._stage()
            step = self._next_stage_step(stage, deadline, version)
            state, submitted = self.pm.state, self.pm.draft_version

            def changed(state: PostmortemState = state, submitted: int = submitted) -> bool:
                return (
                    self.pm.state is not state
                    or self.pm.draft_version != submitted
                    or self._ready_to_continue()
                )

            if step is None:
                await workflow.wait_condition(changed)
                continue
            if await reached(step.at, changed):  # else something changed first: look again
                await self._escalate_stage(stage, deadline, version, step)

    def _ready_to_continue(self) -> bool:
        """Its history is long, no handler is running and nothing is in flight (a notice or a
        timeline collection is waited out, never dropped or done twice)."""
        return (
            self.continues
            and history_is_long(self.start.continue_after_events)
            and self.in_flight.idle()
            and workflow.all_handlers_finished()
        )

    def _continue_as_new(self) -> None:  # it raises: the run ends here
        """The same postmortem in a new run, waiting for its approval where this one was (same
        workflow id: people's actions and queries reach it there)."""
        workflow.logger.info("%s continues as new in %s", self.pm.id, self.pm.state.value)
        workflow.continue_as_new(self.start.model_copy(update={"carried": self.pm}))

    def _stage(self) -> tuple[str, datetime, int]:
        """What the postmortem waits for now, when it was due, and which round it is."""
        pm = self.pm
        if pm.state is PostmortemState.IN_REVIEW and pm.review_due is not None:
            return "review", pm.review_due, pm.draft_version
        return "draft", pm.draft_due, 0

    def _next_stage_step(self, stage: str, deadline: datetime, version: int) -> PlannedStep | None:
        calendar = self.policy.calendar
        # The item ladder's steps from the due date on: due, then the manager, then the council.
        ladder = [s for s in self.policy.escalation.default if s.business_days >= 0]
        fired = {e.step for e in self.pm.escalations if e.plan == version}
        planned = plan_ladder(calendar.local_date(deadline), ladder, calendar)
        return next((s for s in planned if f"{stage}:{s.name}" not in fired), None)

    async def _escalate_stage(
        self, stage: str, deadline: datetime, version: int, step: PlannedStep
    ) -> None:
        now = workflow.now()
        # Whom the step tells is decided as it is taken (before the record is written).
        notice = steps.stage_notice(self.pm, self.policy, stage, deadline, version, step, now)
        await self._apply(
            steps.escalate_stage(self.pm, self.policy, stage, deadline, version, step, now)
        )
        # In the background: a notice that cannot go out must not hold up the stage (and with
        # it, once approved, the action items). Histories from before awaited it inline.
        if workflow.patched("stage-notices-in-background"):
            self.in_flight.start(send_notice(notice))
        else:
            await send_notice(notice)

    def _tell_operators_of_policy_gaps(self) -> None:
        """Each severity the policy did not map, to the operators, once per source and value
        (the notice's dedupe key), in the background: a policy gap never holds up a postmortem."""
        for notice in steps.unmapped_severity_notices(self.pm, self.policy, workflow.now()):
            self.in_flight.start(send_notice(notice))

    def _collect_timeline(self) -> None:
        request = TimelineRequest(postmortem_id=self.pm.id, incident=self.pm.incident)
        self.in_flight.start(self._collection(request))

    async def _collection(self, request: TimelineRequest) -> None:
        try:
            await workflow.execute_activity(
                COLLECT_TIMELINE,
                request,
                start_to_close_timeout=COLLECT_TIMEOUT,
                retry_policy=COLLECT_RETRY,
                result_type=list[SourceReport],
            )
        except ActivityError as err:
            workflow.logger.error("timeline of %s not collected: %s", self.pm.id, err.cause)

    def _share(self) -> None:
        """Publish the approved postmortem and tell its severity's audiences, in the background:
        neither Confluence nor the mail server ever holds up the action items. Histories from
        before (and policies that publish nowhere and name no audience) do neither."""
        policy = self.policy
        wanted = policy.publishing is not None or bool(policy.audiences_of(self.pm.severity))
        self.sharing = wanted and workflow.patched("publish-postmortem")
        if self.sharing:
            self.in_flight.start(self._publish_and_tell_audiences())

    async def _publish_and_tell_audiences(self) -> None:
        """Everything it starts it awaits, so the workflow, waiting for it, waits for them all."""
        publishing = asyncio.create_task(self._publish())
        try:  # the link to the page, when Confluence answers soon enough
            await workflow.wait_condition(publishing.done, timeout=LINK_WAIT)
        except TimeoutError:
            workflow.logger.warning("%s: audiences told before its page was published", self.pm.id)
        early = publishing.result() if publishing.done() else None
        url = str(early.url) if early is not None else None
        notices = handoffs.audience_notices(self.pm, self.policy, url, workflow.now())
        telling = [asyncio.create_task(send_notice(notice)) for notice in notices]
        await self._link_tickets(await publishing)
        await asyncio.gather(*telling)

    async def _republish(self) -> None:
        await self._link_tickets(await self._publish())

    async def _publish(self) -> PublishedPage | None:
        """The page; None when publishing nowhere, not configured, or refused."""
        request = page_request(self.pm.id, self.pm.team, self.policy.publishing, workflow.now())
        if request is None:
            return None
        try:
            page: PublishedPage | None = await workflow.execute_activity(
                PUBLISH_POSTMORTEM,
                request,
                # None when no Confluence is configured; the pydantic converter decodes it.
                result_type=cast(type, Optional[PublishedPage]),  # noqa: UP045
                start_to_close_timeout=PUBLISH_TIMEOUT,
                retry_policy=PUBLISH_RETRY,
            )
        except ActivityError as err:  # refused for good (kept on the publication) or given up
            workflow.logger.error("%s not published: %s", self.pm.id, err.cause)
            return None
        return page

    async def _link_tickets(self, page: PublishedPage | None) -> None:
        """Each item's ticket the page's publishing knew of links the page, once (its key)."""
        if page is None:
            return
        comments = [
            TicketComment(key=key, dedupe_key=f"{item_id}/published", published=page.url)
            for item_id, key in sorted(page.tickets.items())
        ]
        await asyncio.gather(*(self._comment(comment) for comment in comments))

    async def _comment(self, comment: TicketComment) -> None:
        try:
            await workflow.execute_activity(
                COMMENT_TICKET,
                comment,
                start_to_close_timeout=TICKET_TIMEOUT,
                retry_policy=TICKET_RETRY,
            )
        except ActivityError as err:  # the page is published; a refused comment is only logged
            workflow.logger.error("ticket %s not linked to the page: %s", comment.key, err.cause)

    async def _note_themes(self) -> None:
        """Count the approved draft's factor tags; tell the council of each theme they reached."""
        assert self.pm.draft is not None
        tags = factor_tags(self.pm.draft)
        if not tags:
            return
        try:
            themes = await self._count_themes(tags)
        except ActivityError as err:
            await self._apply(steps.themes_not_counted(self.pm, str(err.cause), workflow.now()))
            return
        for theme in themes:
            await self._apply(steps.theme_reached(self.pm, theme, workflow.now()))
            notice = steps.theme_notice(self.pm, self.policy, theme, workflow.now())
            self.in_flight.start(send_notice(notice))
            # The council decides what to do about it: a decision of its own, started in the
            # background so the action items never wait on it. Histories from before started none.
            if workflow.patched("council-decision-on-theme"):
                opening = theme_opening(theme, list(self.pm.incident.services), workflow.now())
                self.in_flight.start(open_decision(opening, self.policy))

    async def _count_themes(self, tags: list[str]) -> list[Theme]:
        pm = self.pm
        themes: list[Theme] = await workflow.execute_activity(
            NOTE_THEMES,
            steps.factors_to_count(pm, tags, self.policy, workflow.now()),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=THEMES_RETRY,
            result_type=list[Theme],
        )
        return themes

    async def _follow_action_items(self) -> list[ActionItem]:
        """Each approved action item becomes a child workflow; wait until every one is resolved.

        Children tell us by signal rather than by finishing, because one whose criterion asks for
        a later re-check lives on after verification (and after this postmortem closes).
        """
        assert self.pm.draft is not None
        item_ids = []
        for spec in self.pm.action_item_specs():
            item_id = self.pm.action_item_id(spec.number)
            await workflow.start_child_workflow(
                ActionItemWorkflow.run,
                ActionItemStart(
                    item_id=item_id,
                    postmortem_id=self.pm.id,
                    spec=spec,
                    policy=self.policy,
                    postmortem_title=self.pm.incident.title,
                    services=list(self.pm.incident.services),
                    # its items continue as new past the same number of events as it does
                    continue_after_events=self.start.continue_after_events,
                ),
                id=item_id,
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
            item_ids.append(item_id)
        await workflow.wait_condition(lambda: all(i in self.resolved_items for i in item_ids))
        return [self.resolved_items[i] for i in item_ids]

    @workflow.signal(name=ITEM_RESOLVED)
    def item_resolved(self, item: ActionItem) -> None:
        self.resolved_items.setdefault(item.id, item)

    async def _finish(self, items: list[ActionItem]) -> PostmortemOutcome:
        await self.in_flight.all_done()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PostmortemOutcome(id=self.pm.id, state=self.pm.state, action_items=items)

    # --- what people do -----------------------------------------------------------------------

    @workflow.update
    async def submit_draft(self, submission: DraftSubmission) -> Postmortem:
        await judge_when_opened(lambda: self.opened, self._validate_submit_draft, submission)
        slos = await self._review_slos(submission)
        await self._apply(
            steps.submit_draft(self.pm, submission, slos.assessments, self.policy, workflow.now())
        )
        for assessment in slos.assessments:
            await self._apply(steps.assess_slo(self.pm, submission.by, assessment, workflow.now()))
            if assessment.freeze_recommended:
                await self._recommend_freeze(assessment)
        self.in_flight.hand_off(
            handoffs.draft_submitted_notice(self.pm, self.policy, workflow.now())
        )
        return self.pm

    async def _review_slos(self, submission: DraftSubmission) -> SloReview:
        """What the incident cost its SLOs; refuses the draft for every duty it does not meet.

        Prometheus is asked (by an activity) before anything changes, so a refusal leaves the
        postmortem as it was.
        """
        if not workflow.patched("slo-review"):  # histories from before SLO reviews replay as ran
            return SloReview()
        question = slo_question(self.pm.id, self.pm.incident, submission.draft)
        if question is None:  # no impact window: the draft's own rules have refused it already
            return SloReview()
        try:
            evidence = await workflow.execute_activity(
                SLO_EVIDENCE,
                question,
                start_to_close_timeout=SLO_EVIDENCE_TIMEOUT,
                retry_policy=SLO_EVIDENCE_RETRY,
                result_type=list[SloEvidence],
            )
        except ActivityError as err:
            refuse(
                conflict(
                    f"the SLO review of {self.pm.id} could not run ({err.cause or err}); "
                    "nothing changed: submit the draft again"
                )
            )
            raise  # refuse() has raised already
        self._validate_submit_draft(submission)  # things may have moved while Prometheus spoke
        review = review_slos(submission.draft, self.pm.incident, self.policy, question, evidence)
        if review.problems:
            problems = Problems(
                f"draft for {self.pm.id} rejected by the SLO review", review.problems
            )
            refuse(invalid(problems.message))
        return review

    async def _recommend_freeze(self, assessment: SloAssessment) -> None:
        await self._apply(steps.recommend_freeze(self.pm, assessment, workflow.now()))
        notice = steps.budget_exhausted_notice(self.pm, self.policy, assessment, workflow.now())
        self.in_flight.start(send_notice(notice))
        if workflow.patched("council-decision-on-budget"):  # as for themes: in the background
            slo, left = assessment.slo, assessment.impact.budget_remaining_after
            opening = budget_opening(self.pm.id, slo.id, slo.service, left, workflow.now())
            self.in_flight.start(open_decision(opening, self.policy))

    @submit_draft.validator
    def _validate_submit_draft(self, submission: DraftSubmission) -> None:
        refuse(submit_refusal(self.pm, submission, self.policy, workflow.now().date()))

    @workflow.update
    async def opt_in(self, opt_in: OptIn) -> Postmortem:
        """Someone takes on an optional postmortem; the wait for an opt-in ends with it."""
        await judge_when_opened(lambda: self.opened, self._validate_opt_in, opt_in)
        if workflow.patched("opt-in"):  # a new command: histories from before never took it
            await self._apply(steps.opt_in(self.pm, opt_in, self.policy, workflow.now()))
        return self.pm

    @opt_in.validator
    def _validate_opt_in(self, opt_in: OptIn) -> None:
        refuse(opt_in_refusal(self.pm, opt_in, self.policy))

    @workflow.update
    async def approve(self, approval: Approval) -> Postmortem:
        await judge_when_opened(lambda: self.opened, self._validate_approve, approval)
        await self._apply(steps.approve(self.pm, approval, workflow.now()))
        if self.pm.state is PostmortemState.TRACKING:
            self.in_flight.hand_off(handoffs.approved_notice(self.pm, self.policy, workflow.now()))
        return self.pm

    @approve.validator
    def _validate_approve(self, approval: Approval) -> None:
        refuse(approval_refusal(self.pm, approval, self.policy) or room_refusal(self.pm, approval))

    @workflow.update
    async def request_changes(self, request: ChangeRequest) -> Postmortem:
        await judge_when_opened(lambda: self.opened, self._validate_request_changes, request)
        await self._apply(steps.request_changes(self.pm, request, workflow.now()))
        now = workflow.now()
        self.in_flight.hand_off(
            handoffs.changes_requested_notice(self.pm, self.policy, request, now)
        )
        return self.pm

    @request_changes.validator
    def _validate_request_changes(self, request: ChangeRequest) -> None:
        refuse(
            change_request_refusal(self.pm, request, self.policy) or room_refusal(self.pm, request)
        )

    @workflow.update
    async def collect_again(self, request: CollectAgain) -> Postmortem:
        """Ask the incident's sources again, in the background (the draft shows what came)."""
        await judge_when_opened(lambda: self.opened, self._validate_collect_again, request)
        self._collect_timeline()
        return self.pm

    @collect_again.validator
    def _validate_collect_again(self, request: CollectAgain) -> None:
        refuse(collect_again_refusal(self.pm, request, self.policy))

    @workflow.query
    def snapshot(self) -> Postmortem:
        return self.pm

    # --- bookkeeping --------------------------------------------------------------------------

    def _set_search_attributes(self) -> None:
        pairs = postmortem_attributes(self.pm.state.value, self.pm.severity, self.pm.team)
        if self.findable:  # only what its start (or the run it continued) did not set already
            held = workflow.info().typed_search_attributes
            pairs = [p for p in pairs if held.get(p.key) != p.value]
        if pairs:
            workflow.upsert_search_attributes([p.key.value_set(p.value) for p in pairs])

    async def _apply(self, step: steps.Step[Postmortem], *, local: bool = False) -> None:
        """Take a step of the process: hold its new state (findable by its state) and record it."""
        moved = step.state.state is not self.pm.state
        self.pm = step.state
        if moved:
            workflow.upsert_search_attributes([POSTMORTEM_STATE.value_set(self.pm.state.value)])
        snapshot = self.pm.model_copy(deep=True)
        change = PostmortemChange(postmortem=snapshot, event=step.event)
        await record(RECORD_POSTMORTEM, change, local=local)
