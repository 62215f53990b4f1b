"""The whole life of a postmortem under the time-skipping server, with real storage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities import RECORD_POSTMORTEM
from followthrough.actions import ActionRefused, act
from followthrough.domain.incident import parse_incident
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    ActionItem,
    ActionItemState,
    Approval,
    ChangeRequest,
    DoneClaim,
    PostmortemOutcome,
    PostmortemState,
    Rejection,
    Verification,
)
from followthrough.notices.delivery import Mailer
from followthrough.storage import Store
from followthrough.temporal.client import start_postmortem
from tests.conftest import eventually, running_worker, skip
from tests.factories import draft_data, incident_data, status_updates_data
from tests.lifecycle import start, submit, wait_for_item
from workflows import OWNING_TEAM, POSTMORTEM_SEVERITY, POSTMORTEM_STATE
from workflows.action_item import ActionItemWorkflow
from workflows.postmortem import PostmortemWorkflow


@pytest.fixture
async def client(time_skipping: WorkflowEnvironment) -> Client:
    return time_skipping.client


@pytest.fixture
async def time_skipping_now(time_skipping: WorkflowEnvironment) -> datetime:
    """The test server's clock: earlier tests may have skipped it days ahead of the wall clock."""
    return await time_skipping.get_current_time()


@pytest.fixture
async def task_queue(client: Client, store: Store, mailer: Mailer) -> AsyncIterator[str]:
    async with running_worker(client, store, mailer) as queue:
        yield queue


async def test_incident_to_closed_postmortem(
    client: Client, task_queue: str, store: Store, policy: Policy, time_skipping_now: datetime
) -> None:
    now = time_skipping_now
    incident = parse_incident(incident_data(now), policy)
    started = await start_postmortem(client, incident, policy, task_queue=task_queue)
    assert started.outcome == "started"
    pm_id = started.workflow_id
    again = await start_postmortem(client, incident, policy, task_queue=task_queue)
    assert (again.workflow_id, again.outcome) == (pm_id, "already open")

    # A reviewer asks for changes; the owner resubmits; one approval is enough for SEV2.
    pm = await submit(client, pm_id, "alice", draft_data(now))
    assert pm.state is PostmortemState.IN_REVIEW and pm.draft_version == 1
    pm = await act(
        client,
        pm_id,
        PostmortemWorkflow.request_changes,
        ChangeRequest(by="erin", reason="Name the config system"),
    )
    assert pm.state is PostmortemState.CHANGES_REQUESTED
    pm = await submit(client, pm_id, "alice", draft_data(now, summary="lb-config push ..."))
    assert pm.draft_version == 2
    with pytest.raises(ActionRefused, match="alice wrote this draft and cannot review it"):
        await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="alice"))
    pm = await act(
        client, pm_id, PostmortemWorkflow.approve, Approval(by="erin", comment="Thorough")
    )
    assert pm.state is PostmortemState.TRACKING
    assert pm.action_item_ids == [f"{pm_id}-item-1", f"{pm_id}-item-2"]

    alert, canary = pm.action_item_ids
    item = await wait_for_item(client, alert)
    assert item.state is ActionItemState.OPEN
    await act(client, alert, ActionItemWorkflow.claim_done, DoneClaim(by="bob", evidence="PR #812"))
    with pytest.raises(ActionRefused, match="cannot verify their own work"):
        await act(client, alert, ActionItemWorkflow.verify, Verification(by="bob"))
    item = await act(
        client,
        alert,
        ActionItemWorkflow.reject,
        Rejection(by="erin", reason="The alert is not routed to the pager"),
    )
    assert item.state is ActionItemState.OPEN
    await act(
        client,
        alert,
        ActionItemWorkflow.claim_done,
        DoneClaim(by="bob", evidence="PR #815 routes it to checkout-oncall"),
    )
    item = await act(
        client, alert, ActionItemWorkflow.verify, Verification(by="erin", note="Fired in a drill")
    )
    assert item.state is ActionItemState.VERIFIED

    await wait_for_item(client, canary)
    await act(
        client,
        canary,
        ActionItemWorkflow.claim_done,
        DoneClaim(by="carol", evidence="lb canary on"),
    )
    with pytest.raises(ActionRefused, match=r"only the named verifier \(pat\)"):
        await act(client, canary, ActionItemWorkflow.verify, Verification(by="erin"))
    await act(
        client, canary, ActionItemWorkflow.verify, Verification(by="pat", note="Checked 12 pushes")
    )

    outcome = await client.get_workflow_handle_for(PostmortemWorkflow.run, pm_id).result()
    assert outcome.state is PostmortemState.CLOSED
    assert [i.state for i in outcome.action_items] == [ActionItemState.VERIFIED] * 2

    stored = store.records.postmortem(pm_id)
    assert stored is not None and stored.state is PostmortemState.CLOSED
    actions = [(e.actor, e.action) for e in store.records.audit_trail(pm_id)]
    assert actions.count(("bob", "item.done_claimed")) == 2
    assert ("erin", "item.reopened") in actions
    assert actions[-1] == ("followthrough", "postmortem.closed")

    # A late duplicate delivery never reopens a closed postmortem.
    late = await start_postmortem(client, incident, policy, task_queue=task_queue)
    assert (late.workflow_id, late.outcome) == (pm_id, "already closed")


