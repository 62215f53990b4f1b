"""Workers killed between ladder steps and in the middle of them: no step lost, none sent twice.

The ladder runs in real worker processes (`python worker.py`, as a user runs it) against the
time-skipping server, PostgreSQL and a real SMTP server on loopback (aiosmtpd). The test kills
workers with SIGKILL (no graceful shutdown, nothing flushed) at four points and restarts them:

1. idle, between the "due" and the "manager" steps; the manager step's timer then fires while no
   worker runs at all;
2. inside the manager step's storage activity, while its PostgreSQL transaction waits on a row lock
   the test holds;
3. inside the manager step's notice activity, while the SMTP server holds the DATA command open
   (the server then refuses the message: the mail was never accepted);
4. as soon as the outbox says the manager notice was sent, racing the activity's completion.

Two stand-ins for a production Temporal server are needed, both in this file:

- Temporal routes a workflow's next task to the sticky queue of the worker that ran it last. A real
  server moves the task to the normal queue when nobody polls the sticky queue within the
  worker's sticky_queue_schedule_to_start_timeout (10 s); the time-skipping test server never
  does, so a killed worker's workflows would wait forever. The test does what the real server
  does: it polls each dead worker's sticky queue and hands back anything it finds with
  RESET_STICKY_TASK_QUEUE, which puts the task on the normal queue. The sticky queue's name
  ("{pid}@{host}-{uuid}") is made in the worker's Rust core and never printed, so the workers
  reach Temporal through a byte-for-byte TCP relay that notes the names it sees go by.
- The test server's clock does not skip while a workflow or activity task is outstanding: it runs
  at wall-clock speed then. An activity abandoned by a killed worker is retried after its
  start_to_close_timeout in real seconds (10 s for storage, 60 s for notices; a ladder step beats
  and is retried 10 s after its worker died), so the test polls
  with bounds instead of sleeping, and lets the clock skip only once nothing is outstanding.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import gzip
import re
import signal
import socket
import subprocess
import threading
import time as wall
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from temporalio.api.enums.v1 import TaskQueueKind, WorkflowTaskFailedCause
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    PollWorkflowTaskQueueRequest,
    RespondWorkflowTaskFailedRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from followthrough.domain.notice import HANDOFF_KINDS
from followthrough.domain.policy import Policy
from tests.conftest import SmtpCapture, skip
from tests.faults import Relay, poll, quiet, retried_activities
from tests.processes import Followthrough
from tests.test_follow_up import approved_item, approved_item_handoffs, next_weekday
from workflows.action_item import ActionItemWorkflow

pytestmark = pytest.mark.postgres

# The default P1 ladder: (step, business days from due, subject contains, recipients).
LADDER = [
    ("reminder", -2, "Reminder", ["bob@example.com"]),
    ("due", 0, "Due today", ["bob@example.com"]),
    ("manager", 2, "Overdue 2 business days", ["maria@example.com"]),
    ("council", 5, "Council escalation", ["grace@example.com", "heidi@example.com"]),
]


# --- the stand-ins for a production Temporal server --------------------------------------------


class StickyQueues:
    """Each worker's sticky queue name, noted as its requests to Temporal go through a Relay."""

    def __init__(self) -> None:
        self.sticky: dict[int, str] = {}  # worker pid -> its sticky queue
        # The SDK's identity is "{pid}@{hostname}"; core appends "-{uuid}" for the sticky queue.
        self._name = re.compile(
            rb"(\d+)@" + re.escape(socket.gethostname().encode()) + rb"-[0-9a-f]{32}"
        )

    def watcher(self) -> Callable[[bytes], None]:
        """One per connection: the gRPC messages a worker sends, searched for the names."""
        frames = GrpcRequests()

        def watch(data: bytes) -> None:
            for message in frames.feed(data):
                for found in self._name.finditer(message):
                    self.sticky.setdefault(int(found.group(1)), found.group(0).decode())

        return watch


