"""Soak: one action item followed for years keeps every run's history short, and replays.

A real postmortem (approved, so the item is its child) and one item of bob's whose criterion is an
HTTP check that must pass 22 times, a day apart, and is re-checked 30 days after verification.
Twenty rounds, each: a due-date extension asked for (half approved, half denied), a done claim,
and its 22 checks, the last of which fails; every fourth round's all pass, and it is re-checked a
month later, failing, so the item regresses (the last round's re-check is still ahead when the
test ends). Now and then the item sits past its due date and its ladder climbs. That is 504
cycles (20 claims, 20 extension requests, 20 decisions, 440 checks and 4 re-checks) over close to
two simulated years, within the product's own caps (20 done claims and 20 extension requests per
item, domain/limits.py): claims are capped, so the repetition comes from the checks a criterion
may ask for (up to 50 passes over up to 90 days, each claim), as it does in production.

The item (and the postmortem) start with a low continue_after_events, so the chain has many runs;
each run's history stays far below Temporal's limits, and each replays under today's code.

The test ends with the last verification's re-check still ahead, the item running: the
time-skipping test server never completes a child's continued run once its parent has closed
(its result reads "No completion event found"; the dev server completes it), and this item
outlives its postmortem, as items with a re-check do.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities import (
    ESCALATE_ITEM,
    OPEN_TICKET,
    RECORD_ACTION_ITEM,
    RELEASE_SLOT,
    REQUEST_SLOT,
    RUN_CHECK,
    SEND_NOTICE,
)
from activities.slots import team_slots_id
from followthrough.actions import act
from followthrough.domain.draft import action_item_specs, parse_draft
from followthrough.domain.incident import parse_incident
from followthrough.domain.limits import (
    DONE_CLAIMS_PER_ITEM,
    EXTENSION_REQUESTS_PER_ITEM,
    HISTORY_EVENTS_BEFORE_CONTINUING,
)
from followthrough.domain.notice import Notice
from followthrough.domain.postmortem import (
    ActionItem,
    ActionItemStart,
    ActionItemState,
    Approval,
    ChangeRequest,
    CollectAgain,
    DoneClaim,
    ExtensionDecision,
    ExtensionRequest,
    ItemCarried,
    ItemEscalation,
    ItemStage,
    PostmortemStart,
    PostmortemState,
    Verification,
    open_action_item,
)
from followthrough.storage import Store
from tests.api_support import link_mailer, loopback_policy
from tests.conftest import eventually, running_worker, skip
from tests.factories import draft_data, incident_data
from tests.lifecycle import submit, wait_for_item
from tests.recorded import record_postmortem
from workflows.action_item import ActionItemWorkflow
from workflows.postmortem import PostmortemWorkflow
from workflows.team_slots import TeamSlotsWorkflow

PASSES = 22  # checks one verification needs, a day apart
ROUNDS = DONE_CLAIMS_PER_ITEM  # one done claim and one extension request a round
assert EXTENSION_REQUESTS_PER_ITEM >= ROUNDS
VERIFIED = {3, 7, 11, 15, 19}  # rounds whose checks all pass; each is re-checked a month later
OVERDUE = {0, 5, 10, 13}  # rounds that first sit past their due date while the ladder climbs
APPROVALS = ROUNDS // 2  # odd rounds' extensions are approved, the budget exactly
EVENTS = 300  # continue_after_events: low, so the chain has many runs
TEMPORAL_SUGGESTS = 4096  # events: Temporal suggests continuing as new past this many
PASS = (200, "ok")
Start = TypeVar("Start", ActionItemStart, PostmortemStart)
FAIL = (503, "checkout unhealthy")


class ScriptedService:
    """A health endpoint that gives the answers the test scripted, one per request, in order;
    any request beyond the script is a failure the test sees (`unscripted`)."""

    def __init__(self) -> None:
        self.answers: deque[tuple[int, str]] = deque()
        self.requests = 0
        self.unscripted = 0
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with service.lock:
                    service.requests += 1
                    if service.answers:
                        status, body = service.answers.popleft()
                    else:
                        service.unscripted += 1
                        status, body = 500, "unscripted"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"

    def script(self, answers: list[tuple[int, str]]) -> None:
        with self.lock:
            assert not self.answers, f"{len(self.answers)} answers of the last round unused"
            self.answers.extend(answers)


@pytest.fixture
def service() -> Iterator[ScriptedService]:
    scripted = ScriptedService()
    threading.Thread(target=scripted.server.serve_forever, daemon=True).start()
    yield scripted
    scripted.server.shutdown()
    scripted.server.server_close()


async def runs_of(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of the workflow's chain, first to last, each with its own history."""
    first = await client.get_workflow_handle(workflow_id).fetch_history()
    started = first.events[0].workflow_execution_started_event_attributes
    run_id: str | None = started.first_execution_run_id
    histories = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        run_id = None
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        assert len(histories) < 1000, "a chain without end"
    return histories


