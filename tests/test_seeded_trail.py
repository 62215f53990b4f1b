"""A seeded record reads like a real one: one scenario, played by people against the real
workflows (time-skipping server, real storage) and built as the seeder builds its records (the
domain's steps, each allowed by the same rules first, and the notices the domain builds beside
them, rendered by the notice activity's renderer), leaves the same audit trail and the same
outbox: the same actions by the same people, with the same words, and the same messages to the
same people. Only the times differ.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from followthrough.actions import ActionRefused, act
from followthrough.domain import handoffs, steps
from followthrough.domain.draft import parse_draft
from followthrough.domain.escalation import plan_ladder
from followthrough.domain.incident import Incident, is_demo_record, parse_incident
from followthrough.domain.notice import Notice, NoticeKind, OutboxMessage
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    Acknowledgement,
    ActionItem,
    ActionItemStart,
    ActionItemState,
    Approval,
    AuditEvent,
    ChangeRequest,
    DoneClaim,
    DraftSubmission,
    Extension,
    ExtensionDecision,
    ExtensionRequest,
    Postmortem,
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
from followthrough.notices.delivery import Mailer
from followthrough.notices.render import outbox_message, render_notice
from followthrough.render import postmortem_detail
from followthrough.seed import LINKS, seeded_incidents
from followthrough.storage import Store
from followthrough.temporal.client import start_postmortem
from tests.conftest import running_worker, skip
from tests.factories import draft_data, incident_data
from workflows.action_item import ActionItemWorkflow
from workflows.postmortem import PostmortemWorkflow

POSTMORTEM = 0  # the scenario's target: the postmortem, or an action item by its number

Trail = dict[str, list[tuple[str, str, str]]]  # workflow id -> (action, actor, detail), in order
# Postmortem or item id -> (kind, recipients, subject) of each message about it, in order.
Mail = dict[str, list[tuple[str, tuple[str, ...], str]]]


class PastItsLadder(BaseModel):
    """Nobody acts until the item's escalation ladder has climbed to its last step."""


def scenario(now: datetime) -> list[tuple[int, str, BaseModel]]:
    """Sent back once, approved; item 1 acknowledged, extended, rejected once and verified;
    item 2 climbs its whole escalation ladder, then the council accepts its risk."""
    due = now.date() + timedelta(days=14)  # item 1's, as draft_data sets it
    return [
        (
            POSTMORTEM,
            "submit_draft",
            DraftSubmission(by="alice", draft=parse_draft(draft_data(now))),
        ),
        (POSTMORTEM, "request_changes", ChangeRequest(by="erin", reason="Name the config system")),
        (
            POSTMORTEM,
            "submit_draft",
            DraftSubmission(
                by="alice", draft=parse_draft(draft_data(now, summary="lb-config push ..."))
            ),
        ),
        (POSTMORTEM, "approve", Approval(by="erin", comment="Thorough")),
        (1, "acknowledge", Acknowledgement(by="bob")),
        (
            1,
            "request_extension",
            ExtensionRequest(
                by="bob", until=due + timedelta(days=7), reason="Pager vendor is late"
            ),
        ),
        (1, "decide_extension", ExtensionDecision(by="maria", approve=True)),
        (1, "claim_done", DoneClaim(by="bob", evidence="PR #812")),
        (1, "reject", Rejection(by="erin", reason="The alert is not routed to the pager")),
        (1, "claim_done", DoneClaim(by="bob", evidence="PR #815 routes it to checkout-oncall")),
        (1, "verify", Verification(by="erin", note="Fired in a drill")),
        (2, "past_its_ladder", PastItsLadder()),
        (
            2,
            "accept_risk",
            RiskAcceptanceRequest(by="grace", reason="Canaries come with next quarter's rework"),
        ),
    ]


def trails(events: list[AuditEvent]) -> Trail:
    found: Trail = {}
    for event in sorted(events, key=lambda e: (e.workflow_id, e.seq)):
        found.setdefault(event.workflow_id, []).append((event.action, event.actor, event.detail))
    return found


def mail(messages: list[OutboxMessage]) -> Mail:
    """`messages` oldest first."""
    found: Mail = {}
    for m in messages:
        about = m.action_item_id or m.postmortem_id
        found.setdefault(about, []).append((m.kind.value, tuple(m.recipients), m.subject))
    return found


# --- seeded: the domain's steps, each allowed by the rules first, as followthrough/seed/ -------


def _allowed(refusal: Refusal | None) -> None:
    assert refusal is None, f"the scenario breaks a rule: {refusal}"


