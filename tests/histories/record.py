"""Record workflow histories from real lifecycles, for tests/test_replay.py to replay.

Each scenario runs a lifecycle the way the tests do (a time-skipping Temporal server of its own, a
worker from `tests.conftest.running_worker`, SQLite, the local outbox; Jira is
tests/servers/jira_server.py and checks probe a server on loopback), then writes the histories
worth keeping to tests/histories/<workflow type>/<prefix><name>.json:
`{"workflowId": ..., "events": [...]}`, the events as `WorkflowHistory.to_json()` gives them.

    python -m tests.histories.record                      # every scenario, this tree's code
    python -m tests.histories.record lifecycle wip        # only these
    python -m tests.histories.record --list               # the scenarios and what they keep

`--tree DIR` runs the scenarios with the workflow code of another checkout (a `git worktree` of an
older commit), so a change can be replayed against histories the old code really wrote:

    git worktree add /tmp/ft-old 978dcff
    python -m tests.histories.record --tree /tmp/ft-old --prefix before-slo-review- \\
        lifecycle overdue-draft
    git worktree remove /tmp/ft-old

Only scenarios that the older code supports can run that way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.workflow import UpdateMethodMultiParam

from activities.slots import team_slots_id
from followthrough.actions import ActionRefused, act
from followthrough.checks import CheckConfig
from followthrough.domain.calendar import BusinessCalendar
from followthrough.domain.decisions import Choice, DecisionRequest, LiftCondition, LiftKind
from followthrough.domain.draft import parse_draft
from followthrough.domain.incident import Incident, parse_incident
from followthrough.domain.notice import DigestRequest, OutboxStatus
from followthrough.domain.policy import Policy, load_policy
from followthrough.domain.postmortem import (
    Acknowledgement,
    ActionItem,
    ActionItemState,
    Approval,
    ChangeRequest,
    CollectAgain,
    DoneClaim,
    DraftSubmission,
    ExtensionDecision,
    ExtensionRequest,
    OptIn,
    Postmortem,
    PostmortemStart,
    PostmortemState,
    Reassignment,
    Rejection,
    RiskAcceptanceRequest,
    Verification,
)
from followthrough.domain.stuck import StuckWorkSweep
from followthrough.domain.timeline import CollectedEvent, EventKind
from followthrough.integrations.jira import JiraConfig
from followthrough.logging import configure_logging
from followthrough.storage import Store
from followthrough.storage.migrate import upgrade
from followthrough.temporal.client import start_postmortem
from tests.api_support import link_mailer
from tests.conftest import _start_time_skipping, eventually, running_worker, skip
from tests.factories import draft_data, incident_data
from tests.servers.jira_server import JiraServer
from tests.test_verification import Health
from workflows.action_item import ActionItemWorkflow
from workflows.council_decision import CouncilDecisionWorkflow
from workflows.council_digest import CouncilDigestWorkflow
from workflows.postmortem import PostmortemWorkflow
from workflows.stuck_work import StuckWorkWorkflow
from workflows.ticket_reconciliation import TicketReconciliationWorkflow

HISTORIES = Path(__file__).resolve().parent
Argument = TypeVar("Argument", bound=BaseModel)
Result = TypeVar("Result", bound=BaseModel)


@dataclass
class Kept:
    path: Path
    events: int


@dataclass
class Output:
    """Where the histories go, and what was written."""

    directory: Path
    prefix: str = ""
    kept: list[Kept] = field(default_factory=list)


@dataclass
class Recording:
    """One scenario's Temporal server, worker, store and output."""

    env: WorkflowEnvironment
    store: Store
    queue: str
    out: Output
    policy: Policy = field(default_factory=load_policy)

    @property
    def client(self) -> Client:
        return self.env.client

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def keep(self, workflow_id: str, name: str, run_id: str | None = None) -> None:
        """Write the workflow's history as it is now (it may still be running): its latest run's,
        or the run `run_id`'s."""
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        history = await handle.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        path = self.out.directory / started.workflow_type.name / f"{self.out.prefix}{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {"workflowId": workflow_id, **json.loads(history.to_json())}
        path.write_text(json.dumps(document, indent=1) + "\n")
        self.out.kept.append(Kept(path, len(history.events)))

    async def act(
        self,
        workflow_id: str,
        update: UpdateMethodMultiParam[[Any, Argument], Result],
        argument: Argument,
    ) -> Result:
        return await act(self.client, workflow_id, update, argument)

    async def refused(
        self,
        workflow_id: str,
        update: UpdateMethodMultiParam[[Any, Argument], Any],
        argument: Argument,
        says: str,
    ) -> str:
        """An action that must be refused; its message."""
        name = getattr(update, "__name__", "update")
        try:
            await act(self.client, workflow_id, update, argument)
        except ActionRefused as refusal:
            if says not in str(refusal):
                raise AssertionError(f"{name} refused, not with {says!r}: {refusal}") from None
            return str(refusal)
        raise AssertionError(f"{name} on {workflow_id} was not refused ({says!r} expected)")

    async def open_postmortem(self, policy: Policy | None = None, **incident: Any) -> str:
        policy = policy or self.policy
        parsed = parse_incident(incident_data(await self.now(), **incident), policy)
        started = await start_postmortem(self.client, parsed, policy, task_queue=self.queue)
        await eventually(lambda: self.store.records.postmortem(started.workflow_id))
        return started.workflow_id

    async def submit(self, pm_id: str, draft: dict[str, Any], by: str = "alice") -> Postmortem:
        submission = DraftSubmission(by=by, draft=parse_draft(draft))
        return await self.act(pm_id, PostmortemWorkflow.submit_draft, submission)

    async def approve(self, pm_id: str, by: str = "erin") -> list[str]:
        """Approve the draft in review; the action item ids, once their workflows have opened."""
        pm = await self.act(pm_id, PostmortemWorkflow.approve, Approval(by=by))
        assert pm.state is PostmortemState.TRACKING, pm.state
        opened = self.store.records.action_item
        await eventually(lambda: all(opened(item_id) for item_id in pm.action_item_ids))
        return pm.action_item_ids

    async def approved_item(
        self, policy: Policy | None = None, due: date | None = None, **item: Any
    ) -> tuple[str, str]:
        """A SEV2 postmortem approved with one P1 item of bob's, due on a Tuesday two to three
        weeks ahead (its ladder crosses weekends) unless `due` says: (pm, item)."""
        now = await self.now()
        due = due or next_tuesday(now.date() + timedelta(days=14))
        pm_id = await self.open_postmortem(policy)
        draft = draft_data(now)
        draft["action_items"] = [{**draft["action_items"][0], "due": due.isoformat(), **item}]
        await self.submit(pm_id, draft)
        [item_id] = await self.approve(pm_id)
        return pm_id, item_id

    def item(self, item_id: str) -> ActionItem:
        found = self.store.records.action_item(item_id)
        assert found is not None, item_id
        return found

    async def item_reaches(
        self, item_id: str, state: ActionItemState, *, checks: int | None = None
    ) -> ActionItem:
        """The stored item once it is in `state` (after `checks` check attempts, if given)."""
        found: ActionItem = await eventually(
            lambda: (
                (item := self.item(item_id)).state is state
                and (checks is None or len(item.checks) == checks)
                and item
            ),
            seconds=30,
        )
        return found

    async def postmortem_reaches(self, pm_id: str, state: PostmortemState) -> None:
        await eventually(
            lambda: (pm := self.store.records.postmortem(pm_id)) is not None and pm.state is state,
            seconds=30,
        )


