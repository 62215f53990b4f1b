"""Told at every hand-off: real workflows on the time-skipping server, real storage and a real SMTP
server on loopback. Each hand-off reaches exactly the people it lands on, once, also after the
worker restarts."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtplib import SMTPResponseException
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.notices import NoticeActivities
from followthrough.actions import act
from followthrough.domain import handoffs, steps
from followthrough.domain.notice import (
    HANDOFF_KINDS,
    DigestRequest,
    NoticeDelivery,
    NoticeKind,
    OutboxMessage,
    OutboxStatus,
)
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    ActionItemState,
    Approval,
    ChangeRequest,
    DoneClaim,
    ExtensionDecision,
    ExtensionRequest,
    PostmortemState,
    Reassignment,
    Rejection,
    Verification,
    extension_decision_refusal,
)
from followthrough.notices.delivery import Mailer
from followthrough.notices.render import Links, render_notice
from followthrough.storage import Store
from followthrough.temporal.worker import build_worker
from tests.api_support import Api, loopback_policy
from tests.conftest import SmtpCapture, eventually, running_worker, skip
from tests.factories import draft_data
from tests.lifecycle import start, submit, wait_for_item
from workflows.action_item import ActionItemWorkflow
from workflows.council_digest import CouncilDigestWorkflow
from workflows.postmortem import PostmortemWorkflow


def handoff_mail(smtp: SmtpCapture) -> list[EmailMessage]:
    kinds = {k.value for k in HANDOFF_KINDS}
    return [m for m in smtp.messages if m["X-Followthrough-Kind"] in kinds]


def told(smtp: SmtpCapture, kind: NoticeKind) -> list[set[str]]:
    """Who each message of `kind` went to (one set per message)."""
    return [
        {a.strip() for a in str(m["To"]).split(",")}
        for m in smtp.messages
        if m["X-Followthrough-Kind"] == kind.value
    ]


def emails(policy: Policy, *names: str) -> set[str]:
    return {policy.email_of(n) for n in names}


async def wait_for(smtp: SmtpCapture, kind: NoticeKind, count: int = 1) -> None:
    await eventually(lambda: len(told(smtp, kind)) >= count, seconds=30)


def no_key_twice(smtp: SmtpCapture) -> None:
    keys = Counter(str(m["X-Followthrough-Key"]) for m in smtp.messages)
    assert [k for k, n in keys.items() if n > 1] == []


async def test_every_hand_off_tells_the_people_it_lands_on_once(
    time_skipping: WorkflowEnvironment,
    store: Store,
    smtp_mailer: Mailer,
    smtp_server: SmtpCapture,
    policy: Policy,
) -> None:
    client = time_skipping.client  # no time skipped: the module's server will do
    now: datetime = await time_skipping.get_current_time()
    async with running_worker(client, store, smtp_mailer) as queue:
        pm_id = await start(client, policy, queue, now, commander="alice")

        # Opened: the owner, with the due date and a way to write it.
        await wait_for(smtp_server, NoticeKind.POSTMORTEM_OPENED)
        assert told(smtp_server, NoticeKind.POSTMORTEM_OPENED) == [emails(policy, "alice")]
        opened = next(
            m for m in smtp_server.messages if m["X-Followthrough-Kind"] == "postmortem_opened"
        )
        body = opened.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert "yours to write" in text and f"postmortem submit {pm_id}" in text

        # Submitted: each reviewer. Changes requested: the owner, with the reason.
        await submit(client, pm_id, "alice", draft_data(now))
        await wait_for(smtp_server, NoticeKind.DRAFT_SUBMITTED)
        assert told(smtp_server, NoticeKind.DRAFT_SUBMITTED) == [emails(policy, *policy.reviewers)]
        await act(
            client,
            pm_id,
            PostmortemWorkflow.request_changes,
            ChangeRequest(by="erin", reason="name the canary percentage"),
        )
        await wait_for(smtp_server, NoticeKind.CHANGES_REQUESTED)
        assert told(smtp_server, NoticeKind.CHANGES_REQUESTED) == [emails(policy, "alice")]
        changes = next(
            m for m in smtp_server.messages if m["X-Followthrough-Kind"] == "changes_requested"
        ).get_body(("plain",))
        assert changes is not None and "name the canary percentage" in changes.get_content()

        # Resubmitted (a new version: the reviewers hear again), approved: owner and item owners.
        await submit(client, pm_id, "alice", draft_data(now))
        await wait_for(smtp_server, NoticeKind.DRAFT_SUBMITTED, 2)
        pm = await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
        assert pm.state is PostmortemState.TRACKING
        await wait_for(smtp_server, NoticeKind.POSTMORTEM_APPROVED)
        assert told(smtp_server, NoticeKind.POSTMORTEM_APPROVED) == [
            emails(policy, "alice", "bob", "carol")
        ]

        # Each item: its owner is told it is theirs.
        await wait_for(smtp_server, NoticeKind.ITEM_ASSIGNED, 2)
        assert sorted(map(sorted, told(smtp_server, NoticeKind.ITEM_ASSIGNED))) == sorted(
            [sorted(emails(policy, "bob")), sorted(emails(policy, "carol"))]
        )
        first, second = f"{pm_id}-item-1", f"{pm_id}-item-2"

        # Reassigned: the new owner (reassigned) and the previous one (reassigned away).
        await act(
            client,
            first,
            ActionItemWorkflow.reassign,
            Reassignment(by="maria", to="alice", reason="bob is on leave"),
        )
        await wait_for(smtp_server, NoticeKind.REASSIGNED_AWAY)
        await wait_for(smtp_server, NoticeKind.REASSIGNED)
        assert told(smtp_server, NoticeKind.REASSIGNED) == [emails(policy, "alice")]
        assert told(smtp_server, NoticeKind.REASSIGNED_AWAY) == [emails(policy, "bob")]

        # Claimed done, no verifier named: the team's manager. Rejected: the owner, reason said.
        await act(client, first, ActionItemWorkflow.claim_done, DoneClaim(by="alice", evidence="x"))
        await wait_for(smtp_server, NoticeKind.DONE_CLAIMED)
        assert told(smtp_server, NoticeKind.DONE_CLAIMED) == [emails(policy, "maria")]
        await act(
            client, first, ActionItemWorkflow.reject, Rejection(by="maria", reason="no page yet")
        )
        await wait_for(smtp_server, NoticeKind.CLAIM_REJECTED)
        assert told(smtp_server, NoticeKind.CLAIM_REJECTED) == [emails(policy, "alice")]

        # The named verifier is told of the claim; verified: the owner.
        await act(
            client, second, ActionItemWorkflow.claim_done, DoneClaim(by="carol", evidence="y")
        )
        await wait_for(smtp_server, NoticeKind.DONE_CLAIMED, 2)
        assert told(smtp_server, NoticeKind.DONE_CLAIMED)[1] == emails(policy, "pat")
        await act(client, second, ActionItemWorkflow.verify, Verification(by="pat"))
        await wait_for(smtp_server, NoticeKind.ITEM_VERIFIED)
        assert told(smtp_server, NoticeKind.ITEM_VERIFIED) == [emails(policy, "carol")]
        assert (await wait_for_item(client, second)).state is ActionItemState.VERIFIED

        # More time asked: the manager and every council member, who each may decide it.
        reopened = await wait_for_item(client, first)
        asked = ExtensionRequest(
            by="alice", until=reopened.due + timedelta(days=7), reason="waiting on the vendor"
        )
        await act(client, first, ActionItemWorkflow.request_extension, asked)
        await wait_for(smtp_server, NoticeKind.EXTENSION_REQUESTED)
        assert told(smtp_server, NoticeKind.EXTENSION_REQUESTED) == [
            emails(policy, "maria", *policy.council)
        ]

    no_key_twice(smtp_server)
    # Every hand-off is also in the outbox once, with the same recipients.
    outbox = [m for m in store.outbox.messages() if m.kind in HANDOFF_KINDS]
    assert len(outbox) == len({m.dedupe_key for m in outbox}) == len(handoff_mail(smtp_server))


@asynccontextmanager
async def worker_on(
    client: Client, store: Store, mailer: Mailer, queue: str
) -> AsyncIterator[None]:
    """A worker that leaves its workflows running when it stops (a restart, not the end)."""
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = build_worker(
            client,
            store,
            executor,
            mailer,
            loopback_policy(),
            task_queue=queue,
            sticky_queue_timeout=timedelta(seconds=1),  # the next worker takes over at once
        )
        async with worker:
            yield


async def test_a_retried_delivery_and_a_restarted_worker_tell_nobody_twice(
    dev_server: WorkflowEnvironment,
    sqlite_store: Store,
    smtp_mailer: Mailer,
    smtp_server: SmtpCapture,
    policy: Policy,
) -> None:
    client = dev_server.client
    store = sqlite_store
    refused: list[str] = []
    accept = smtp_server.handle_DATA

    async def busy_once(server: Any, session: Any, envelope: Any) -> str:
        """The mail server is busy for the first "postmortem opened": the activity retries."""
        if b"X-Followthrough-Kind: postmortem_opened" in envelope.content and not refused:
            refused.append("opened")
            return "451 4.3.0 try again later"
        return await accept(server, session, envelope)

    smtp_server.handle_DATA = busy_once  # type: ignore[method-assign]
    queue = f"test-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    async with worker_on(client, store, smtp_mailer, queue):
        pm_id = await start(client, policy, queue, now, commander="alice")
        await wait_for(smtp_server, NoticeKind.POSTMORTEM_OPENED)
        await submit(client, pm_id, "alice", draft_data(now))
        await wait_for(smtp_server, NoticeKind.DRAFT_SUBMITTED)
    assert refused == ["opened"]

    # A new worker replays the postmortem's history (its notices included) and goes on.
    try:
        async with worker_on(client, store, smtp_mailer, queue):
            await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
            await wait_for(smtp_server, NoticeKind.ITEM_ASSIGNED, 2)
            await wait_for(smtp_server, NoticeKind.POSTMORTEM_APPROVED)
    finally:
        for workflow_id in [pm_id, f"{pm_id}-item-1", f"{pm_id}-item-2"]:
            with suppress(RPCError):
                await client.get_workflow_handle(workflow_id).terminate("test over")
    assert told(smtp_server, NoticeKind.POSTMORTEM_OPENED) == [emails(policy, "alice")]
    assert len(told(smtp_server, NoticeKind.DRAFT_SUBMITTED)) == 1
    assert len(told(smtp_server, NoticeKind.POSTMORTEM_APPROVED)) == 1
    no_key_twice(smtp_server)


async def test_an_optional_postmortem_offers_the_team_to_opt_in(
    time_skipping: WorkflowEnvironment,
    store: Store,
    smtp_mailer: Mailer,
    smtp_server: SmtpCapture,
    policy: Policy,
) -> None:
    client = time_skipping.client
    now: datetime = await time_skipping.get_current_time()
    async with running_worker(client, store, smtp_mailer) as queue:
        pm_id = await start(client, policy, queue, now, severity="SEV3")
        pm = await client.get_workflow_handle_for(PostmortemWorkflow.run, pm_id).query(
            PostmortemWorkflow.snapshot
        )
        assert pm.state is PostmortemState.OPTIONAL and pm.team is not None
        await wait_for(smtp_server, NoticeKind.OPT_IN_OFFERED)
        team = policy.teams[pm.team]
        assert told(smtp_server, NoticeKind.OPT_IN_OFFERED) == [
            emails(policy, *team.members, team.manager)
        ]
        assert told(smtp_server, NoticeKind.POSTMORTEM_OPENED) == []


def test_each_hand_off_renders_its_words_and_where_to_act(policy: Policy) -> None:
    """Built by the domain's functions, worded by the templates, with the dashboard's page."""
    from tests.test_notices import NOW, postmortem_with_an_item

    pm, it = postmortem_with_an_item(policy, "INC-5")
    links = Links(temporal_ui="http://127.0.0.1:8233", public_url="https://ft.example")
    reviewed = pm.model_copy(update={"draft_version": 1, "state": PostmortemState.IN_REVIEW})
    claimed = it.model_copy(update={"state": ActionItemState.DONE_CLAIMED})
    page = f"https://ft.example/postmortems/{pm.id}"
    cases = [  # (notice, its item, its words, the page its reader acts on)
        (handoffs.opened_notice(pm, policy, NOW), None, "yours to write", f"{page}/draft"),
        (
            handoffs.draft_submitted_notice(reviewed, policy, NOW),
            None,
            "awaits your review",
            f"{page}/review",
        ),
        (
            handoffs.changes_requested_notice(
                reviewed, policy, ChangeRequest(by="erin", reason="more detail"), NOW
            ),
            None,
            "erin requested changes to version 1 of your draft",
            f"{page}/draft",
        ),
        (handoffs.assigned_notice(it, policy, NOW), it, "is yours", page),
        (
            handoffs.done_claimed_notice(
                claimed, policy, DoneClaim(by="bob", evidence="PR 7"), NOW
            ),
            claimed,
            "bob claimed 'Alert on checkout 5xx ratio' done, pointing to: PR 7",
            page,
        ),
    ]
    for notice, with_item, words, acted_on in cases:
        assert notice is not None
        email = render_notice(notice, reviewed, with_item, [], links)
        assert words in email.text, (notice.kind, email.text)
        assert f"Open it: {acted_on}\n" in email.text, (notice.kind, email.text)
        assert f'href="{acted_on}"' in email.html, (notice.kind, email.html)
        assert email.subject.startswith("[INC-5")


def test_an_extension_request_reaches_everyone_who_may_decide_it(policy: Policy) -> None:
    """Exactly the people whose decision the workflow would take: told of it, never refused."""
    from tests.test_notices import NOW, postmortem_with_an_item

    _, it = postmortem_with_an_item(policy, "INC-6")
    request = ExtensionRequest(by=it.owner, until=it.due + timedelta(days=7), reason="vendor")
    asked = steps.request_extension(it, request, NOW).state
    notice = handoffs.extension_requested_notice(asked, policy, request, NOW)
    told = {r.name for r in notice.to}
    assert told == {policy.manager_of_team(it.team), *policy.council}
    for person in sorted(policy.people):
        decision = ExtensionDecision(by=person, approve=True)
        allowed = extension_decision_refusal(asked, decision, policy) is None
        assert allowed == (person in told), person


async def test_a_daily_digest_holds_hand_offs_and_delivers_each_once_escalations_stay_immediate(
    own_time_skipping: WorkflowEnvironment,
    store: Store,
    smtp_mailer: Mailer,
    smtp_server: SmtpCapture,
    policy: Policy,
) -> None:
    client = own_time_skipping.client  # two weeks skipped: a server of its own
    now: datetime = await own_time_skipping.get_current_time()
    store.preferences.choose("bob", NoticeDelivery.DAILY, now)
    async with running_worker(client, store, smtp_mailer) as queue:
        pm_id = await start(client, policy, queue, now, commander="alice")
        await submit(client, pm_id, "alice", draft_data(now))
        await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
        await wait_for(smtp_server, NoticeKind.ITEM_ASSIGNED)  # carol's: she takes them at once
        await wait_for(smtp_server, NoticeKind.POSTMORTEM_APPROVED)
        first = f"{pm_id}-item-1"  # bob's

        def held() -> bool:
            # Recorded pending first, then held: wait for its last word, not its first.
            assigned = store.outbox.message(f"{first}/assigned")
            return assigned is not None and assigned.status is OutboxStatus.HELD

        await eventually(held)

        # Bob's copies are held: the approval went to alice and carol only, his item to nobody.
        assert told(smtp_server, NoticeKind.POSTMORTEM_APPROVED) == [
            emails(policy, "alice", "carol")
        ]
        assert told(smtp_server, NoticeKind.ITEM_ASSIGNED) == [emails(policy, "carol")]

        # The ladder's reminder (an escalation) reaches bob at once, digest or not.
        await skip(own_time_skipping, timedelta(days=14))
        reminders = [m for m in smtp_server.messages if m["X-Followthrough-Kind"] == "item_step"]
        assert emails(policy, "bob") in [{str(m["To"])} for m in reminders]

        # The day's digest: one email to bob with both held notices; run again, nothing more.
        at = await own_time_skipping.get_current_time()
        for _ in range(2):
            await client.execute_workflow(
                CouncilDigestWorkflow.run,
                DigestRequest(period="day", at=at),
                id=f"handoff-digest-{uuid.uuid4().hex[:8]}",
                task_queue=queue,
            )
        digests = [m for m in smtp_server.messages if m["X-Followthrough-Kind"] == "handoff_digest"]
        assert [str(m["To"]) for m in digests] == [policy.email_of("bob")]
        body = digests[0].get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert "Yours to do: 'Alert on checkout 5xx ratio'" in text
        assert "Approved: the postmortem for" in text
        # A later run finds nothing waiting: each held copy went out once.
        await client.execute_workflow(
            CouncilDigestWorkflow.run,
            DigestRequest(period="day", at=at + timedelta(days=1)),
            id=f"handoff-digest-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        again = [m for m in smtp_server.messages if m["X-Followthrough-Kind"] == "handoff_digest"]
        assert len(again) == 1
    no_key_twice(smtp_server)


def hold_for_digests(store: Store, key: str, people: list[str], at: datetime) -> None:
    """A hand-off as the notice activity leaves it for people who chose a daily digest."""
    addresses = {person: f"{person}@example.com" for person in people}
    store.outbox.claim(
        OutboxMessage(
            dedupe_key=key,
            kind=NoticeKind.ITEM_ASSIGNED,
            postmortem_id="INC-8",
            action_item_id="INC-8-item-1",
            recipients=list(addresses.values()),
            subject=f"Yours to do: {key}",
            text=f"The words of {key}.",
            html="",
            status=OutboxStatus.HELD,
            created_at=at,
            sent_at=None,
        )
    )
    store.preferences.hold(key, addresses, at)


def digested(smtp: SmtpCapture) -> dict[str, list[str]]:
    """Whose digests went out, each as the held notices it carried."""
    found: dict[str, list[str]] = {}
    for m in smtp.messages:
        if m["X-Followthrough-Kind"] == NoticeKind.HANDOFF_DIGEST.value:
            body = m.get_body(("plain",))
            assert body is not None
            carried = re.findall(r"The words of (\S+)\.", body.get_content())
            found.setdefault(str(m["To"]), []).extend(carried)
    return found


@pytest.mark.parametrize("abandoned", ["retried", "next run", "gathered, then cancelled"])
async def test_a_digest_run_abandoned_partway_leaves_nothing_unsent_and_nothing_twice(
    store: Store, smtp_mailer: Mailer, smtp_server: SmtpCapture, policy: Policy, abandoned: str
) -> None:
    """bob's digest goes out, then the run stops before carol's: the mail server is busy and the
    activity is retried (same run), or given up and the next day's run goes on, or the run is
    cancelled right after taking carol's notices. Either way the next run sends carol's."""
    day = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    hold_for_digests(store, "INC-8-item-1/assigned", ["bob", "carol"], day - timedelta(hours=5))
    hold_for_digests(store, "INC-8-item-2/assigned", ["carol"], day - timedelta(hours=4))
    activities = NoticeActivities(store, smtp_mailer, policy)
    run = ActivityEnvironment().run
    accept = smtp_server.handle_DATA

    async def busy_for_carol(server: Any, session: Any, envelope: Any) -> str:
        if b"X-Followthrough-Kind: handoff_digest" in envelope.content and any(
            "carol" in to for to in envelope.rcpt_tos
        ):
            return "451 4.3.0 try again later"
        return await accept(server, session, envelope)

    if abandoned == "gathered, then cancelled":
        await run(activities.send_council_digest, DigestRequest(period="day", at=day))
        hold_for_digests(store, "INC-8-item-3/assigned", ["carol"], day + timedelta(hours=1))
        store.preferences.gather(
            "carol", "handoff-digest/carol/cancelled", day + timedelta(hours=2)
        )
        smtp_server.messages.clear()
        assert digested(smtp_server) == {}
        expected = {"carol@example.com": ["INC-8-item-3/assigned"]}
    else:
        smtp_server.handle_DATA = busy_for_carol  # type: ignore[method-assign]
        with pytest.raises(SMTPResponseException):
            await run(activities.send_council_digest, DigestRequest(period="day", at=day))
        smtp_server.handle_DATA = accept  # type: ignore[method-assign]
        assert digested(smtp_server) == {"bob@example.com": ["INC-8-item-1/assigned"]}
        expected = {
            "bob@example.com": ["INC-8-item-1/assigned"],
            "carol@example.com": ["INC-8-item-1/assigned", "INC-8-item-2/assigned"],
        }
    later = day if abandoned == "retried" else day + timedelta(days=1)
    for _ in range(2):  # and once more: nothing is left to send
        await run(activities.send_council_digest, DigestRequest(period="day", at=later))
    assert digested(smtp_server) == expected
    no_key_twice(smtp_server)
    # The outbox says what became of every digest: none is left pending.
    digests = [m for m in store.outbox.messages() if m.kind is NoticeKind.HANDOFF_DIGEST]
    assert OutboxStatus.PENDING not in {m.status for m in digests}


async def test_each_person_chooses_their_own_notices(api: Api) -> None:
    assert (await api.get("/api/me/notices", "bob")).json() == {"digest": "immediate"}
    chosen = await api.http.put(
        "/api/me/notices", headers=api._auth("bob"), json={"digest": "daily"}
    )
    assert chosen.status_code == 200, chosen.text
    assert (await api.get("/api/me/notices", "bob")).json() == {"digest": "daily"}
    assert (await api.get("/api/me/notices", "carol")).json() == {"digest": "immediate"}
    refused = await api.http.put(
        "/api/me/notices", headers=api._auth("bob"), json={"digest": "hourly"}
    )
    assert refused.status_code == 422 and "digest" in refused.text
    assert (await api.get("/api/me/notices", "bob")).json() == {"digest": "daily"}
    unknown = await api.http.put(
        "/api/me/notices", headers=api._auth("bob"), json={"digest": "daily", "person": "carol"}
    )
    assert unknown.status_code == 422  # nobody chooses for someone else
    assert (await api.http.get("/api/me/notices")).status_code == 401