def started_input(history: WorkflowHistory, model: type[Start]) -> Start:
    """What the run was started with (a continued run: what the last one carried over)."""
    payloads = history.events[0].workflow_execution_started_event_attributes.input.payloads
    [start] = pydantic_data_converter.payload_converter.from_payloads(payloads, [model])
    assert isinstance(start, model)
    return start


def scheduled(histories: list[WorkflowHistory]) -> Counter[str]:
    """How many times each activity was scheduled over the whole chain."""
    kinds: Counter[str] = Counter()
    for history in histories:
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                kinds[event.activity_task_scheduled_event_attributes.activity_type.name] += 1
    return kinds


def notice_keys(histories: list[WorkflowHistory]) -> list[str]:
    """The dedupe key of every notice the chain asked to send, in order."""
    keys = []
    for history in histories:
        for event in history.events:
            if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                continue
            scheduled = event.activity_task_scheduled_event_attributes
            payloads = scheduled.input.payloads
            converter = pydantic_data_converter.payload_converter
            if scheduled.activity_type.name == SEND_NOTICE:
                [notice] = converter.from_payloads(payloads, [Notice])
                keys.append(notice.dedupe_key)
            elif scheduled.activity_type.name == ESCALATE_ITEM:  # a ladder step's notice
                [escalation] = converter.from_payloads(payloads, [ItemEscalation])
                keys.append(escalation.notice.dedupe_key)
    return keys


async def replays(histories: list[WorkflowHistory]) -> None:
    replayer = Replayer(
        workflows=[PostmortemWorkflow, ActionItemWorkflow], data_converter=pydantic_data_converter
    )
    for history in histories:
        await replayer.replay_workflow(history)  # raises on any non-determinism


def round_answers(round: int) -> list[tuple[int, str]]:
    """The checks of one round: all pass (then the re-check fails, but for the last round's,
    still ahead when the test ends) or the last one fails."""
    if round == ROUNDS - 1:
        return [PASS] * PASSES
    if round in VERIFIED:
        return [PASS] * PASSES + [FAIL]
    return [PASS] * (PASSES - 1) + [FAIL]


