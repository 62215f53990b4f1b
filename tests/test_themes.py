"""Repeating causes reach the council: a factor tag in three postmortems within the window.

The time-skipping server runs the workflows; a real SMTP server on loopback (aiosmtpd) captures
what the council would read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from followthrough.actions import act
from followthrough.domain.draft import parse_draft
from followthrough.domain.incident import parse_incident
from followthrough.domain.notice import HANDOFF_KINDS, NoticeKind
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import Approval, DraftSubmission
from followthrough.notices.delivery import Mailer
from followthrough.render import theme_detail
from followthrough.storage import Store
from followthrough.temporal.client import start_postmortem
from tests.conftest import SmtpCapture, eventually, running_worker
from tests.factories import draft_data, incident_data
from workflows.postmortem import PostmortemWorkflow


@pytest.fixture
async def queue(
    own_time_skipping: WorkflowEnvironment, sqlite_store: Store, smtp_mailer: Mailer
) -> AsyncIterator[str]:
    async with running_worker(own_time_skipping.client, sqlite_store, smtp_mailer) as name:
        yield name


async def approve_postmortem(
    client: Client, queue: str, policy: Policy, now: datetime, title: str, tags: list[str]
) -> tuple[str, str]:
    """A SEV2 incident's postmortem through review with factors tagged `tags`: (incident, pm)."""
    incident = parse_incident(incident_data(now, title=title), policy)
    pm_id = (await start_postmortem(client, incident, policy, task_queue=queue)).workflow_id
    draft = draft_data(now)
    draft["contributing_factors"] = [
        {"description": f"Factor tagged {tag}", "tags": [tag]} for tag in tags
    ]
    submission = DraftSubmission(by="alice", draft=parse_draft(draft))
    await act(client, pm_id, PostmortemWorkflow.submit_draft, submission)
    await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
    return incident.id, pm_id


async def noted(store: Store, pm_id: str) -> None:
    """Wait until the approval's theme count is recorded (its audit event follows)."""
    await eventually(
        lambda: (
            any(e.action == "draft.approved" for e in store.records.audit_trail(pm_id))
            and store.records.action_item(f"{pm_id}-item-1") is not None
        )
    )


async def test_the_third_postmortem_with_a_tag_tells_the_council_once(
    own_time_skipping: WorkflowEnvironment,
    queue: str,
    sqlite_store: Store,
    smtp_server: SmtpCapture,
    policy: Policy,
) -> None:
    client = own_time_skipping.client
    store = sqlite_store
    now = await own_time_skipping.get_current_time()
    titles = [
        "Checkout 502s after a deploy",
        "Billing errors after a release",
        "Gateway timeouts after a rollout",
    ]
    tags = [["deploy", "capacity"], ["deploy"], ["deploy", "capacity"]]
    done: list[tuple[str, str]] = []
    for title, tagged in zip(titles[:2], tags[:2], strict=True):
        done.append(await approve_postmortem(client, queue, policy, now, title, tagged))
        await noted(store, done[-1][1])
    await asyncio.sleep(0.5)
    assert smtp_server.without_handoffs() == []  # two of a tag are not a theme yet
    assert store.themes.all() == []

    done.append(await approve_postmortem(client, queue, policy, now, titles[2], tags[2]))
    await eventually(lambda: len(smtp_server.without_handoffs()) == 2)
    # The theme's email, and the council decision it opens (tests/test_council_decisions*.py).
    [message, opened] = sorted(
        smtp_server.without_handoffs(),
        key=lambda m: m["X-Followthrough-Kind"] == "council_decision",
    )
    assert opened["X-Followthrough-Kind"] == NoticeKind.COUNCIL_DECISION
    assert message["X-Followthrough-Kind"] == NoticeKind.RECURRING_THEME
    assert str(message["To"]).split(", ") == ["grace@example.com", "heidi@example.com"]
    assert "deploy" in str(message["Subject"])
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    body = text.get_content()
    for (incident_id, pm_id), title in zip(done, titles, strict=True):
        assert incident_id in body and title in body and "SEV2" in body
        assert incident_id in html.get_content()
        assert f"{pm_id}-item-1: Alert on checkout 5xx ratio" in body
    assert "owner bob (payments)" in body and "owner carol (platform)" in body
    assert "Pause feature work for payments" in body
    assert now.date().isoformat() in body

    [theme] = store.themes.all()
    assert theme.tag == "deploy" and theme.reached_by == done[2][1]
    assert theme.postmortem_ids == sorted(
        (pm for _, pm in done), key=lambda pm: theme.postmortem_ids.index(pm)
    )
    assert set(theme.postmortem_ids) == {pm for _, pm in done}
    sent = [
        m.kind
        for m in store.outbox.messages()
        if m.kind not in HANDOFF_KINDS and m.kind is not NoticeKind.COUNCIL_DECISION
    ]
    assert sent == [NoticeKind.RECURRING_THEME]
    assert any(e.action == "theme.reached" for e in store.records.audit_trail(done[2][1]))
    shown = theme_detail(theme).splitlines()  # as `followthrough theme list` shows it
    assert shown[0].startswith("deploy: 3 postmortems whose incidents resolved")
    assert f"(reached by {done[2][1]})" in shown[0]
    assert shown[1:] == [f"    {pm}" for pm in theme.postmortem_ids]

    # A fourth within the window joins the theme; nothing more is sent.
    _, fourth = await approve_postmortem(client, queue, policy, now, "Deploy again", ["deploy"])
    await noted(store, fourth)
    await asyncio.sleep(0.5)
    council = [m for m in smtp_server.without_handoffs() if "heidi@example.com" in str(m["To"])]
    assert len(council) == 2, smtp_server.subjects()  # (the WIP cap queued an item: maria hears)
    assert [m.kind.value for m in store.outbox.messages()].count("recurring_theme") == 1
    [theme] = store.themes.all()
    assert fourth in theme.postmortem_ids and len(theme.postmortem_ids) == 4