class GrpcRequests:
    """The gRPC messages in a client's HTTP/2 byte stream (DATA frames only; gzip undone)."""

    PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    def __init__(self) -> None:
        self.buffer = b""
        self.preface = False
        self.streams: dict[int, bytes] = {}

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.buffer += data
        if not self.preface:
            if len(self.buffer) < len(self.PREFACE):
                return
            self.buffer = self.buffer[len(self.PREFACE) :]
            self.preface = True
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[:3], "big")
            kind, flags = self.buffer[3], self.buffer[4]
            stream_id = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
            if len(self.buffer) < 9 + length:
                return
            payload, self.buffer = self.buffer[9 : 9 + length], self.buffer[9 + length :]
            if kind != 0:  # only DATA frames carry messages
                continue
            if flags & 0x8:  # PADDED
                payload = payload[1 : len(payload) - payload[0]]
            stream = self.streams.get(stream_id, b"") + payload
            while len(stream) >= 5:
                size = int.from_bytes(stream[1:5], "big")
                if len(stream) < 5 + size:
                    break
                message, compressed, stream = stream[5 : 5 + size], stream[0], stream[5 + size :]
                if compressed:
                    try:
                        message = gzip.decompress(message)
                    except (OSError, EOFError):
                        continue
                yield message
            self.streams[stream_id] = stream
            if flags & 0x1:  # END_STREAM
                self.streams.pop(stream_id, None)


async def hand_back_sticky_tasks(
    client: Client, sticky: str, queue: str, handed_back: list[str]
) -> None:
    """Do what a real server does with a dead worker's sticky queue: move its tasks on."""
    while True:
        try:
            task = await client.workflow_service.poll_workflow_task_queue(
                PollWorkflowTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(
                        name=sticky, kind=TaskQueueKind.TASK_QUEUE_KIND_STICKY, normal_name=queue
                    ),
                    identity="restart-test",
                )
            )
        except RPCError:
            await asyncio.sleep(0.2)
            continue
        if not task.task_token or task.HasField("query"):
            continue
        await client.workflow_service.respond_workflow_task_failed(
            RespondWorkflowTaskFailedRequest(
                namespace=client.namespace,
                task_token=task.task_token,
                cause=WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_STICKY_TASK_QUEUE,
                identity="restart-test",
            )
        )
        handed_back.append(task.workflow_execution.workflow_id)


# --- fault injection on the other servers ------------------------------------------------------


class HoldOneNotice:
    """Holds the SMTP DATA command of one notice open, then refuses it: it is never accepted."""

    def __init__(self, capture: SmtpCapture, key_suffix: str) -> None:
        self.accept = capture.handle_DATA
        self.key_suffix = key_suffix
        self.armed = False
        self.holding = threading.Event()
        self.release = threading.Event()
        self.refused: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=email.policy.default).parsebytes(envelope.content)
        key = str(message["X-Followthrough-Key"])
        if self.armed and key.endswith(self.key_suffix):
            self.armed = False
            self.holding.set()
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 300)
            finally:  # cancelled instead when the sender's connection drops first
                self.refused.append(key)
            return "451 4.3.0 Not accepted; try again later"
        return await self.accept(server, session, envelope)


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextlib.contextmanager
def row_locked(url: str, item_id: str) -> Iterator[psycopg.Connection[Any]]:
    """Lock the item's row, so that the next write to it waits inside its transaction."""
    with psycopg.connect(libpq(url)) as conn:
        conn.execute("SELECT id FROM action_items WHERE id = %s FOR UPDATE", (item_id,))
        try:
            yield conn
        finally:
            conn.rollback()


