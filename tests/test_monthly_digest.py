"""The council's monthly digest: the previous month's headline numbers by real email, once a month,
on a Temporal Schedule of its own.

The digest runs as the schedule runs it, CouncilDigestWorkflow with a month's DigestRequest, on the
time-skipping server (records on SQLite and PostgreSQL, an SMTP server on loopback); the schedule
itself on the dev server, which has schedules. The default policy: UTC, council grace and heidi.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
)
from temporalio.testing import WorkflowEnvironment

from activities.notices import previous_month
from followthrough.domain.notice import DigestRequest, OutboxStatus
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItemState
from followthrough.notices.delivery import Mailer, SmtpServer
from followthrough.notices.render import Links
from followthrough.storage import Store
from followthrough.temporal.schedules import ensure_digest_schedule
from tests.conftest import SmtpCapture, running_worker
from tests.recorded import at, minutes_after, note_tags, record_item, record_postmortem
from workflows.council_digest import CouncilDigestWorkflow

PUBLIC_URL = "https://followthrough.example.com"
FIRST_OF_NOVEMBER = at(2026, 11, 1, 9)  # when the schedule fires: 09:00 on the 1st


@pytest.fixture
def linking_mailer(smtp_server: SmtpCapture, tmp_path: Path) -> Mailer:
    """SMTP on loopback, and a public URL for the link to the Metrics page."""
    return Mailer(
        sender="Followthrough <followthrough@localhost>",
        outbox_dir=tmp_path / "outbox",
        links=Links(temporal_ui="http://127.0.0.1:8233", public_url=PUBLIC_URL),
        smtp=SmtpServer(hostname="127.0.0.1", port=smtp_server.port),
    )


@pytest.fixture
def october(store: Store, policy: Policy) -> None:
    """Three incidents resolved in October 2026, one each side of it."""
    a = record_postmortem(
        store, policy, "INC-201", "SEV1", minutes_after(at(2026, 10, 5, 10), resolved=120)
    )
    record_item(  # verified on time, 3 days after opening
        store,
        a,
        1,
        state=ActionItemState.VERIFIED,
        opened=at(2026, 10, 6),
        due=date(2026, 10, 20),
        verified=at(2026, 10, 9),
    )
    record_item(  # verified a day late, 7 days after opening
        store,
        a,
        2,
        state=ActionItemState.VERIFIED,
        opened=at(2026, 10, 6),
        due=date(2026, 10, 12),
        verified=at(2026, 10, 13),
    )
    b = record_postmortem(
        store, policy, "INC-202", "SEV2", minutes_after(at(2026, 10, 20, 10), resolved=120)
    )
    record_item(  # open past its due date
        store, b, 1, state=ActionItemState.OPEN, opened=at(2026, 10, 21), due=date(2026, 10, 30)
    )
    record_item(  # not due yet
        store, b, 2, state=ActionItemState.OPEN, opened=at(2026, 10, 21), due=date(2026, 11, 20)
    )
    c = record_postmortem(
        store, policy, "INC-203", "SEV2", minutes_after(at(2026, 10, 25, 10), resolved=60)
    )
    for pm, approved, tag in ((a, at(2026, 10, 8), "deploy"), (b, at(2026, 10, 23), "deploy")):
        note_tags(store, pm.id, pm.incident.resolved_at, approved, tag)
    note_tags(store, c.id, c.incident.resolved_at, at(2026, 10, 28), "capacity")
    september = record_postmortem(
        store, policy, "INC-200", "SEV1", minutes_after(at(2026, 9, 28, 10), resolved=60)
    )
    record_item(
        store,
        september,
        1,
        state=ActionItemState.OPEN,
        opened=at(2026, 9, 29),
        due=date(2026, 10, 2),
    )
    record_postmortem(  # November, before the digest runs
        store, policy, "INC-204", "SEV1", minutes_after(at(2026, 11, 1, 6), resolved=60)
    )


# Counted by hand from the records above, as of FIRST_OF_NOVEMBER.
HEADLINE = [
    ("Incidents", "3"),
    ("Follow-ups completed", "50%"),  # 2 of INC-201's verified, INC-202's 2 open
    ("On time", "33%"),  # 1 of 3: two verified (one late), one open past due
    ("Median time to verify", "5 days"),  # 3 and 7 days
    # INC-201 made it; INC-202's four weeks are not over; INC-203 had no action items.
    ("Follow-ups all verified within 4 weeks", "1 of 1 (100%)"),
    ("Incidents breaching a customer SLO", "0%"),
]
# Start and resolution only: SEV1 120 min; SEV2 120 and 60 min (median 1.5 h, p90 2 h).
COVERAGE = [
    ("Time to detect", "0 of 3 incidents"),
    ("Time to acknowledge", "0 of 3 incidents"),
    ("Time to mitigate", "0 of 3 incidents"),
    ("Time to resolve", "3 of 3 incidents"),
    ("Time to communicate", "0 of 3 incidents"),
]
SUBJECT = (
    "Reliability council monthly digest, 2026-10: 3 incidents, 50% of follow-ups completed, "
    "33% on time"
)


@pytest.fixture
async def queue(
    time_skipping: WorkflowEnvironment, store: Store, linking_mailer: Mailer
) -> AsyncIterator[str]:
    async with running_worker(time_skipping.client, store, linking_mailer) as name:
        yield name


async def digest(env: WorkflowEnvironment, queue: str, request: DigestRequest) -> OutboxStatus:
    return await env.client.execute_workflow(
        CouncilDigestWorkflow.run,
        request,
        id=f"digest-{uuid.uuid4().hex[:6]}",
        task_queue=queue,
    )


def plain_and_html(message: Any) -> tuple[str, str]:
    text, page = (message.get_body(preferencelist=(kind,)) for kind in ("plain", "html"))
    assert text is not None and page is not None
    return text.get_content().replace("\r\n", "\n"), page.get_content()


async def test_the_council_gets_last_months_numbers_once(
    time_skipping: WorkflowEnvironment,
    queue: str,
    store: Store,
    october: None,
    smtp_server: SmtpCapture,
) -> None:
    monthly = DigestRequest(at=FIRST_OF_NOVEMBER, period="month")
    assert await digest(time_skipping, queue, monthly) is OutboxStatus.SENT
    assert await digest(time_skipping, queue, monthly) is OutboxStatus.SENT  # recorded, not resent

    [message] = smtp_server.messages
    assert str(message["Subject"]) == SUBJECT
    assert str(message["To"]) == "grace@example.com, heidi@example.com"
    text, page = plain_and_html(message)
    for label, value in HEADLINE:
        assert re.search(rf"^  {re.escape(label)} +{re.escape(value)}$", text, re.MULTILINE), label
        assert re.search(rf">{re.escape(label)}</td><td[^>]*>{re.escape(value)}</td>", page), label
    # Each response figure with how many incidents it stands on: like PagerDuty's, these
    # incidents said only when they started and resolved.
    for label, value in COVERAGE:
        assert re.search(rf"^  {re.escape(label)} +{re.escape(value)}$", text, re.MULTILINE), label
        assert re.search(rf">{re.escape(label)}</td><td[^>]*>{re.escape(value)}</td>", page), label
    assert "  SEV2 (2 incidents)\n" in text
    assert re.search(r"^    Time to resolve +1\.5 h / 2 h \(2 of 2\)$", text, re.MULTILINE)
    assert re.search(r"^    Time to detect +— / — \(0 of 2\)$", text, re.MULTILINE)
    assert re.search(r">Time to resolve</td><td[^>]*>2 h / 2 h \(1 of 1\)</td>", page)
    assert "The response times of 3 of 3 incidents come from" in text
    # The repeat factor, with its postmortems; "capacity" came only once.
    assert (
        "  - deploy: 2 incidents\n      postmortem-generic-INC-201, postmortem-generic-INC-202"
        in text
    )
    assert "<strong>deploy</strong>" in page and "capacity" not in text + page
    link = f"{PUBLIC_URL}/reliability?month=2026-10"
    assert link in text and f'href="{link}"' in page
    stored = store.outbox.message("council-digest/monthly/2026-10")
    assert stored is not None and stored.kind == "monthly_digest" and stored.status == "sent"

    # The weekly digest of the same morning is another email, under its own key.
    assert (
        await digest(time_skipping, queue, DigestRequest(at=FIRST_OF_NOVEMBER)) is OutboxStatus.SENT
    )
    assert smtp_server.subjects()[1].strip().startswith("Reliability council digest, 2026-W44:")
    assert len(smtp_server.messages) == 2


async def test_a_month_without_incidents_still_reports_and_links_nowhere_without_a_url(
    time_skipping: WorkflowEnvironment, store: Store, smtp_mailer: Mailer, smtp_server: SmtpCapture
) -> None:
    async with running_worker(time_skipping.client, store, smtp_mailer) as queue:
        request = DigestRequest(at=at(2027, 3, 1, 9), period="month")
        assert await digest(time_skipping, queue, request) is OutboxStatus.SENT

    [message] = smtp_server.messages
    assert str(message["Subject"]) == "Reliability council monthly digest, 2027-02: 0 incidents"
    text, page = plain_and_html(message)
    assert re.search(r"^  Incidents +0$", text, re.MULTILINE)
    assert "none: no contributing factor was shared by two incidents" in text
    assert "/reliability?" not in text + page


def test_previous_month() -> None:
    assert previous_month(date(2026, 11, 1)) == "2026-10"
    assert previous_month(date(2026, 11, 30)) == "2026-10"
    assert previous_month(date(2027, 1, 1)) == "2026-12"


# --- the schedule ------------------------------------------------------------------------------


async def schedule_runs(client: Client, handle: ScheduleHandle, count: int) -> list[OutboxStatus]:
    """Wait for the schedule to have started `count` runs; each run's result, oldest first."""
    for _ in range(300):
        started = (await handle.describe()).info.recent_actions
        if len(started) >= count:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the schedule never started {count} runs")
    results = []
    for action in sorted(started, key=lambda a: a.started_at):
        run = action.action
        assert isinstance(run, ScheduleActionExecutionStartWorkflow)
        results.append(await client.get_workflow_handle(run.workflow_id).result())
    return results


