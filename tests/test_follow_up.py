"""Follow-ups cannot be forgotten: the escalation ladder on durable timers, by real email.

Under the time-skipping server an item lives through weeks of simulated business days; a real SMTP
server on loopback (aiosmtpd) captures what would reach people's inboxes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from followthrough.actions import ActionRefused, act
from followthrough.domain.calendar import BusinessCalendar
from followthrough.domain.draft import parse_draft
from followthrough.domain.incident import parse_incident
from followthrough.domain.notice import HANDOFF_KINDS, DigestRequest, OutboxStatus
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    ActionItem,
    ActionItemState,
    Approval,
    DoneClaim,
    DraftSubmission,
    ExtensionDecision,
    ExtensionRequest,
    Reassignment,
    RiskAcceptanceRequest,
    Verification,
)
from followthrough.notices.delivery import Mailer
from followthrough.storage import Store
from followthrough.temporal.client import start_postmortem
from tests.conftest import SmtpCapture, eventually, running_worker, skip
from tests.factories import draft_data, incident_data
from workflows.action_item import ActionItemWorkflow
from workflows.council_digest import CouncilDigestWorkflow
from workflows.postmortem import PostmortemWorkflow


def next_weekday(after: date, weekday: int) -> date:
    """The first date strictly after `after` that falls on `weekday` (Monday = 0)."""
    return after + timedelta(days=(weekday - after.weekday() - 1) % 7 + 1)


def at_nine(day: date) -> datetime:
    return datetime.combine(day, time(9, 0), tzinfo=UTC)


@pytest.fixture
def time_skipping(own_time_skipping: WorkflowEnvironment) -> WorkflowEnvironment:
    return own_time_skipping


@pytest.fixture
async def now(time_skipping: WorkflowEnvironment) -> datetime:
    return await time_skipping.get_current_time()


@pytest.fixture
def due(now: datetime) -> date:
    """A Tuesday two to three weeks ahead: its ladder crosses weekends and the holiday below."""
    return next_weekday(now.date() + timedelta(days=14), 1)


@pytest.fixture
def holiday_policy(policy: Policy, due: date) -> Policy:
    """The default policy, with the Thursday after the due date a public holiday."""
    holiday = due + timedelta(days=2)
    return policy.model_copy(update={"calendar": BusinessCalendar(holidays=[holiday])})


@pytest.fixture
async def queue(
    time_skipping: WorkflowEnvironment, store: Store, smtp_mailer: Mailer
) -> AsyncIterator[str]:
    async with running_worker(time_skipping.client, store, smtp_mailer) as name:
        yield name


async def approved_item(
    client: Client, queue: str, policy: Policy, now: datetime, due: date, **item: Any
) -> str:
    """A SEV2 postmortem through review, with one P1 action item due on `due`; its item id."""
    incident = parse_incident(incident_data(now), policy)
    pm_id = (await start_postmortem(client, incident, policy, task_queue=queue)).workflow_id
    draft = draft_data(now)
    draft["action_items"] = [{**draft["action_items"][0], "due": due.isoformat(), **item}]
    await act(
        client,
        pm_id,
        PostmortemWorkflow.submit_draft,
        DraftSubmission(by="alice", draft=parse_draft(draft)),
    )
    await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
    item_id = f"{pm_id}-item-1"
    handle = client.get_workflow_handle_for(ActionItemWorkflow.run, item_id)
    for _ in range(100):
        try:
            await handle.query(ActionItemWorkflow.snapshot)
            return item_id
        except RPCError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{item_id} never started")


def approved_item_handoffs(item_id: str) -> list[str]:
    """Every hand-off notice `approved_item` leaves, by dedupe key: the postmortem opened (alice),
    its draft submitted (the reviewers) and approved (alice and bob), the item assigned (bob)."""
    pm_id = item_id.rsplit("-item-", 1)[0]
    return sorted(
        [
            f"{pm_id}/opened",
            f"{pm_id}/draft-v1/submitted",
            f"{pm_id}/draft-v1/approved",
            f"{item_id}/assigned",
        ]
    )


async def test_the_ladder_climbs_on_business_days_and_sends_each_step_once(
    time_skipping: WorkflowEnvironment,
    queue: str,
    store: Store,
    smtp_server: SmtpCapture,
    holiday_policy: Policy,
    now: datetime,
    due: date,
) -> None:
    client = time_skipping.client
    item_id = await approved_item(client, queue, holiday_policy, now, due)

    await skip(time_skipping, timedelta(days=60))

    # Tuesday due date; the Thursday after it is a holiday.
    expected = [
        # (when, to, subject starts with)
        (at_nine(due - timedelta(days=4)), ["bob@example.com"], "Reminder"),  # Friday before
        (at_nine(due), ["bob@example.com"], "Due today"),  # Tuesday
        (at_nine(due + timedelta(days=3)), ["maria@example.com"], "Overdue 2 business days"),
        (
            at_nine(due + timedelta(days=8)),
            ["grace@example.com", "heidi@example.com"],
            "Council escalation",
        ),  # Wed after: Mon(3), Tue(4), Wed(5)
    ]
    messages = smtp_server.without_handoffs()  # the ladder's own (item assigned is not one)
    assert len(messages) == len(expected), smtp_server.subjects()
    for message, (when, to, subject) in zip(messages, expected, strict=True):
        assert parsedate_to_datetime(str(message["Date"])) == when
        assert str(message["To"]).split(", ") == to
        assert subject in str(message["Subject"]), str(message["Subject"])
        assert message.is_multipart()
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        assert text is not None and html is not None
        body = text.get_content()
        assert "A page fires within 5 minutes when the checkout 5xx ratio exceeds 2%" in body
        assert f"followthrough action done {item_id}" in body or "Council" in subject

    council = messages[-1].get_body(preferencelist=("plain",))
    assert council is not None
    council_text = council.get_content()
    assert "5 business days overdue" in council_text
    assert "accept-risk" in council_text and "reassign" in council_text
    for earlier in ("Reminder", "Due today", "Overdue 2 business days"):
        assert earlier in council_text  # what was sent before

    stored = store.records.action_item(item_id)
    assert stored is not None
    assert [(e.step, e.days_overdue) for e in stored.escalations] == [
        ("reminder", 0),
        ("due", 0),
        ("manager", 2),
        ("council", 5),
    ]
    ladder = [
        m for m in store.outbox.messages(action_item_id=item_id) if m.kind not in HANDOFF_KINDS
    ]
    assert [m.status.value for m in ladder] == ["sent"] * 4


async def test_an_approved_extension_replans_the_ladder_and_a_spent_budget_is_refused(
    time_skipping: WorkflowEnvironment,
    queue: str,
    store: Store,
    smtp_server: SmtpCapture,
    policy: Policy,
    now: datetime,
    due: date,
) -> None:
    client = time_skipping.client
    item_id = await approved_item(client, queue, policy, now, due)
    later = due + timedelta(days=14)  # a Tuesday too

    def ask(until: date, by: str = "bob") -> Any:
        return act(
            client,
            item_id,
            ActionItemWorkflow.request_extension,
            ExtensionRequest(by=by, until=until, reason="Waiting on the LB vendor"),
        )

    def decide(by: str, approve: bool, reason: str = "") -> Any:
        decision = ExtensionDecision(by=by, approve=approve, reason=reason)
        return act(client, item_id, ActionItemWorkflow.decide_extension, decision)

    with pytest.raises(ActionRefused, match=r"only the owner \(bob\) can ask for more time"):
        await ask(later, by="maria")
    with pytest.raises(ActionRefused, match="must be after the current one"):
        await ask(due - timedelta(days=1))
    await ask(later)
    with pytest.raises(ActionRefused, match=r"bob owns .* cannot decide their own extension"):
        await decide("bob", True)
    with pytest.raises(ActionRefused, match=r"only bob's manager \(maria\) or a council member"):
        await decide("pat", True)
    item = await decide("maria", True, "Vendor confirmed")
    assert item.due == later and item.plan == 2

    # The second extension is denied with a reason; the third would exceed the budget of 2.
    await ask(later + timedelta(days=7))
    with pytest.raises(ActionRefused, match="say why the extension is denied"):
        await decide("grace", False)
    item = await decide("grace", False, "Ship the alert first")
    assert item.due == later
    await ask(later + timedelta(days=7))
    await act(
        client,
        item_id,
        ActionItemWorkflow.decide_extension,
        ExtensionDecision(by="grace", approve=True),
    )
    with pytest.raises(ActionRefused, match=r"used its extension budget \(2 of 2\)"):
        await ask(later + timedelta(days=30))

    await skip(time_skipping, timedelta(days=70))
    subjects = smtp_server.subjects()
    assert sum("Extension requested" in s for s in subjects) == 3
    assert sum("Extension denied" in s for s in subjects) == 1
    assert sum("Extension approved" in s for s in subjects) == 2
    # Nothing of the first plan fired (it was replaced before its reminder was due); the final
    # plan, for the last approved date, climbed to the council exactly once.
    final = await client.get_workflow_handle_for(ActionItemWorkflow.run, item_id).query(
        ActionItemWorkflow.snapshot
    )
    assert final.due == later + timedelta(days=7)
    assert [(e.step, e.plan) for e in final.escalations] == [
        ("reminder", 3),
        ("due", 3),
        ("manager", 3),
        ("council", 3),
    ]
    assert sum("Council escalation" in s for s in subjects) == 1
    denial = next(m for m in smtp_server.messages if "denied" in str(m["Subject"]))
    assert str(denial["To"]) == "bob@example.com"
    body = denial.get_body(preferencelist=("plain",))
    assert body is not None and "Ship the alert first" in body.get_content()


async def test_reassignment_tells_the_new_owner_and_the_ladder_follows_them(
    time_skipping: WorkflowEnvironment,
    queue: str,
    smtp_server: SmtpCapture,
    policy: Policy,
    now: datetime,
    due: date,
) -> None:
    client = time_skipping.client
    item_id = await approved_item(client, queue, policy, now, due)
    with pytest.raises(ActionRefused, match="only the owner, bob's manager or a council member"):
        await act(
            client, item_id, ActionItemWorkflow.reassign, Reassignment(by="carol", to="alice")
        )
    with pytest.raises(ActionRefused, match="'carol' is not in team 'payments'"):
        await act(
            client, item_id, ActionItemWorkflow.reassign, Reassignment(by="maria", to="carol")
        )
    item = await act(
        client,
        item_id,
        ActionItemWorkflow.reassign,
        Reassignment(by="maria", to="carol", team="platform", reason="LB expertise"),
    )
    assert (item.owner, item.team) == ("carol", "platform")

    await skip(time_skipping, timedelta(days=30))
    first, *rest = smtp_server.without_handoffs()
    assert str(first["To"]) == "carol@example.com"
    assert "You now own" in str(first["Subject"])
    body = first.get_body(preferencelist=("plain",))
    assert body is not None and "maria made you the owner" in body.get_content()
    later = {str(m["Subject"]).split("]")[1].strip().split(":")[0]: str(m["To"]) for m in rest}
    assert later["Reminder"] == "carol@example.com"
    assert later["Overdue 2 business days"] == "pat@example.com"  # platform's manager
    # The previous owner hears it is no longer theirs, once.
    away = [m for m in smtp_server.messages if m["X-Followthrough-Kind"] == "reassigned_away"]
    assert [str(m["To"]) for m in away] == ["bob@example.com"]


async def test_only_the_council_accepts_risk_and_it_closes_the_postmortem(
    time_skipping: WorkflowEnvironment,
    queue: str,
    store: Store,
    smtp_server: SmtpCapture,
    policy: Policy,
    now: datetime,
    due: date,
) -> None:
    client = time_skipping.client
    item_id = await approved_item(client, queue, policy, now, due)
    pm_id = item_id.removesuffix("-item-1")
    for by in ("bob", "maria", "erin"):
        with pytest.raises(ActionRefused, match="only the reliability council can accept"):
            await act(
                client,
                item_id,
                ActionItemWorkflow.accept_risk,
                RiskAcceptanceRequest(by=by, reason="Legacy path retires in Q1"),
            )
    with pytest.raises(ActionRefused, match="write down why the risk is acceptable"):
        await act(
            client,
            item_id,
            ActionItemWorkflow.accept_risk,
            RiskAcceptanceRequest(by="grace", reason="ok"),
        )
    item = await act(
        client,
        item_id,
        ActionItemWorkflow.accept_risk,
        RiskAcceptanceRequest(by="grace", reason="Legacy checkout retires in Q1"),
    )
    assert item.state is ActionItemState.RISK_ACCEPTED

    outcome = await client.get_workflow_handle_for(PostmortemWorkflow.run, pm_id).result()
    assert outcome.state.value == "closed"
    trail = store.records.audit_trail(pm_id)
    accepted = item.risk_acceptance
    assert accepted is not None
    assert trail[-1].detail.splitlines() == [
        "all 1 action items resolved: 0 verified, 1 with their risk accepted by the council",
        f"- {item.id} '{item.spec.title}': risk accepted by {accepted.by}: {accepted.reason}",
    ]
    # People's actions are answered before their emails go out; the email follows, once (the
    # item's other notices run in the background too, so it need not be the last to arrive).
    await eventually(lambda: any("Risk accepted" in s for s in smtp_server.subjects()))
    accepted_mail = [m for m in smtp_server.messages if "Risk accepted" in str(m["Subject"])]
    assert len(accepted_mail) == 1
    assert str(accepted_mail[0]["To"]) == "bob@example.com, maria@example.com"


async def test_items_beyond_the_wip_cap_wait_with_their_clock_stopped(
    time_skipping: WorkflowEnvironment,
    queue: str,
    store: Store,
    smtp_server: SmtpCapture,
    policy: Policy,
    now: datetime,
    due: date,
) -> None:
    client = time_skipping.client
    teams = dict(policy.teams)
    teams["payments"] = teams["payments"].model_copy(update={"wip_cap": 1})
    capped = policy.model_copy(update={"teams": teams})

    first = await approved_item(client, queue, capped, now, due)
    item = await client.get_workflow_handle_for(ActionItemWorkflow.run, first).query(
        ActionItemWorkflow.snapshot
    )
    assert item.state is ActionItemState.OPEN

    # A second postmortem brings a P2 and then a P1 item for the same team: both must wait.
    incident = parse_incident(incident_data(now, id=f"INC-{uuid.uuid4().hex[:6]}"), capped)
    pm_id = (await start_postmortem(client, incident, capped, task_queue=queue)).workflow_id
    draft = draft_data(now)
    base = {**draft["action_items"][0], "due": due.isoformat()}
    draft["action_items"] = [
        {**base, "title": "Runbook for lb-config rollback", "priority": "P2"},
        {**base, "title": "Block empty backend pools in the linter", "priority": "P1"},
    ]
    await act(
        client,
        pm_id,
        PostmortemWorkflow.submit_draft,
        DraftSubmission(by="alice", draft=parse_draft(draft)),
    )
    await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
    runbook, linter = f"{pm_id}-item-1", f"{pm_id}-item-2"

    async def state(item_id: str) -> ActionItem:
        handle = client.get_workflow_handle_for(ActionItemWorkflow.run, item_id)
        for _ in range(200):
            try:
                found = await handle.query(ActionItemWorkflow.snapshot)
                if found.state is not ActionItemState.OPEN or found.escalations:
                    return found
            except RPCError:
                pass
            await asyncio.sleep(0.05)
        return await handle.query(ActionItemWorkflow.snapshot)

    assert (await state(runbook)).state is ActionItemState.QUEUED
    assert (await state(linter)).state is ActionItemState.QUEUED

    # A week later the first item is verified: the P1 item gets the slot before the older P2.
    await skip(time_skipping, timedelta(days=7))
    with pytest.raises(ActionRefused, match="queued behind its team's WIP cap"):
        await act(client, linter, ActionItemWorkflow.claim_done, DoneClaim(by="bob", evidence="x"))
    await act(client, first, ActionItemWorkflow.claim_done, DoneClaim(by="bob", evidence="PR #900"))
    await act(
        client, first, ActionItemWorkflow.verify, Verification(by="erin", note="Drill passed")
    )
    admitted = await client.get_workflow_handle_for(ActionItemWorkflow.run, linter).query(
        ActionItemWorkflow.snapshot
    )
    for _ in range(200):
        if admitted.state is ActionItemState.OPEN:
            break
        await asyncio.sleep(0.05)
        admitted = await client.get_workflow_handle_for(ActionItemWorkflow.run, linter).query(
            ActionItemWorkflow.snapshot
        )
    assert admitted.state is ActionItemState.OPEN
    calendar = capped.calendar
    waited = calendar.business_days_between(now.date(), (now + timedelta(days=7)).date())
    assert admitted.due == calendar.add_business_days(due, waited)
    still = await client.get_workflow_handle_for(ActionItemWorkflow.run, runbook).query(
        ActionItemWorkflow.snapshot
    )
    assert still.state is ActionItemState.QUEUED

    queued_mail = [m for m in smtp_server.messages if "Queued at the WIP cap" in str(m["Subject"])]
    assert [str(m["To"]) for m in queued_mail] == ["maria@example.com"] * 2
    stored = store.records.action_item(linter)
    assert stored is not None
    # The query sees the admission as soon as the workflow takes it; its record activity may
    # still be on its way to the store.
    for _ in range(200):
        actions = [e.action for e in store.records.audit_trail(pm_id) if e.workflow_id == linter]
        if len(actions) >= 3:
            break
        await asyncio.sleep(0.05)
    assert actions[:3] == ["item.opened", "item.queued", "item.admitted"]


async def test_the_weekly_council_digest_lists_escalated_items_once_a_week(
    time_skipping: WorkflowEnvironment,
    queue: str,
    smtp_server: SmtpCapture,
    holiday_policy: Policy,
    now: datetime,
    due: date,
) -> None:
    client = time_skipping.client
    item_id = await approved_item(client, queue, holiday_policy, now, due)
    await skip(time_skipping, timedelta(days=30))  # well past the council step

    # As the schedule would run it, twice in one week (a retried or re-triggered run).
    monday = await time_skipping.get_current_time()

    async def digest() -> OutboxStatus:
        return await client.execute_workflow(
            CouncilDigestWorkflow.run,
            DigestRequest(at=monday),
            id=f"digest-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
        )

    assert await digest() is OutboxStatus.SENT
    assert await digest() is OutboxStatus.SENT  # the same week: recorded once, not resent
    digests = [m for m in smtp_server.messages if "council digest" in str(m["Subject"])]
    assert len(digests) == 1, [str(m["Subject"]) for m in digests]
    message = digests[0]
    assert str(message["To"]) == "grace@example.com, heidi@example.com"
    assert "1 escalated, 0 overdue, 0 risk accepted" in str(message["Subject"])
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    escalated = text.split("ESCALATED TO THE COUNCIL")[1].split("OVERDUE")[0]
    assert "Alert on checkout 5xx ratio" in escalated and item_id in escalated
    assert "business days overdue" in escalated


async def test_an_overdue_draft_and_then_an_overdue_review_climb_the_ladder(
    time_skipping: WorkflowEnvironment,
    queue: str,
    store: Store,
    smtp_server: SmtpCapture,
    policy: Policy,
    now: datetime,
) -> None:
    client = time_skipping.client
    incident = parse_incident(incident_data(now), policy)  # SEV2: draft due in 7 business days
    pm_id = (await start_postmortem(client, incident, policy, task_queue=queue)).workflow_id
    await skip(time_skipping, timedelta(days=21))

    calendar = policy.calendar
    resolved = calendar.local_date(incident.resolved_at)
    draft_due = calendar.add_business_days(resolved, 7)
    expected = [
        (at_nine(draft_due), "alice@example.com"),
        (at_nine(calendar.add_business_days(draft_due, 2)), "maria@example.com"),
        (at_nine(calendar.add_business_days(draft_due, 5)), "grace@example.com, heidi@example.com"),
    ]
    overdue = smtp_server.without_handoffs()  # the owner was also told it opened: not a step
    got = [(parsedate_to_datetime(str(m["Date"])), str(m["To"])) for m in overdue]
    assert got == expected
    assert all("Overdue draft" in str(m["Subject"]) for m in overdue)

    # The draft finally arrives; nobody reviews it: the reviewers hear of it when it is due.
    today = await time_skipping.get_current_time()
    await act(
        client,
        pm_id,
        PostmortemWorkflow.submit_draft,
        DraftSubmission(by="alice", draft=parse_draft(draft_data(today))),
    )
    review_due = calendar.add_business_days(calendar.local_date(today), 5)  # SEV2: 5 days
    await skip(time_skipping, at_nine(review_due) - today - timedelta(hours=1))
    assert not [m for m in smtp_server.messages if "Overdue review" in str(m["Subject"])]
    await skip(time_skipping, timedelta(days=14))
    reviews = [m for m in smtp_server.messages if "Overdue review" in str(m["Subject"])]
    assert [(parsedate_to_datetime(str(m["Date"])), str(m["To"])) for m in reviews] == [
        (
            at_nine(review_due),
            "alice@example.com, erin@example.com, frank@example.com, maria@example.com, "
            "pat@example.com",
        ),
        (at_nine(calendar.add_business_days(review_due, 2)), "maria@example.com"),
        (
            at_nine(calendar.add_business_days(review_due, 5)),
            "grace@example.com, heidi@example.com",
        ),
    ]
    actions = [e.action for e in store.records.audit_trail(pm_id)]
    assert actions.count("postmortem.escalated") == 6