def waiting_on_a_lock(db: psycopg.Connection[Any]) -> list[str]:
    rows = db.execute(
        "SELECT query FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchall()
    return [str(r[0]) for r in rows]


HANDOFFS = sorted(kind.value for kind in HANDOFF_KINDS)


def outbox_rows(db: psycopg.Connection[Any], item_id: str) -> list[tuple[str, str]]:
    """The item's ladder notices in the outbox (not its hand-offs)."""
    rows = db.execute(
        "SELECT dedupe_key, status FROM outbox WHERE action_item_id = %s"
        " AND NOT (kind = ANY(%s)) ORDER BY created_at",
        (item_id, HANDOFFS),
    ).fetchall()
    return [(str(k), str(s)) for k, s in rows]


def handoff_rows(db: psycopg.Connection[Any], pm_id: str) -> list[tuple[str, str]]:
    """Every hand-off notice of the postmortem and its items in the outbox, by key."""
    rows = db.execute(
        "SELECT dedupe_key, status FROM outbox WHERE postmortem_id = %s"
        " AND kind = ANY(%s) ORDER BY dedupe_key",
        (pm_id, HANDOFFS),
    ).fetchall()
    return [(str(k), str(s)) for k, s in rows]


def escalation_events(db: psycopg.Connection[Any], item_id: str) -> list[tuple[int, str]]:
    rows = db.execute(
        "SELECT seq, detail FROM audit_events"
        " WHERE workflow_id = %s AND action = 'item.escalated' ORDER BY seq",
        (item_id,),
    ).fetchall()
    return [(int(seq), str(detail)) for seq, detail in rows]


def kill(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGKILL)
    worker.wait()


# --- the test ------------------------------------------------------------------------------------


async def test_killed_workers_lose_no_ladder_step_and_send_none_twice(
    time_skipping: WorkflowEnvironment,
    postgres_url: str,
    smtp_server: SmtpCapture,
    policy: Policy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = time_skipping.client
    queue = f"restarts-{uuid.uuid4().hex[:8]}"
    calendar = policy.calendar
    now = await time_skipping.get_current_time()
    due = next_weekday(now.date() + timedelta(days=14), 1)  # a Tuesday
    days: dict[str, date] = {
        step: calendar.add_business_days(due, offset) for step, offset, _, _ in LADDER
    }
    expected_at = {step: calendar.start_of(day) for step, day in days.items()}

    hold = HoldOneNotice(smtp_server, "/manager/plan-1")
    monkeypatch.setattr(smtp_server, "handle_DATA", hold.handle_DATA)
    handed_back: list[str] = []
    sweepers: list[asyncio.Task[None]] = []
    started = wall.monotonic()

    async def note(text: str) -> None:
        sim = await time_skipping.get_current_time()
        line = f"[{wall.monotonic() - started:6.1f}s wall | {sim:%a %d %b %H:%M:%S} sim] {text}"
        print(line)

    def item_messages() -> list[EmailMessage]:
        """The item's ladder emails (not its hand-offs)."""
        prefix = f"{item_id}/"
        return [
            m
            for m in smtp_server.messages
            if str(m["X-Followthrough-Key"]).startswith(prefix)
            and str(m["X-Followthrough-Kind"]) not in HANDOFFS
        ]

    async def skip_to(moment: datetime) -> None:
        await poll(lambda: quiet(client, [pm_id, item_id]), what="the workflows to go quiet")
        await skip(time_skipping, moment - await time_skipping.get_current_time())

    queues = StickyQueues()
    with Relay(client.service_client.config.target_host, watch=queues.watcher) as relay:
        ft = Followthrough.create(
            tmp_path, temporal_address=relay.address, database_url=postgres_url, task_queue=queue
        )
        ft.env["FOLLOWTHROUGH_SMTP_URL"] = f"smtp://127.0.0.1:{smtp_server.port}"
        ft.cli("db", "upgrade")
        db = psycopg.connect(libpq(postgres_url), autocommit=True)  # the test's reads

        async def start_worker() -> subprocess.Popen[bytes]:
            worker = ft.start_worker()

            def polling() -> bool:
                if worker.poll() is not None:
                    raise AssertionError(f"worker-{len(ft.workers) - 1} exited on start")
                return worker.pid in queues.sticky

            await poll(polling, what="the worker to poll its sticky queue", timeout=60)
            await note(f"worker-{len(ft.workers) - 1} (pid {worker.pid}) started")
            return worker

        async def kill_worker(worker: subprocess.Popen[bytes], why: str) -> None:
            kill(worker)
            await note(f"KILL worker-{ft.workers.index(worker)} (SIGKILL) {why}")
            sweepers.append(
                asyncio.create_task(
                    hand_back_sticky_tasks(client, queues.sticky[worker.pid], queue, handed_back)
                )
            )

        try:
            worker = await start_worker()
            item_id = await approved_item(client, queue, policy, now, due)
            pm_id = item_id.rsplit("-item-", 1)[0]
            await note(f"{item_id} opened, due {due:%a %d %b}")

            # The reminder and due steps, then a kill while the worker is idle between steps.
            await skip_to(datetime.combine(days["due"], time(12), tzinfo=UTC))
            await poll(lambda: len(item_messages()) >= 2, what="the first two notices")
            await poll(
                lambda: [s for _, s in outbox_rows(db, item_id)] == ["sent"] * 2,
                what="both notices recorded as sent",
            )
            await poll(lambda: quiet(client, [pm_id, item_id]), what="the worker to go idle")
            await kill_worker(worker, "idle between the due and manager steps")

            # The manager step's timer fires with no worker running.
            just_after = expected_at["manager"] + timedelta(seconds=1)
            await skip(time_skipping, just_after - await time_skipping.get_current_time())
            await note("manager step's timer fired with no worker running")

            # Kill 2: inside the storage activity, its transaction waiting on our row lock.
            with row_locked(postgres_url, item_id):
                worker = await start_worker()
                waiting = await poll(
                    lambda: waiting_on_a_lock(db),
                    what="the storage activity to wait on the row lock",
                    timeout=60,
                )
                statement = waiting[0].split(" (", 1)[0]  # INSERT INTO action_items
                await kill_worker(
                    worker, f"inside record_action_item, its transaction blocked at {statement!r}"
                )
            await note("row lock released; the killed worker's transaction was never committed")
            assert len(escalation_events(db, item_id)) == 2

            # Kill 3: inside the notice activity, while the SMTP server holds DATA open.
            hold.armed = True
            worker = await start_worker()
            await poll(hold.holding.is_set, what="the manager notice to reach SMTP DATA")
            await kill_worker(worker, "inside send_notice, SMTP DATA of the manager notice open")
            hold.release.set()
            await poll(lambda: hold.refused, what="the SMTP server to refuse the held message")
            await note(f"SMTP refused the held message {hold.refused[0]}")
            assert len(item_messages()) == 2

            # Kill 4: the moment the outbox says the manager notice went out, racing the
            # activity's completion report.
            worker = await start_worker()
            manager_key = f"{item_id}/manager/plan-1"
            await poll(
                lambda: (manager_key, "sent") in outbox_rows(db, item_id),
                what="the manager notice to be sent",
                every=0.005,
            )
            await kill_worker(worker, "right after the manager notice was recorded as sent")

            # A last worker carries the ladder to the council step.
            worker = await start_worker()
            await poll(lambda: quiet(client, [pm_id, item_id]), what="the manager step to finish")
            await note("manager step finished")
            await skip_to(datetime.combine(days["council"], time(12), tzinfo=UTC))
            await poll(lambda: len(item_messages()) >= 4, what="the council notice")
            await poll(lambda: quiet(client, [pm_id, item_id]), what="the council step to finish")
            await asyncio.sleep(1)  # anything sent twice would have arrived by now
            await note("council step finished")

            # --- checks ----------------------------------------------------------------------
            others = [m for m in smtp_server.messages if m not in item_messages()]
            print("SMTP also received", [str(m["Subject"]) for m in others])
            messages = item_messages()
            keys = [str(m["X-Followthrough-Key"]) for m in messages]
            print("checked: SMTP received", len(messages), "messages for the item:", keys)
            assert keys == [f"{item_id}/{step}/plan-1" for step, _, _, _ in LADDER]
            assert len({str(m["Message-ID"]) for m in messages}) == 4
            for message, (step, _, subject, to) in zip(messages, LADDER, strict=True):
                sent_at = parsedate_to_datetime(str(message["Date"]))
                print(f"checked: {step:8} Date {sent_at:%a %d %b %H:%M:%S}, {message['Subject']}")
                assert subject in str(message["Subject"])
                assert str(message["To"]).split(", ") == to
                if step == "manager":
                    # Processed when a worker came back: later that morning, never another day.
                    assert expected_at[step] <= sent_at < expected_at[step] + timedelta(hours=1)
                else:
                    assert sent_at == expected_at[step]

            events = escalation_events(db, item_id)
            print("checked: audit_events item.escalated", events)
            assert len(events) == 4
            assert len({seq for seq, _ in events}) == 4
            assert [detail.split(":", 1)[0] for _, detail in events] == [s for s, *_ in LADDER]

            outbox = outbox_rows(db, item_id)
            print("checked: outbox", outbox)
            assert outbox == [(f"{item_id}/{step}/plan-1", "sent") for step, *_ in LADDER]

            # Every hand-off (the postmortem opened, submitted and approved, the item assigned)
            # went out, each once, through all the kills.
            handed = handoff_rows(db, pm_id)
            print("checked: hand-offs", handed)
            expected = approved_item_handoffs(item_id)
            assert handed == [(key, "sent") for key in expected]
            delivered = [
                str(m["X-Followthrough-Key"])
                for m in smtp_server.messages
                if str(m["X-Followthrough-Kind"]) in HANDOFFS
            ]
            assert sorted(delivered) == expected

            handle = client.get_workflow_handle_for(ActionItemWorkflow.run, item_id)
            item = await handle.query(ActionItemWorkflow.snapshot)
            fired = Counter(e.step for e in item.escalations)
            print("checked: workflow escalations", dict(fired))
            assert fired == Counter(step for step, *_ in LADDER)
            print(
                f"injected: {len(ft.workers) - 1} kills; tasks handed back from dead workers' "
                f"sticky queues: {len(handed_back)}; SMTP refusals: {len(hold.refused)}"
            )
            print("observed in the item's history:", await retried_activities(client, item_id))
        except BaseException:
            for path in sorted(tmp_path.glob("worker-*.log")):
                print(f"--- {path.name} (last lines)")
                print("\n".join(path.read_text(errors="replace").splitlines()[-15:]))
            raise
        finally:
            hold.release.set()
            for sweeper in sweepers:
                sweeper.cancel()
            ft.stop_workers()
            db.close()