@asynccontextmanager
async def recording(out: Output, **worker_options: Any) -> AsyncIterator[Recording]:
    """A time-skipping server, SQLite and a worker of the scenario's own (it skips weeks)."""
    env = await _start_time_skipping()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'followthrough.db'}"
            upgrade(url)
            store = Store(url)
            try:
                mailer = link_mailer(Path(tmp) / "outbox")
                async with running_worker(env.client, store, mailer, **worker_options) as queue:
                    yield Recording(env, store, queue, out)
            finally:
                store.close()
    finally:
        await env.shutdown()


Scenario = Callable[[Output], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def register(run: Scenario) -> Scenario:
        SCENARIOS[name] = run
        return run

    return register


def next_tuesday(after: date) -> date:
    return after + timedelta(days=(1 - after.weekday() - 1) % 7 + 1)


# --- the postmortem ----------------------------------------------------------------------------


@scenario("continued")
async def continued(out: Output) -> None:
    """A draft bounced in review until the postmortem continued as new; approved in its new run;
    its item rejected until it continued as new too, then verified from its new run (which tells
    the postmortem, and it closes). Keeps the first and the last run of each."""
    async with recording(out) as rec:
        now = await rec.now()
        incident = parse_incident(incident_data(now), rec.policy)
        start = PostmortemStart(incident=incident, policy=rec.policy, continue_after_events=100)
        pm_id = incident.postmortem_id
        await rec.client.start_workflow(
            PostmortemWorkflow.run, start, id=pm_id, task_queue=rec.queue
        )
        for take in range(1, 4):  # people an hour apart: it continues once nothing is in flight
            await rec.submit(pm_id, draft_data(now, summary=f"Take {take}."))
            await rec.env.sleep(timedelta(hours=1))
            request = ChangeRequest(by="erin", reason=f"Take {take}: name the config system")
            await rec.act(pm_id, PostmortemWorkflow.request_changes, request)
            await rec.env.sleep(timedelta(hours=1))
        draft = draft_data(now)
        draft["action_items"] = draft["action_items"][:1]
        await rec.submit(pm_id, draft)
        [item_id] = await rec.approve(pm_id)
        for attempt in range(1, 5):
            claim = DoneClaim(by="bob", evidence=f"PR #{810 + attempt}")
            await rec.act(item_id, ActionItemWorkflow.claim_done, claim)
            await rec.env.sleep(timedelta(hours=1))
            rejection = Rejection(by="erin", reason=f"Attempt {attempt}: not routed to the pager")
            await rec.act(item_id, ActionItemWorkflow.reject, rejection)
            await rec.env.sleep(timedelta(hours=1))
        claim = DoneClaim(by="bob", evidence="PR #815 routes it to checkout-oncall")
        await rec.act(item_id, ActionItemWorkflow.claim_done, claim)
        await rec.act(item_id, ActionItemWorkflow.verify, Verification(by="erin", note="Drill"))
        await rec.postmortem_reaches(pm_id, PostmortemState.CLOSED)
        for workflow_id, first, last in (
            (pm_id, "continued-as-new-in-review", "continued-approved-then-closed"),
            (item_id, "continued-as-new-after-rejections", "continued-then-verified"),
        ):
            history = await rec.client.get_workflow_handle(workflow_id).fetch_history()
            started = history.events[0].workflow_execution_started_event_attributes
            assert started.continued_execution_run_id, f"{workflow_id} never continued as new"
            await rec.keep(workflow_id, first, run_id=started.first_execution_run_id)
            await rec.keep(workflow_id, last)


@scenario("lifecycle")
async def lifecycle(out: Output) -> None:
    """Changes requested, resubmitted, approved; one item rejected then verified; closed."""
    async with recording(out) as rec:
        pm_id = await rec.open_postmortem()
        now = await rec.now()
        bad = draft_data(now, impact="", detection_gaps=[])
        incomplete = DraftSubmission(by="alice", draft=parse_draft(bad))
        await rec.refused(pm_id, PostmortemWorkflow.submit_draft, incomplete, "impact: missing")
        await rec.submit(pm_id, draft_data(now))
        request = ChangeRequest(by="erin", reason="Name the config system")
        await rec.act(pm_id, PostmortemWorkflow.request_changes, request)
        await rec.submit(pm_id, draft_data(now, summary="An lb-config push dropped backends."))
        await rec.refused(
            pm_id, PostmortemWorkflow.approve, Approval(by="alice"), "cannot review it"
        )
        alert, canary = await rec.approve(pm_id)

        await rec.act(alert, ActionItemWorkflow.claim_done, DoneClaim(by="bob", evidence="PR #812"))
        await rec.refused(
            alert, ActionItemWorkflow.verify, Verification(by="bob"), "cannot verify their own work"
        )
        rejection = Rejection(by="erin", reason="The alert is not routed to the pager")
        await rec.act(alert, ActionItemWorkflow.reject, rejection)
        claim = DoneClaim(by="bob", evidence="PR #815 routes it to checkout-oncall")
        await rec.act(alert, ActionItemWorkflow.claim_done, claim)
        await rec.act(
            alert, ActionItemWorkflow.verify, Verification(by="erin", note="Fired in a drill")
        )
        await rec.act(
            canary, ActionItemWorkflow.claim_done, DoneClaim(by="carol", evidence="canary")
        )
        await rec.act(canary, ActionItemWorkflow.verify, Verification(by="pat", note="12 pushes"))
        await rec.postmortem_reaches(pm_id, PostmortemState.CLOSED)
        await rec.keep(pm_id, "changes-requested-then-closed")
        await rec.keep(alert, "rejected-then-verified")


@scenario("overdue-draft")
async def overdue_draft(out: Output) -> None:
    """The draft is late (owner, manager, council told), then the review is late; approved."""
    async with recording(out) as rec:
        pm_id = await rec.open_postmortem()
        await rec.env.sleep(timedelta(days=21))
        await rec.submit(pm_id, draft_data(await rec.now()))
        await rec.env.sleep(timedelta(days=21))
        await rec.approve(pm_id)
        trail = [e.action for e in rec.store.records.audit_trail(pm_id)]
        assert trail.count("postmortem.escalated") == 6, trail
        await rec.keep(pm_id, "overdue-draft-and-review")


@scenario("optional")
async def optional(out: Output) -> None:
    """Two SEV4s: nobody opts in to one, which lapses; dan opts in to the other."""
    async with recording(out) as rec:
        lapsing = await rec.open_postmortem(severity="SEV4")
        opted = await rec.open_postmortem(severity="SEV4")
        draft = draft_data(await rec.now())
        pm = await rec.submit(opted, draft, by="dan")
        assert pm.owner == "dan", pm.owner
        await rec.env.sleep(timedelta(days=8))
        await rec.postmortem_reaches(lapsing, PostmortemState.NOT_REQUIRED)
        await rec.approve(opted)
        await rec.keep(lapsing, "optional-lapsed")
        await rec.keep(opted, "optional-opted-in")


@scenario("opt-in")
async def opt_in(out: Output) -> None:
    """A SEV3: someone outside the directory is refused, dan opts in (the opt_in update), a
    second opt-in is refused, and dan's draft is approved."""
    async with recording(out) as rec:
        pm_id = await rec.open_postmortem(severity="SEV3")
        await rec.refused(
            pm_id, PostmortemWorkflow.opt_in, OptIn(by="mallory"), "not in the policy's directory"
        )
        pm = await rec.act(pm_id, PostmortemWorkflow.opt_in, OptIn(by="dan"))
        assert (pm.state, pm.owner) == (PostmortemState.DRAFTING, "dan"), pm
        await rec.refused(
            pm_id, PostmortemWorkflow.opt_in, OptIn(by="erin"), "only an optional postmortem"
        )
        await rec.submit(pm_id, draft_data(await rec.now()), by="dan")
        await rec.approve(pm_id)
        await rec.keep(pm_id, "opted-in-then-approved")


class _OnePage:
    """A timeline source that always gives the same page (a real one is tested on its own)."""

    source = "pagerduty"

    def applies_to(self, incident: Incident) -> bool:
        return incident.source == "pagerduty"

    def collect(self, incident: Incident) -> list[CollectedEvent]:
        at = incident.detected_at or incident.resolved_at
        event = CollectedEvent(
            source="pagerduty", source_id="LOG1", at=at, kind=EventKind.ALERT, text="Paged"
        )
        return [event]


@scenario("collect-timeline")
async def collect_timeline(out: Output) -> None:
    """The timeline is collected when the postmortem opens, collected again by its owner (a
    stranger is refused), then the draft is approved and collecting again is refused."""
    async with recording(out, collectors=[_OnePage()]) as rec:
        pm_id = await rec.open_postmortem(source="pagerduty")
        await eventually(lambda: rec.store.timeline.reports(pm_id))
        await rec.refused(
            pm_id, PostmortemWorkflow.collect_again, CollectAgain(by="bob"), "or a reviewer"
        )
        await rec.act(pm_id, PostmortemWorkflow.collect_again, CollectAgain(by="alice"))
        await rec.submit(pm_id, draft_data(await rec.now()))
        await rec.approve(pm_id)
        await rec.refused(
            pm_id, PostmortemWorkflow.collect_again, CollectAgain(by="alice"), "until approval"
        )
        await rec.keep(pm_id, "timeline-collected-again-then-approved")


@scenario("slo-review")
async def slo_review(out: Output) -> None:
    """The SLO review refuses a draft twice (no estimate, then no P0 or alerting item), then
    accepts it with the budget estimated and exhausted: a release freeze, the council told."""
    from tests.servers.sli import CHECKOUT  # the SLO review came after the oldest recorded code

    async with recording(out) as rec:
        rec.store.slos.save([CHECKOUT], datetime.now(UTC))
        pm_id = await rec.open_postmortem()
        draft = draft_data(await rec.now())
        unmeasured = DraftSubmission(by="alice", draft=parse_draft(draft))
        await rec.refused(
            pm_id, PostmortemWorkflow.submit_draft, unmeasured, "could not be measured"
        )
        draft["slo_impact"] = {
            "fraction_affected": 0.3,
            "traffic_weight": 1.2,
            "budget_remaining_before": 0.2,
        }
        short = DraftSubmission(by="alice", draft=parse_draft(draft))
        await rec.refused(
            pm_id, PostmortemWorkflow.submit_draft, short, "at least one action item must be P0"
        )
        draft["action_items"][0] |= {
            "priority": "P0",
            "slo_change": {"slo": CHECKOUT.id, "change": "alerting"},
        }
        pm = await rec.submit(pm_id, draft)
        assert [a.freeze_recommended for a in pm.slo_review] == [True], pm.slo_review
        await rec.approve(pm_id)
        await eventually(
            lambda: rec.store.outbox.messages(), seconds=30
        )  # the council's freeze notice
        await rec.keep(pm_id, "slo-review-refused-then-estimated")


@scenario("themes")
async def themes(out: Output) -> None:
    """The third postmortem whose factors are tagged 'deploy' tells the council of a theme."""
    async with recording(out) as rec:
        pm_ids = []
        titles = ("Checkout 502s after a deploy", "Billing errors after a release", "Gateway 504s")
        for title in titles:
            pm_id = await rec.open_postmortem(title=title)
            await rec.submit(pm_id, draft_data(await rec.now()))
            await rec.approve(pm_id)
            pm_ids.append(pm_id)
        await eventually(lambda: rec.store.themes.all() and rec.store.outbox.messages(), seconds=30)
        await rec.keep(pm_ids[-1], "recurring-theme-reached")


@scenario("council-decision")
async def council_decision(out: Output) -> None:
    """The third 'deploy' postmortem opens a council decision (the `council-decision-on-theme`
    patch); grace freezes checkout until a day later (a refusal first), and the freeze lifts
    itself on its timer."""
    async with recording(out) as rec:
        pm_ids = []
        titles = ("Checkout 502s after a deploy", "Billing errors after a release", "Gateway 504s")
        for title in titles:
            pm_id = await rec.open_postmortem(title=title)
            await rec.submit(pm_id, draft_data(await rec.now()))
            await rec.approve(pm_id)
            pm_ids.append(pm_id)
        [decision] = await eventually(rec.store.decisions.all, seconds=30)
        await rec.keep(pm_ids[-1], "recurring-theme-opens-a-council-decision")
        until = await rec.now() + timedelta(days=1)
        freeze = DecisionRequest(
            by="grace",
            choice=Choice.FREEZE_RELEASES,
            services=["checkout"],
            reason="three deploy incidents",
            lifts_when=LiftCondition(kind=LiftKind.DATE, on=until),
        )
        await rec.refused(
            decision.id,
            CouncilDecisionWorkflow.decide,
            freeze.model_copy(update={"by": "erin"}),
            "only the reliability council decides",
        )
        await rec.act(decision.id, CouncilDecisionWorkflow.decide, freeze)
        await skip(rec.env, timedelta(days=1, hours=1))
        await eventually(
            lambda: (d := rec.store.decisions.get(decision.id)) and d.lifted_at, seconds=30
        )
        await rec.keep(decision.id, "freeze-lifted-on-its-date")


# --- action items ------------------------------------------------------------------------------


@scenario("ladder")
async def ladder(out: Output) -> None:
    """An acknowledged item nobody finishes climbs its ladder over 60 days, across weekends and a
    holiday, to the council; then the weekly council digest lists it."""
    async with recording(out) as rec:
        due = next_tuesday((await rec.now()).date() + timedelta(days=14))
        holiday = BusinessCalendar(holidays=[due + timedelta(days=2)])
        policy = rec.policy.model_copy(update={"calendar": holiday})
        _, item_id = await rec.approved_item(policy, due)
        await rec.act(item_id, ActionItemWorkflow.acknowledge, Acknowledgement(by="bob"))
        await rec.env.sleep(timedelta(days=60))
        steps = [e.step for e in rec.item(item_id).escalations]
        assert steps == ["reminder", "due", "manager", "council"], steps
        await rec.keep(item_id, "escalated-to-council")

        digest_id = f"digest-{uuid.uuid4().hex[:6]}"
        status = await rec.client.execute_workflow(
            CouncilDigestWorkflow.run,
            DigestRequest(at=await rec.now()),
            id=digest_id,
            task_queue=rec.queue,
        )
        assert status is OutboxStatus.KEPT, status  # in the local outbox: no SMTP here
        await rec.keep(digest_id, "weekly-digest")


@scenario("extension")
async def extension(out: Output) -> None:
    """Extensions: refused, approved (a new plan), denied, approved; the budget then spent."""
    async with recording(out) as rec:
        _, item_id = await rec.approved_item()
        due = rec.item(item_id).due
        later = due + timedelta(days=14)

        def ask(until: date, by: str = "bob") -> ExtensionRequest:
            return ExtensionRequest(by=by, until=until, reason="Waiting on the LB vendor")

        await rec.refused(
            item_id, ActionItemWorkflow.request_extension, ask(later, by="maria"), "only the owner"
        )
        await rec.act(item_id, ActionItemWorkflow.request_extension, ask(later))
        own = ExtensionDecision(by="bob", approve=True)
        await rec.refused(
            item_id, ActionItemWorkflow.decide_extension, own, "cannot decide their own extension"
        )
        approval = ExtensionDecision(by="maria", approve=True, reason="Vendor confirmed")
        await rec.act(item_id, ActionItemWorkflow.decide_extension, approval)
        await rec.act(item_id, ActionItemWorkflow.request_extension, ask(later + timedelta(days=7)))
        denial = ExtensionDecision(by="grace", approve=False, reason="Ship the alert first")
        await rec.act(item_id, ActionItemWorkflow.decide_extension, denial)
        await rec.act(item_id, ActionItemWorkflow.request_extension, ask(later + timedelta(days=7)))
        approval = ExtensionDecision(by="grace", approve=True)
        await rec.act(item_id, ActionItemWorkflow.decide_extension, approval)
        spent = ask(later + timedelta(days=30))
        await rec.refused(
            item_id, ActionItemWorkflow.request_extension, spent, "used its extension budget"
        )
        await rec.env.sleep(timedelta(days=70))
        plans = {e.plan for e in rec.item(item_id).escalations}
        assert plans == {3}, plans
        await rec.keep(item_id, "extensions-approved-and-denied")


@scenario("reassignment")
async def reassignment(out: Output) -> None:
    """bob's manager hands the item to carol (another team); the ladder follows her."""
    async with recording(out) as rec:
        _, item_id = await rec.approved_item()
        wrong = Reassignment(by="carol", to="alice")
        await rec.refused(item_id, ActionItemWorkflow.reassign, wrong, "only the owner")
        change = Reassignment(by="maria", to="carol", team="platform", reason="LB expertise")
        await rec.act(item_id, ActionItemWorkflow.reassign, change)
        await rec.env.sleep(timedelta(days=30))
        assert rec.item(item_id).escalations, "the ladder never climbed"
        await rec.keep(item_id, "reassigned")


@scenario("risk")
async def risk(out: Output) -> None:
    """Only the council may accept an item's risk; it closes the postmortem."""
    async with recording(out) as rec:
        pm_id, item_id = await rec.approved_item()
        reason = "Legacy checkout retires in Q1"
        by_owner = RiskAcceptanceRequest(by="bob", reason=reason)
        await rec.refused(
            item_id, ActionItemWorkflow.accept_risk, by_owner, "only the reliability council"
        )
        accepted = RiskAcceptanceRequest(by="grace", reason=reason)
        await rec.act(item_id, ActionItemWorkflow.accept_risk, accepted)
        await rec.postmortem_reaches(pm_id, PostmortemState.CLOSED)
        await rec.keep(item_id, "risk-accepted")


@scenario("wip")
async def wip(out: Output) -> None:
    """payments capped at one open item: two more queue; the P1 is admitted when a slot frees."""
    async with recording(out) as rec:
        teams = dict(rec.policy.teams)
        teams["payments"] = teams["payments"].model_copy(update={"wip_cap": 1})
        capped = rec.policy.model_copy(update={"teams": teams})
        _, first = await rec.approved_item(capped)
        due = rec.item(first).due

        pm_id = await rec.open_postmortem(capped)
        draft = draft_data(await rec.now())
        base = {**draft["action_items"][0], "due": due.isoformat()}
        draft["action_items"] = [
            {**base, "title": "Runbook for lb-config rollback", "priority": "P2"},
            {**base, "title": "Block empty backend pools in the linter", "priority": "P1"},
        ]
        await rec.submit(pm_id, draft)
        runbook, linter = await rec.approve(pm_id)
        await rec.item_reaches(runbook, ActionItemState.QUEUED)
        await rec.item_reaches(linter, ActionItemState.QUEUED)

        await rec.env.sleep(timedelta(days=7))
        claim = DoneClaim(by="bob", evidence="x")
        await rec.refused(
            linter, ActionItemWorkflow.claim_done, claim, "queued behind its team's WIP cap"
        )
        await rec.act(first, ActionItemWorkflow.claim_done, DoneClaim(by="bob", evidence="PR #900"))
        await rec.act(
            first, ActionItemWorkflow.verify, Verification(by="erin", note="Drill passed")
        )
        await rec.item_reaches(linter, ActionItemState.OPEN)
        await rec.keep(linter, "queued-then-admitted")
        await rec.keep(team_slots_id("payments", rec.queue), "payments-at-its-cap")


@scenario("check")
async def check(out: Output) -> None:
    """An http_check that must pass twice: it fails and reopens the item, passes twice and
    verifies it, then fails its re-check 30 days later: reopened, the council told."""
    health = Health()
    health.serve()
    try:
        async with recording(out) as rec:
            criterion = {
                "kind": "http_check",
                "url": health.url,
                "passes_required": 2,
                "over_hours": 2,
                "recheck_after_days": 30,
            }
            _, item_id = await rec.approved_item(acceptance_criterion=criterion)
            claim = DoneClaim(by="bob", evidence="deployed the health fix")
            await rec.act(item_id, ActionItemWorkflow.claim_done, claim)
            await rec.item_reaches(item_id, ActionItemState.OPEN, checks=1)

            health.answer = (200, "ok")
            claim = DoneClaim(by="bob", evidence="fixed the readiness probe")
            await rec.act(item_id, ActionItemWorkflow.claim_done, claim)
            await eventually(lambda: len(rec.item(item_id).checks) == 2, seconds=30)
            await rec.env.sleep(timedelta(hours=2, minutes=1))
            await rec.item_reaches(item_id, ActionItemState.VERIFIED, checks=3)

            health.answer = (500, "regressed")
            await rec.env.sleep(timedelta(days=31))
            await rec.item_reaches(item_id, ActionItemState.OPEN, checks=4)
            await rec.keep(item_id, "check-failed-passed-then-regressed")
    finally:
        health.server.shutdown()
        health.server.server_close()


PEOPLE = ("alice", "bob", "carol")  # Jira's users: the item owners and the author


@scenario("jira")
async def jira(out: Output) -> None:
    """Both items get Jira tickets; bob's due date moves with an approved extension; both tickets
    reach Done unseen and the reconciliation claims the items: bob's is verified by a person,
    carol's (ticket_resolved) by checking her ticket; the postmortem closes."""
    people = {p: {"displayName": p.title(), "emailAddress": f"{p}@example.com"} for p in PEOPLE}
    with JiraServer(
        users={"followthrough-bot": "api-token"}, people=people, projects={"PAY": "Payments"}
    ) as server:
        config = JiraConfig(
            url=server.url,
            user="followthrough-bot",
            token="api-token",
            project="PAY",
            deployment="server",
        )
        checks = CheckConfig(
            jira_url=server.url, jira_user="followthrough-bot", jira_token="api-token"
        )
        async with recording(out, jira=config, checks=checks) as rec:
            pm_id = await rec.open_postmortem()
            draft = draft_data(await rec.now())
            draft["action_items"][1]["acceptance_criterion"] = {"kind": "ticket_resolved"}
            await rec.submit(pm_id, draft)
            bob_item, carol_item = await rec.approve(pm_id)
            await eventually(
                lambda: rec.item(bob_item).ticket and rec.item(carol_item).ticket, seconds=30
            )
            later = rec.item(bob_item).due + timedelta(days=14)
            asked = ExtensionRequest(by="bob", until=later, reason="waiting on the vendor")
            await rec.act(bob_item, ActionItemWorkflow.request_extension, asked)
            decided = ExtensionDecision(by="maria", approve=True)
            await rec.act(bob_item, ActionItemWorkflow.decide_extension, decided)
            bob_ticket = rec.item(bob_item).ticket
            assert bob_ticket is not None
            await eventually(
                lambda: server.issue(bob_ticket.key)["fields"]["duedate"] == later.isoformat()
            )

            for item_id in (bob_item, carol_item):
                ticket = rec.item(item_id).ticket
                assert ticket is not None
                server.set_status(ticket.key, "Done", resolution="Fixed")
            reconciliation = f"reconcile-{uuid.uuid4().hex[:6]}"
            claimed = await rec.client.execute_workflow(
                TicketReconciliationWorkflow.run, "-1d", id=reconciliation, task_queue=rec.queue
            )
            assert sorted(claimed) == sorted([bob_item, carol_item]), claimed
            await rec.item_reaches(bob_item, ActionItemState.DONE_CLAIMED)
            await rec.act(bob_item, ActionItemWorkflow.verify, Verification(by="erin"))
            await rec.item_reaches(carol_item, ActionItemState.VERIFIED, checks=1)
            await rec.postmortem_reaches(pm_id, PostmortemState.CLOSED)
            await rec.keep(bob_item, "jira-ticket-extended-then-done")
            await rec.keep(carol_item, "jira-ticket-resolved-check")
            await rec.keep(reconciliation, "two-done-tickets")


# --- operations ----------------------------------------------------------------------------------


@scenario("stuck-work")
async def stuck_work(out: Output) -> None:
    """One stuck-work sweep, as its schedule starts it (the time-skipping server lists no
    workflows, so it finds nothing: its commands are the same either way)."""
    async with recording(out) as rec:
        sweep = f"stuck-work-{uuid.uuid4().hex[:6]}"
        sent = await rec.client.execute_workflow(
            StuckWorkWorkflow.run,
            StuckWorkSweep(task_queue=rec.queue),
            id=sweep,
            task_queue=rec.queue,
        )
        assert sent == [], sent
        await rec.keep(sweep, "sweep-found-nothing")


# --- running it --------------------------------------------------------------------------------


# What must come from the tree being recorded: the workflows, their activities, the library and
# the tests' helpers (the recorder's own scenarios are the only code from this checkout).
CODE = (
    "workflows.postmortem",
    "activities.records",
    "followthrough.temporal.client",
    "tests.conftest",
)


def code_paths() -> list[Path]:
    return [Path(str(sys.modules[name].__file__)).resolve() for name in CODE]


def code_in(tree: Path) -> bool:
    """Is the code this process imported that of `tree`?"""
    return all(path.is_relative_to(tree) for path in code_paths())


def run_in_tree(tree: Path, argv: list[str]) -> int:
    """Run this recorder again with `tree` first on the path, so its workflow code is used."""
    if os.environ.get("FOLLOWTHROUGH_RECORDING_TREE"):
        sys.exit(f"{tree}: its code was not picked up: {[str(p) for p in code_paths()]}")
    env = {**os.environ, "PYTHONPATH": str(tree), "FOLLOWTHROUGH_RECORDING_TREE": str(tree)}
    command = [sys.executable, str(Path(__file__).resolve()), *argv]
    return subprocess.run(command, cwd=tree, env=env, check=False).returncode


async def record(names: list[str], out: Output) -> None:
    for name in names:
        print(f"recording {name} ...", flush=True)
        await SCENARIOS[name](out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description="Record workflow histories from real lifecycles.")
    parser.add_argument("scenarios", nargs="*", help="default: all")
    parser.add_argument("--out", type=Path, default=HISTORIES, help="default: tests/histories")
    parser.add_argument("--prefix", default="", help="put before each history's name")
    parser.add_argument("--tree", type=Path, help="record with the code of this checkout")
    parser.add_argument("--list", action="store_true", help="list the scenarios and stop")
    args = parser.parse_args(argv)
    if args.list:
        for name, run in SCENARIOS.items():
            print(f"{name:14} {' '.join((run.__doc__ or '').split())}")
        return 0
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; see --list")
    out = args.out.resolve()
    if args.tree is not None and not code_in(args.tree.resolve()):
        rest = [*args.scenarios, "--out", str(out), "--prefix", args.prefix]
        return run_in_tree(args.tree.resolve(), [*rest, "--tree", str(args.tree.resolve())])

    configure_logging(level=logging.WARNING)
    print("recording with", *code_paths(), sep="\n  ")
    output = Output(out, args.prefix)
    asyncio.run(record(args.scenarios or list(SCENARIOS), output))
    for kept in output.kept:
        size = kept.path.stat().st_size // 1024
        print(f"{kept.path.relative_to(out)}: {kept.events} events, {size} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