def seeded(incident: Incident, policy: Policy, now: datetime) -> tuple[Trail, Mail]:
    at = now
    events: list[AuditEvent] = []
    sent: list[OutboxMessage] = []

    def took(step: steps.Step[Any]) -> Any:
        events.append(step.event)
        return step.state

    def told(notice: Notice, item: ActionItem | None) -> None:
        earlier = [m for m in sent if item is None or m.action_item_id == item.id]
        sent.append(outbox_message(notice, pm.id, render_notice(notice, pm, item, earlier, LINKS)))

    pm: Postmortem = took(steps.record_opening(open_postmortem(incident, policy, at), at))
    told(handoffs.opened_notice(pm, policy, at), None)
    items: dict[int, ActionItem] = {}
    postmortem_steps: dict[str, Callable[[Any], steps.Step[Postmortem]]] = {
        "submit_draft": lambda r: steps.submit_draft(pm, r, [], policy, at),
        "request_changes": lambda r: steps.request_changes(pm, r, at),
        "approve": lambda r: steps.approve(pm, r, at),
    }
    postmortem_rules: dict[str, Callable[[Any], Refusal | None]] = {
        "submit_draft": lambda r: submit_refusal(pm, r, policy, at.date()),
        "request_changes": lambda r: change_request_refusal(pm, r, policy),
        "approve": lambda r: approval_refusal(pm, r, policy),
    }
    for target, action, request in scenario(now):
        at += timedelta(minutes=5)
        if target == POSTMORTEM:
            _allowed(postmortem_rules[action](request))
            pm = took(postmortem_steps[action](request))
            if notice := _postmortem_notice(action, pm, request, policy, at):
                told(notice, None)
            if pm.state is PostmortemState.TRACKING and not items:
                for spec in pm.action_item_specs():
                    start = ActionItemStart(
                        item_id=pm.action_item_id(spec.number),
                        postmortem_id=pm.id,
                        spec=spec,
                        policy=policy,
                        postmortem_title=pm.incident.title,
                    )
                    opened = open_action_item(start, at)
                    items[spec.number] = took(steps.record_item_opening(opened, at))
                    told(
                        handoffs.assigned_notice(items[spec.number], policy, at), items[spec.number]
                    )
            continue
        item = items[target]
        if isinstance(request, PastItsLadder):  # each step at its time, as the workflow's timers
            ladder = policy.escalation.ladder(item.spec.priority.value)
            for planned in plan_ladder(item.due, ladder, policy.calendar):
                item = took(steps.escalate(item, policy, planned, planned.at))
                told(steps.escalation_notice(item, policy, planned, planned.at), item)
            items[target] = item
            continue
        _allowed(_item_rule(action, item, request, policy))
        pending = item.pending_extension
        items[target] = took(ITEM_STEPS[action](item, request, at))
        if notice := _item_notice(action, items[target], request, policy, at, pending):
            told(notice, items[target])
    if all(item.resolved for item in items.values()):
        took(steps.close(pm, list(items.values()), at))
    return trails(events), mail(sent)


def _postmortem_notice(
    action: str, pm: Postmortem, request: Any, policy: Policy, at: datetime
) -> Notice | None:
    """The hand-off the postmortem's workflow sends after the step, if any."""
    if action == "submit_draft":
        return handoffs.draft_submitted_notice(pm, policy, at)
    if action == "request_changes":
        return handoffs.changes_requested_notice(pm, policy, request, at)
    if action == "approve" and pm.state is PostmortemState.TRACKING:
        return handoffs.approved_notice(pm, policy, at)
    return None


def _item_notice(
    action: str,
    item: ActionItem,
    request: Any,
    policy: Policy,
    at: datetime,
    pending: Extension | None,
) -> Notice | None:
    """The notice the item's workflow sends after the step, if any."""
    if action == "request_extension":
        return handoffs.extension_requested_notice(item, policy, request, at)
    if action == "decide_extension":
        assert pending is not None
        return steps.extension_decided_notice(
            item, policy, request, len(item.extensions), pending.until, at
        )
    if action == "accept_risk":
        return steps.risk_accepted_notice(item, policy, request, at)
    if action == "claim_done":
        return handoffs.done_claimed_notice(item, policy, request, at)
    if action == "verify":
        return handoffs.verified_notice(item, policy, at)
    if action == "reject":
        return handoffs.rejected_notice(item, policy, request, at)
    return None


def _item_rule(action: str, item: ActionItem, request: Any, policy: Policy) -> Refusal | None:
    rules: dict[str, Callable[[], Refusal | None]] = {
        "acknowledge": lambda: acknowledgement_refusal(item, request),
        "request_extension": lambda: extension_request_refusal(item, request, policy),
        "decide_extension": lambda: extension_decision_refusal(item, request, policy),
        "claim_done": lambda: claim_refusal(item, request),
        "reject": lambda: rejection_refusal(item, request, policy),
        "verify": lambda: verifier_refusal(item, request.by, policy),
        "accept_risk": lambda: risk_acceptance_refusal(item, request, policy),
    }
    return rules[action]()


ITEM_STEPS: dict[str, Callable[[ActionItem, Any, datetime], steps.Step[ActionItem]]] = {
    "acknowledge": steps.acknowledge,
    "request_extension": steps.request_extension,
    "decide_extension": steps.decide_extension,
    "claim_done": steps.claim_done,
    "reject": steps.reject,
    "verify": steps.verify,
    "accept_risk": steps.accept_risk,
}


# --- real: people act on the running workflows ---------------------------------------------------