async def test_an_item_through_500_cycles_continues_as_new_and_replays(
    own_time_skipping: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    service: ScriptedService,
) -> None:
    env, client = own_time_skipping, own_time_skipping.client
    policy = loopback_policy().model_copy(update={"max_extensions": APPROVALS})
    now = await env.get_current_time()
    incident = parse_incident(incident_data(now), policy)
    draft = draft_data(now)
    criterion = {
        "kind": "http_check",
        "url": service.url,
        "description": "checkout's health endpoint answers 200",
        "passes_required": PASSES,
        "over_hours": (PASSES - 1) * 24,
        "recheck_after_days": 30,
    }
    draft["action_items"] = [{**draft["action_items"][0], "acceptance_criterion": criterion}]
    start = PostmortemStart(incident=incident, policy=policy, continue_after_events=EVENTS)
    pm_id = incident.postmortem_id
    async with running_worker(client, sqlite_store, link_mailer(tmp_path / "outbox")) as queue:
        pm_handle = await client.start_workflow(
            PostmortemWorkflow.run, start, id=pm_id, task_queue=queue
        )
        await eventually(lambda: sqlite_store.records.postmortem(pm_id))
        await submit(client, pm_id, "alice", draft)
        pm = await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
        [item_id] = pm.action_item_ids
        await wait_for_item(client, item_id)
        handle = client.get_workflow_handle_for(ActionItemWorkflow.run, item_id)

        for round in range(ROUNDS):
            item = await handle.query(ActionItemWorkflow.snapshot)
            assert item.state is ActionItemState.OPEN, (round, item.state)
            if round in OVERDUE:  # past its due date: the ladder climbs while it is open
                today = (await env.get_current_time()).date()
                await skip(env, timedelta(days=max((item.due - today).days, 0) + 9))
                item = await handle.query(ActionItemWorkflow.snapshot)
            today = (await env.get_current_time()).date()
            until = max(item.due, today) + timedelta(days=14)
            why = f"round {round}: the canary needs another sprint"
            await act(
                client,
                item_id,
                ActionItemWorkflow.request_extension,
                ExtensionRequest(by="bob", until=until, reason=why),
            )
            approve = round % 2 == 1
            decision = ExtensionDecision(
                by="maria", approve=approve, reason="" if approve else "ship what you have"
            )
            await act(client, item_id, ActionItemWorkflow.decide_extension, decision)
            checks_before = len(item.checks)
            answers = round_answers(round)
            service.script(answers)
            evidence = f"round {round}: deployed the fix"
            await act(
                client,
                item_id,
                ActionItemWorkflow.claim_done,
                DoneClaim(by="bob", evidence=evidence),
            )
            # The checks, a day apart, and after a verification the re-check a month later
            # (the last round's is left ahead: see the module's docstring).
            days = PASSES - 1 + (31 if round in VERIFIED and round < ROUNDS - 1 else 0)
            await skip(env, timedelta(days=days, hours=1))
            expected = checks_before + len(answers)
            last = ActionItemState.VERIFIED if round == ROUNDS - 1 else ActionItemState.OPEN
            settled = partial(_settled, sqlite_store, item_id, expected, last)
            item = await eventually(settled, seconds=60)
        final = await handle.query(ActionItemWorkflow.snapshot)
        # Not its result: waiting on a result lets the server skip to the item's next timer.
        closed = await pm_handle.describe()
        slots = await client.get_workflow_handle_for(
            TeamSlotsWorkflow.run, team_slots_id("payments", queue)
        ).query(TeamSlotsWorkflow.snapshot)

    # The item's end: every claim, extension and check of the 505 cycles, each once.
    assert final.state is ActionItemState.VERIFIED
    assert len(final.claims) == ROUNDS
    assert len(final.extensions) == ROUNDS
    assert final.approved_extensions() == APPROVALS
    purposes = Counter(check.purpose for check in final.checks)
    assert purposes == {"verification": ROUNDS * PASSES, "recheck": len(VERIFIED) - 1}
    assert [c.attempt for c in final.checks] == list(range(1, len(final.checks) + 1))
    cycles = len(final.claims) + 2 * len(final.extensions) + len(final.checks)
    assert cycles >= 500, cycles
    assert (service.requests, service.unscripted) == (len(final.checks), 0)
    fired = [(e.plan, e.step) for e in final.escalations]
    assert len(fired) == len(set(fired)) and len(fired) >= len(OVERDUE), fired
    assert sqlite_store.records.action_item(item_id) == final  # the record holds its state
    # Its postmortem heard once, from a run that had continued as new, and closed.
    assert closed.status is WorkflowExecutionStatus.COMPLETED
    pm_record = sqlite_store.records.postmortem(pm_id)
    assert pm_record is not None and pm_record.state is PostmortemState.CLOSED

    # The chain: many runs, each short, resuming at every stage; opened, ticketed and given
    # its WIP slot once, the slot released once.
    runs = await runs_of(client, item_id)
    lengths = [len(history.events) for history in runs]
    sizes = [sum(event.ByteSize() for event in history.events) for history in runs]
    assert len(runs) >= 10, lengths
    assert sum(lengths) > TEMPORAL_SUGGESTS, lengths  # one run would have been past it
    assert max(lengths) < HISTORY_EVENTS_BEFORE_CONTINUING, lengths  # < 10k, far below 51,200
    assert max(sizes) < 10 * 1024 * 1024, sizes  # far below Temporal's 50 MB
    stages = Counter(
        carried.stage
        for history in runs[1:]
        if (carried := started_input(history, ActionItemStart).carried) is not None
    )
    # Where each run handed over: the first climb and after regressions (mid-verification
    # included); the re-check's wait has a test of its own, below.
    assert {ItemStage.LADDER, ItemStage.REGRESSED} <= set(stages), stages
    activities = scheduled(runs)
    assert activities[OPEN_TICKET] == activities[REQUEST_SLOT] == activities[RELEASE_SLOT] == 1
    keys = notice_keys(runs)
    assert len(keys) == len(set(keys)), Counter(keys).most_common(3)  # none asked for twice
    assert sum(key.endswith("/assigned") for key in keys) == 1, keys[:3]
    print(
        f"soak: {cycles} cycles, {len(runs)} runs, events per run {min(lengths)}-{max(lengths)} "
        f"(all {sum(lengths)}), bytes per run at most {max(sizes)} (all {sum(sizes)}); "
        f"carried stages {dict(stages)}; {len(fired)} escalations, {len(keys)} notices"
    )
    trail = sqlite_store.records.audit_trail(pm_id)
    assert [e.action for e in trail if e.workflow_id == item_id].count("item.opened") == 1
    assert item_id not in str(slots.model_dump())  # its WIP slot given back

    # Every run of the item, and the postmortem's, replays under today's code.
    await replays(runs)
    await replays(await runs_of(client, pm_id))