async def test_a_postmortem_starts_findable_and_opens_in_one_workflow_task(
    client: Client, task_queue: str, store: Store, policy: Policy, time_skipping_now: datetime
) -> None:
    """Started with its search attributes, its opening recorded by a local activity: the first
    workflow task opens it and sets its draft timer, with no upsert, no patch marker and no
    activity of its own on the server (bench/README.md, "Ingest")."""
    incident = parse_incident(incident_data(time_skipping_now), policy)
    started = await start_postmortem(client, incident, policy, task_queue=task_queue)
    handle = client.get_workflow_handle(started.workflow_id)
    found_by = (await handle.describe()).typed_search_attributes
    assert found_by.get(POSTMORTEM_STATE) == PostmortemState.DRAFTING.value
    assert found_by.get(POSTMORTEM_SEVERITY) == incident.severity
    assert found_by.get(OWNING_TEAM) == policy.team_of_service(incident.services[0])
    for _ in range(200):  # the record is written before its workflow task completes
        events = [e async for e in handle.fetch_history_events()]
        kinds = [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events]
        if "TIMER_STARTED" in kinds:
            break
        await asyncio.sleep(0.05)
    opening = kinds[: kinds.index("TIMER_STARTED") + 1]
    assert opening == [
        "WORKFLOW_EXECUTION_STARTED",
        "WORKFLOW_TASK_SCHEDULED",
        "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED",
        "MARKER_RECORDED",  # the opening's record, a local activity
        "TIMER_STARTED",  # the draft's due date
    ]
    assert "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES" not in kinds
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert RECORD_POSTMORTEM not in scheduled


async def test_optional_postmortem_lapses_when_nobody_opts_in(
    own_time_skipping: WorkflowEnvironment, store: Store, mailer: Mailer, policy: Policy
) -> None:
    # Eight days skipped: on a server of its own (a long skip on the shared one can time out
    # while other tests' workers keep it busy).
    client = own_time_skipping.client
    now = await own_time_skipping.get_current_time()
    async with running_worker(client, store, mailer) as task_queue:
        incident = parse_incident(incident_data(now, severity="SEV4"), policy)
        started = await start_postmortem(client, incident, policy, task_queue=task_queue)
        handle = client.get_workflow_handle(started.workflow_id, result_type=PostmortemOutcome)
        await skip(own_time_skipping, timedelta(days=8))
        outcome = await handle.result()
    assert outcome.state is PostmortemState.NOT_REQUIRED
    assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
    stored = store.records.postmortem(started.workflow_id)
    assert stored is not None and stored.state is PostmortemState.NOT_REQUIRED


async def test_bad_draft_is_refused_whole_and_changes_nothing(
    client: Client, task_queue: str, store: Store, policy: Policy, time_skipping_now: datetime
) -> None:
    now = time_skipping_now
    pm_id = await start(client, policy, task_queue, now)
    await eventually(lambda: store.records.postmortem(pm_id) is not None)
    draft = draft_data(now, impact="", detection_gaps=[])
    draft["action_items"][0]["acceptance_criterion"] = {"description": "Improve monitoring a lot"}
    del draft["action_items"][1]["owner"]

    with pytest.raises(ActionRefused) as refused:
        await submit(client, pm_id, "alice", draft)
    message = str(refused.value)
    assert "4 problems" in message
    for problem in (
        "impact: missing",
        "detection_gaps: missing",
        "'Improve monitoring a lot' is not measurable ('Improve' promises effort",
        "action_items[1] 'Canary load-balancer config pushes': owner is missing",
    ):
        assert problem in message

    handle = client.get_workflow_handle_for(PostmortemWorkflow.run, pm_id)
    pm = await handle.query(PostmortemWorkflow.snapshot)
    assert (pm.state, pm.draft, pm.draft_version) == (PostmortemState.DRAFTING, None, 0)
    assert [e.action for e in store.records.audit_trail(pm_id)] == ["postmortem.opened"]


async def test_sev1_needs_two_distinct_reviewers(
    client: Client, task_queue: str, policy: Policy, time_skipping_now: datetime
) -> None:
    now = time_skipping_now
    pm_id = await start(client, policy, task_queue, now, severity="SEV1")
    sev1 = draft_data(now)
    sev1["timeline"] += status_updates_data(now)  # the SEV1 communication contract held
    await submit(client, pm_id, "alice", sev1)

    pm = await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
    assert (pm.state, len(pm.approvals())) == (PostmortemState.IN_REVIEW, 1)
    with pytest.raises(ActionRefused, match="erin already approved draft version 1"):
        await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
    with pytest.raises(ActionRefused, match="bob is not a reviewer"):
        await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="bob"))
    pm = await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="grace"))
    assert pm.state is PostmortemState.TRACKING


async def test_simultaneous_verify_and_reject_cannot_both_apply(
    client: Client, task_queue: str, store: Store, policy: Policy, time_skipping_now: datetime
) -> None:
    """Both pass their validators against the same state; the handler's re-check refuses one."""
    now = time_skipping_now
    pm_id = await start(client, policy, task_queue, now)
    await submit(client, pm_id, "alice", draft_data(now))
    await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
    item_id = f"{pm_id}-item-1"
    await wait_for_item(client, item_id)
    await act(client, item_id, ActionItemWorkflow.claim_done, DoneClaim(by="bob", evidence="PR 1"))

    outcomes = await asyncio.gather(
        act(client, item_id, ActionItemWorkflow.verify, Verification(by="erin")),
        act(client, item_id, ActionItemWorkflow.reject, Rejection(by="frank", reason="no pager")),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, ActionRefused)]
    applied = [o for o in outcomes if isinstance(o, ActionItem)]
    assert (len(applied), len(refused)) == (1, 1), outcomes
    assert "only an item claimed done can be verified or rejected" in str(refused[0])
    stored = store.records.action_item(item_id)
    assert stored is not None and len(stored.decisions) == 1
    assert stored.state is applied[0].state