async def lived(
    env: WorkflowEnvironment,
    task_queue: str,
    store: Store,
    incident: Incident,
    policy: Policy,
    now: datetime,
) -> tuple[Trail, Mail]:
    client = env.client
    pm_id = (await start_postmortem(client, incident, policy, task_queue=task_queue)).workflow_id
    for target, action, request in scenario(now):
        if target == POSTMORTEM:
            await act(client, pm_id, getattr(PostmortemWorkflow, action), request)
            continue
        item_id = f"{pm_id}-item-{target}"
        await _started(client, item_id)
        if isinstance(request, PastItsLadder):
            await _past_its_ladder(env, item_id, policy)
            continue
        await act(client, item_id, getattr(ActionItemWorkflow, action), request)
    outcome = await client.get_workflow_handle_for(PostmortemWorkflow.run, pm_id).result()
    assert outcome.state is PostmortemState.CLOSED
    for item in outcome.action_items:  # each sends its last notices before it completes
        if item.state is not ActionItemState.VERIFIED:
            await client.get_workflow_handle_for(ActionItemWorkflow.run, item.id).result()
    return trails(store.records.audit_trail(pm_id)), mail(
        store.outbox.messages(postmortem_id=pm_id)[::-1]
    )


async def _past_its_ladder(env: WorkflowEnvironment, item_id: str, policy: Policy) -> None:
    handle = env.client.get_workflow_handle_for(ActionItemWorkflow.run, item_id)
    item = await handle.query(ActionItemWorkflow.snapshot)
    ladder = policy.escalation.ladder(item.spec.priority.value)
    last = plan_ladder(item.due, ladder, policy.calendar)[-1]
    await skip(env, last.at - await env.get_current_time() + timedelta(hours=1))
    for _ in range(100):  # the last step's record is written by an activity
        item = await handle.query(ActionItemWorkflow.snapshot)
        if len(item.escalations) == len(ladder):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{item_id} did not climb its ladder: {item.escalations}")


async def _started(client: Client, item_id: str) -> None:
    handle = client.get_workflow_handle_for(ActionItemWorkflow.run, item_id)
    for _ in range(100):
        try:
            await handle.query(ActionItemWorkflow.snapshot)
            return
        except RPCError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{item_id} never started")


async def test_a_seeded_trail_reads_like_the_real_one(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, mailer: Mailer, policy: Policy
) -> None:
    client = time_skipping.client
    now = await time_skipping.get_current_time()
    incident = parse_incident(incident_data(now), policy)
    async with running_worker(client, sqlite_store, mailer) as task_queue:
        real, real_mail = await lived(
            time_skipping, task_queue, sqlite_store, incident, policy, now
        )

    made, made_mail = seeded(incident, policy, now)

    pm_id = incident.postmortem_id
    assert sorted(made) == sorted(real) == [pm_id, f"{pm_id}-item-1", f"{pm_id}-item-2"]
    for workflow_id in real:
        assert made[workflow_id] == real[workflow_id], workflow_id
    assert sorted(made_mail) == sorted(real_mail)
    for about in real_mail:
        assert made_mail[about] == real_mail[about], about
    kinds = {kind for messages in real_mail.values() for kind, _, _ in messages}
    assert {
        NoticeKind.ITEM_STEP,
        NoticeKind.EXTENSION_REQUESTED,
        NoticeKind.EXTENSION_DECIDED,
        NoticeKind.RISK_ACCEPTED,
    } <= kinds
    # The scenario reached every kind of step it names, so the comparison covers them.
    actions = {action for trail in real.values() for action, _, _ in trail}
    assert {
        "postmortem.opened",
        "draft.submitted",
        "draft.changes_requested",
        "draft.approved",
        "item.opened",
        "item.acknowledged",
        "item.extension_requested",
        "item.extension_approved",
        "item.escalated",
        "item.done_claimed",
        "item.reopened",
        "item.verified",
        "item.risk_accepted",
        "postmortem.closed",
    } <= actions


async def test_acting_on_a_seeded_record_says_it_is_a_demo_record(
    time_skipping: WorkflowEnvironment, policy: Policy
) -> None:
    now = await time_skipping.get_current_time()
    made = next(seeded_incidents(policy, now))
    for record_id in (made.postmortem.id, *(item.id for item in made.items)):
        assert is_demo_record(record_id)
    with pytest.raises(ActionRefused, match=r"is a demo record .* it has no workflow to act on"):
        await act(
            time_skipping.client,
            made.postmortem.id,
            PostmortemWorkflow.approve,
            Approval(by="erin"),
        )
    assert "demo record" in postmortem_detail(made.postmortem, made.items, []).splitlines()[0]

    real = open_postmortem(parse_incident(incident_data(now), policy), policy, now)
    assert not is_demo_record(real.id)
    assert "demo" not in postmortem_detail(real, [], []).splitlines()[0]
    with pytest.raises(ActionRefused, match="does not exist or has already closed"):
        await act(time_skipping.client, real.id, PostmortemWorkflow.approve, Approval(by="erin"))