def _settled(store: Store, item_id: str, checks: int, state: ActionItemState) -> ActionItem | None:
    """The item once all of a round's checks are recorded and it is in `state` (open again,
    or verified for good at the end)."""
    item = store.records.action_item(item_id)
    if item is None or len(item.checks) < checks:
        return None
    assert len(item.checks) == checks, f"{len(item.checks)} checks, {checks} expected"
    return item if item.state is state else None


async def test_a_draft_bounced_in_review_continues_as_new_and_its_items_start(
    own_time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    """Drafts may bounce between review and changes without end (and timelines be collected
    again): the postmortem continues as new while it waits, resumes in review or in changes, and
    its approval starts its items from a run that continued as new, which tell it they are done."""
    env, client = own_time_skipping, own_time_skipping.client
    policy = loopback_policy()
    now = await env.get_current_time()
    incident = parse_incident(incident_data(now), policy)
    start = PostmortemStart(incident=incident, policy=policy, continue_after_events=100)
    pm_id = incident.postmortem_id
    bounces = 12
    async with running_worker(client, sqlite_store, link_mailer(tmp_path / "outbox")) as queue:
        pm_handle = await client.start_workflow(
            PostmortemWorkflow.run, start, id=pm_id, task_queue=queue
        )
        await eventually(lambda: sqlite_store.records.postmortem(pm_id))
        for bounce in range(1, bounces + 1):
            # People an hour apart: the run continues as new once nothing is in flight.
            pm = await submit(client, pm_id, "alice", draft_data(now, summary=f"take {bounce}"))
            assert (pm.state, pm.draft_version) == (PostmortemState.IN_REVIEW, bounce)
            await skip(env, timedelta(hours=1))
            why = ChangeRequest(by="erin", reason=f"take {bounce}: name the config system")
            pm = await act(client, pm_id, PostmortemWorkflow.request_changes, why)
            assert pm.state is PostmortemState.CHANGES_REQUESTED
            await act(client, pm_id, PostmortemWorkflow.collect_again, CollectAgain(by="alice"))
            await skip(env, timedelta(hours=1))
        pm = await submit(client, pm_id, "alice", draft_data(now, summary="the last take"))
        pm = await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
        assert pm.state is PostmortemState.TRACKING and pm.draft_version == bounces + 1
        alert, canary = pm.action_item_ids
        await wait_for_item(client, alert)
        await wait_for_item(client, canary)
        claim = DoneClaim(by="bob", evidence="PR #812")
        await act(client, alert, ActionItemWorkflow.claim_done, claim)
        await act(client, alert, ActionItemWorkflow.verify, Verification(by="erin"))
        claim = DoneClaim(by="carol", evidence="canary config merged")
        await act(client, canary, ActionItemWorkflow.claim_done, claim)
        await act(client, canary, ActionItemWorkflow.verify, Verification(by="pat"))
        outcome = await pm_handle.result()  # the postmortem is no child: its chain completes

    assert outcome.state is PostmortemState.CLOSED
    assert [item.state for item in outcome.action_items] == [ActionItemState.VERIFIED] * 2
    runs = await runs_of(client, pm_id)
    assert len(runs) >= 3, [len(history.events) for history in runs]
    assert max(len(history.events) for history in runs) < HISTORY_EVENTS_BEFORE_CONTINUING
    carried = [started_input(history, PostmortemStart).carried for history in runs[1:]]
    assert all(pm is not None for pm in carried)
    assert {pm.state for pm in carried if pm is not None} <= {
        PostmortemState.IN_REVIEW,
        PostmortemState.CHANGES_REQUESTED,
    }
    record = sqlite_store.records.postmortem(pm_id)
    assert record is not None and len(record.reviews) == bounces + 1
    trail = sqlite_store.records.audit_trail(pm_id)
    assert [e.action for e in trail if e.workflow_id == pm_id].count("postmortem.opened") == 1
    await replays(runs)


async def test_a_run_continued_while_its_recheck_waits_only_rechecks(
    own_time_skipping: WorkflowEnvironment,
    sqlite_store: Store,
    tmp_path: Path,
    service: ScriptedService,
) -> None:
    """A verified item handed over while its re-check waits: the new run waits out the rest and
    re-checks, and does nothing of its opening again (no opening recorded, no ticket, no slot,
    no notice)."""
    env, client = own_time_skipping, own_time_skipping.client
    policy = loopback_policy()
    now = await env.get_current_time()
    draft = draft_data(now)
    criterion = {"kind": "http_check", "url": service.url, "recheck_after_days": 30}
    draft["action_items"] = [{**draft["action_items"][0], "acceptance_criterion": criterion}]
    [spec] = action_item_specs(parse_draft(draft))
    resolved = now - timedelta(days=20)
    pm_id = record_postmortem(
        sqlite_store, policy, "INC-RECHECK", "SEV2", {"resolved": resolved}
    ).id
    item_id = f"{pm_id}-item-1"
    start = ActionItemStart(item_id=item_id, postmortem_id=pm_id, spec=spec, policy=policy)
    verified = open_action_item(start, resolved).model_copy(
        update={"state": ActionItemState.VERIFIED, "verified_at": now - timedelta(days=10)}
    )
    carried = ItemCarried(item=verified, stage=ItemStage.RECHECK)
    service.script([PASS])
    async with running_worker(client, sqlite_store, link_mailer(tmp_path / "outbox")) as queue:
        handle = await client.start_workflow(
            ActionItemWorkflow.run,
            start.model_copy(update={"carried": carried}),
            id=item_id,
            task_queue=queue,
        )
        final = await handle.result()  # skips the 20 days left to its re-check
        history = await handle.fetch_history()

    assert final.state is ActionItemState.VERIFIED
    assert [check.purpose for check in final.checks] == ["recheck"]
    assert (service.requests, service.unscripted) == (1, 0)
    assert set(scheduled([history])) == {RUN_CHECK, RECORD_ACTION_ITEM}
    trail = sqlite_store.records.audit_trail(pm_id)
    [rechecked] = [e for e in trail if e.workflow_id == item_id]
    assert rechecked.action == "item.check_passed"
    assert rechecked.at >= now + timedelta(days=20)  # when the first run would have re-checked