async def test_the_monthly_schedule_runs_on_the_first_at_the_start_of_the_working_day(
    dev_server: WorkflowEnvironment,
    sqlite_store: Store,
    smtp_mailer: Mailer,
    smtp_server: SmtpCapture,
    policy: Policy,
) -> None:
    client = dev_server.client
    async with running_worker(client, sqlite_store, smtp_mailer) as queue:
        schedule_id = await ensure_digest_schedule(client, policy, "month", task_queue=queue)
        assert schedule_id == f"council-digest-monthly-{queue}"
        handle = client.get_schedule_handle(schedule_id)
        try:
            # A second worker finds it and leaves it alone.
            assert await ensure_digest_schedule(client, policy, "month", task_queue=queue) == (
                schedule_id
            )
            described = (await handle.describe()).schedule
            [calendar] = described.spec.calendars
            assert [(r.start, r.end) for r in calendar.day_of_month] == [(1, 1)]
            assert [(r.start, r.end) for r in calendar.hour] == [(9, 9)]  # workday_starts
            assert [(r.start, r.end) for r in calendar.minute] == [(0, 0)]
            assert described.spec.time_zone_name == "UTC"
            action = described.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert action.workflow == "CouncilDigestWorkflow" and action.task_queue == queue
            [request] = await client.data_converter.decode(list(action.args), [DigestRequest])
            assert request == DigestRequest(period="month")

            # Triggered now, it reports the month before this one; triggered again, nothing more.
            month = previous_month(policy.calendar.local_date(datetime.now(UTC)))
            await handle.trigger()
            assert await schedule_runs(client, handle, 1) == [OutboxStatus.SENT]
            [message] = smtp_server.messages
            assert (
                str(message["Subject"])
                == f"Reliability council monthly digest, {month}: 0 incidents"
            )
            await handle.trigger()
            assert await schedule_runs(client, handle, 2) == [OutboxStatus.SENT] * 2
            assert len(smtp_server.messages) == 1
        finally:
            await handle.delete()


@pytest.mark.parametrize(
    ("period", "name", "weekdays"),
    [("week", "council-digest", [(1, 1)]), ("day", "handoff-digest", [(0, 6)])],
)
async def test_the_weekly_and_daily_digests_keep_their_schedules(
    dev_server: WorkflowEnvironment,
    policy: Policy,
    period: Literal["week", "day"],
    name: str,
    weekdays: list[tuple[int, int]],
) -> None:
    """One function makes every digest's schedule; each keeps the id workers already made."""
    client = dev_server.client
    queue = f"test-{uuid.uuid4().hex[:8]}"
    schedule_id = await ensure_digest_schedule(client, policy, period, task_queue=queue)
    assert schedule_id == f"{name}-{queue}"
    handle = client.get_schedule_handle(schedule_id)
    try:
        described = (await handle.describe()).schedule
        [calendar] = described.spec.calendars
        assert [(r.start, r.end) for r in calendar.day_of_week] == weekdays
        assert [(r.start, r.end) for r in calendar.hour] == [(9, 9)]  # workday_starts
        action = described.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.id == f"{name}-{queue}-run"
        [request] = await client.data_converter.decode(list(action.args), [DigestRequest])
        assert request == DigestRequest(period=period)
    finally:
        await handle.delete()
