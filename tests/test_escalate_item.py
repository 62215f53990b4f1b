"""A ladder step is recorded and its notice sent by one activity (escalate_item): a retry writes
and sends nothing twice, and a record the database refuses for good still lets the owner hear."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from aiosmtplib import SMTPResponseException
from sqlalchemy import func, select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session
from temporalio.testing import ActivityEnvironment

from activities.notices import NoticeActivities
from followthrough.domain import steps
from followthrough.domain.escalation import plan_ladder
from followthrough.domain.notice import NoticeKind, OutboxStatus
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItemChange, ActionItemState, ItemEscalation
from followthrough.notices.delivery import Mailer
from followthrough.storage import Store
from followthrough.storage.tables import AuditEventRow
from tests.conftest import SmtpCapture
from tests.recorded import at, record_item, record_postmortem


def first_step(store: Store, policy: Policy) -> ItemEscalation:
    """bob's item reaches the first step of its ladder: the change and the notice it sends."""
    pm = record_postmortem(store, policy, "INC-77", "SEV2", {"resolved": at(2026, 11, 2)})
    item = record_item(
        store, pm, 1, state=ActionItemState.OPEN, opened=at(2026, 11, 3), due=date(2026, 11, 16)
    )
    ladder = policy.escalation.ladder(item.spec.priority.value)
    step = plan_ladder(item.due, ladder, policy.calendar)[0]
    taken = steps.escalate(item, policy, step, step.at)
    notice = steps.escalation_notice(taken.state, policy, step, step.at)
    return ItemEscalation(
        change=ActionItemChange(item=taken.state, event=taken.event), notice=notice
    )


def escalated_rows(store: Store, item_id: str) -> int:
    with Session(store.engine) as session:
        query = select(func.count()).where(
            AuditEventRow.workflow_id == item_id, AuditEventRow.action == "item.escalated"
        )
        return int(session.scalar(query) or 0)


async def test_a_step_retried_after_smtp_said_later_is_recorded_and_mailed_once(
    store: Store, policy: Policy, smtp_server: SmtpCapture, smtp_mailer: Mailer
) -> None:
    escalation = first_step(store, policy)
    item_id = escalation.change.item.id
    activities = NoticeActivities(store, smtp_mailer, policy)
    run = ActivityEnvironment().run
    accept = smtp_server.handle_DATA

    async def busy(server: Any, session: Any, envelope: Any) -> str:
        return "451 4.3.0 try again later"

    smtp_server.handle_DATA = busy  # type: ignore[method-assign]
    with pytest.raises(SMTPResponseException):  # the activity fails: Temporal retries it
        await run(activities.escalate_item, escalation)
    smtp_server.handle_DATA = accept  # type: ignore[method-assign]
    # The step was recorded before the email failed; the email waits in the outbox.
    assert escalated_rows(store, item_id) == 1
    (pending,) = store.outbox.messages(action_item_id=item_id)
    assert pending.status is OutboxStatus.PENDING and not smtp_server.messages

    for _ in range(2):  # the retry, and one more (a worker killed before it reported back)
        await run(activities.escalate_item, escalation)
    assert escalated_rows(store, item_id) == 1
    (sent,) = store.outbox.messages(action_item_id=item_id)
    assert (sent.kind, sent.status) == (NoticeKind.ITEM_STEP, OutboxStatus.SENT)
    assert [m["To"] for m in smtp_server.messages] == ["bob@example.com"]
    stored = store.records.action_item(item_id)
    assert stored is not None and [e.step for e in stored.escalations] == [escalation.notice.step]


async def test_a_step_the_database_refuses_for_good_is_still_mailed(
    store: Store,
    policy: Policy,
    smtp_server: SmtpCapture,
    smtp_mailer: Mailer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    escalation = first_step(store, policy)
    item_id = escalation.change.item.id

    def refuse(change: ActionItemChange) -> bool:
        raise DataError("INSERT INTO audit_events ...", None, ValueError("value too long"))

    monkeypatch.setattr(store.records, "record_action_item", refuse)
    activities = NoticeActivities(store, smtp_mailer, policy)
    status = await ActivityEnvironment().run(activities.escalate_item, escalation)
    assert status is OutboxStatus.SENT
    assert escalated_rows(store, item_id) == 0
    assert [m["To"] for m in smtp_server.messages] == ["bob@example.com"]
