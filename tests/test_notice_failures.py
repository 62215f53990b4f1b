"""A notice that cannot go out never holds up a follow-up, and is kept as failed with its reason.

Under the time-skipping server a postmortem's draft goes overdue, so the ladder mails its owner,
the manager and the council through a real SMTP server on loopback (aiosmtpd); the draft is then
submitted and approved, and its action item must start whatever became of those notices.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from followthrough.actions import act
from followthrough.domain.draft import parse_draft
from followthrough.domain.incident import parse_incident
from followthrough.domain.notice import OutboxStatus
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import Approval, DraftSubmission
from followthrough.notices.delivery import Mailer, SmtpServer
from followthrough.notices.render import Links
from followthrough.storage import Store
from followthrough.temporal.client import start_postmortem
from tests.conftest import SmtpCapture, eventually, running_worker, skip
from tests.factories import draft_data, incident_data
from workflows.action_item import ActionItemWorkflow
from workflows.postmortem import PostmortemWorkflow

REFUSED = "maria@example.com"  # the payments manager: the ladder's second step


class RefusingSmtp(SmtpCapture):
    """Accepts mail like SmtpCapture, but answers 550 for one mailbox and counts each try."""

    tries: int = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address == REFUSED:
            self.tries += 1
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def refusing_smtp() -> Iterator[RefusingSmtp]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    capture = RefusingSmtp(port=port)
    controller = Controller(capture, hostname="127.0.0.1", port=port)
    controller.start()
    yield capture
    controller.stop()


@pytest.fixture
def time_skipping(own_time_skipping: WorkflowEnvironment) -> WorkflowEnvironment:
    return own_time_skipping


@pytest.fixture
async def queue(
    time_skipping: WorkflowEnvironment,
    sqlite_store: Store,
    refusing_smtp: RefusingSmtp,
    tmp_path: Any,
) -> AsyncIterator[str]:
    mailer = Mailer(
        sender="Followthrough <followthrough@localhost>",
        outbox_dir=tmp_path / "outbox",
        links=Links(temporal_ui="http://127.0.0.1:8233"),
        smtp=SmtpServer(hostname="127.0.0.1", port=refusing_smtp.port),
    )
    async with running_worker(time_skipping.client, sqlite_store, mailer) as name:
        yield name


async def overdue_then_approved(
    env: WorkflowEnvironment, queue: str, policy: Policy, **incident: Any
) -> str:
    """A SEV2 postmortem left three weeks without a draft, then submitted and approved."""
    client = env.client
    now = await env.get_current_time()
    parsed = parse_incident(incident_data(now), policy)
    # What is already stored may predate today's edge rules: start from the model itself.
    stored = parsed.model_copy(update=incident)
    pm_id = (await start_postmortem(client, stored, policy, task_queue=queue)).workflow_id
    await skip(env, timedelta(days=21))  # owner, manager and council are all told
    today = await env.get_current_time()
    draft = parse_draft(draft_data(today))
    await act(
        client, pm_id, PostmortemWorkflow.submit_draft, DraftSubmission(by="alice", draft=draft)
    )
    await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
    return pm_id


async def item_started(client: Client, item_id: str) -> bool:
    for _ in range(200):
        try:
            await client.get_workflow_handle(item_id).query(ActionItemWorkflow.snapshot)
            return True
        except RPCError:
            await asyncio.sleep(0.05)
    return False


async def test_a_title_with_line_breaks_is_mailed_on_one_line_and_the_items_start(
    time_skipping: WorkflowEnvironment,
    queue: str,
    sqlite_store: Store,
    refusing_smtp: RefusingSmtp,
    policy: Policy,
) -> None:
    title = "Checkout 502s\r\nBcc: everyone@example.org\nafter a config push"
    pm_id = await overdue_then_approved(time_skipping, queue, policy, title=title)

    assert await item_started(time_skipping.client, f"{pm_id}-item-1")
    overdue = [m for m in refusing_smtp.messages if "Overdue draft" in str(m["Subject"])]
    assert overdue, "the owner was told of the overdue draft"
    subject = str(overdue[0]["Subject"])
    assert "Checkout 502s Bcc: everyone@example.org after a config push" in subject
    assert all(m["Bcc"] is None for m in refusing_smtp.messages)  # the title added no header


async def test_a_refused_recipient_is_tried_once_kept_as_failed_and_the_ladder_goes_on(
    time_skipping: WorkflowEnvironment,
    queue: str,
    sqlite_store: Store,
    refusing_smtp: RefusingSmtp,
    policy: Policy,
) -> None:
    pm_id = await overdue_then_approved(time_skipping, queue, policy)

    assert await item_started(time_skipping.client, f"{pm_id}-item-1")
    # 550 is for good: never retried, one try per message to maria (her overdue-draft step and,
    # as a reviewer, the draft's hand-off).
    to_maria = [
        m for m in sqlite_store.outbox.messages(postmortem_id=pm_id) if REFUSED in m.recipients
    ]
    assert len(to_maria) == 2 and refusing_smtp.tries == len(to_maria)
    failed = await eventually(
        lambda: [
            m
            for m in sqlite_store.outbox.messages(postmortem_id=pm_id)
            if m.recipients == [REFUSED]
        ]
    )
    assert [m.status for m in failed] == [OutboxStatus.FAILED]
    assert failed[0].error is not None and "550" in failed[0].error
    # The council's step came after the refused one, and went out.
    council = [m for m in refusing_smtp.messages if "grace@example.com" in str(m["To"])]
    assert council and "Overdue draft" in str(council[0]["Subject"])
