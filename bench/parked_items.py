#!/usr/bin/env python
"""Parked items: N workflows parked on one durable timer each, all due at one planned moment.

A benchmark, not a test: it prints numbers and asserts none (the machine is small and noisy).
Two phases, each on a fresh Temporal dev server of its own (SQLite file in WAL mode) and a worker
process of its own, so each phase's memory and CPU are its own:

* baseline: a no-op workflow defined here. It sleeps until the planned moment, then runs one
  activity that writes one row to a SQLite file (the effect the client can see);
* followthrough: real ActionItemWorkflows on the product's worker (build_worker) with a policy
  whose one-step ladder ("due", tell the owner) fires at the planned moment: an `item.escalated`
  audit row, a rendered notice in the outbox table and an .eml file in the local outbox.

Measured per phase: start rate, worker (and server) RSS and CPU, and lateness at the planned
moment, both in workflow time (the row's own timestamp) and as seen by the client (polling the
row count). Run from the project root:

    python bench/parked_items.py --items 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import logging
import math
import os
import re
import shlex
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from temporalio import activity, workflow

# Should this file ever be imported into the workflow sandbox (see load_baseline_workflow),
# everything that is not the standard library comes from outside it, as in workflows/.
with workflow.unsafe.imports_passed_through():
    from sqlalchemy import ColumnElement, func, select
    from sqlalchemy.orm import Session
    from temporalio import __version__ as temporalio_version
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from followthrough.domain.calendar import WEEKDAYS
    from followthrough.domain.criteria import Manual
    from followthrough.domain.draft import ActionItemSpec, Priority
    from followthrough.domain.incident import Incident
    from followthrough.domain.policy import Policy, load_policy
    from followthrough.domain.postmortem import (
        SYSTEM_ACTOR,
        ActionItemStart,
        AuditEvent,
        PostmortemChange,
        PostmortemState,
        open_postmortem,
    )
    from followthrough.logging import configure_logging
    from followthrough.notices.delivery import Mailer
    from followthrough.notices.render import Links
    from followthrough.storage import Store
    from followthrough.storage.migrate import upgrade
    from followthrough.storage.tables import AuditEventRow, OutboxRow
    from followthrough.temporal.binaries import find_binary
    from followthrough.temporal.worker import build_worker
    from workflows import SEARCH_ATTRIBUTES
    from workflows.action_item import ActionItemWorkflow

PHASES = ("baseline", "followthrough")
BASELINE_WORKFLOW = "BenchParkedTimer"
BASELINE_ACTIVITY = "bench_fired"
EXECUTOR_THREADS = 16  # as followthrough/runtime.py
SDK_CACHE = 1000  # Worker's default max_cached_workflows, which build_worker keeps
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the baseline: a timer and one row --------------------------------------------------------


@workflow.defn(name=BASELINE_WORKFLOW)
class ParkedTimerWorkflow:
    @workflow.run
    async def run(self, planned: datetime) -> None:
        wait = planned - workflow.now()
        if wait > timedelta(0):
            await workflow.sleep(wait)
        await workflow.execute_activity(
            BASELINE_ACTIVITY,
            args=[workflow.info().workflow_id, workflow.now().isoformat()],
            start_to_close_timeout=timedelta(seconds=10),
        )


# The sandbox re-imports a workflow's module for every run (and keeps it while the run is
# cached), so the baseline runs a copy of the class above from a module of its own: measured here,
# registering it from this 900-line file instead costs about 3x the memory and CPU per workflow.
BASELINE_MODULE = "bench_parked_timer"
BASELINE_HEADER = f"""from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

BASELINE_WORKFLOW = {BASELINE_WORKFLOW!r}
BASELINE_ACTIVITY = {BASELINE_ACTIVITY!r}


"""


def load_baseline_workflow(directory: Path) -> type:
    """Write ParkedTimerWorkflow's source to a small module in `directory` and import it."""
    (directory / f"{BASELINE_MODULE}.py").write_text(
        BASELINE_HEADER + inspect.getsource(ParkedTimerWorkflow), encoding="utf-8"
    )
    sys.path.insert(0, str(directory))
    workflow_class: type = importlib.import_module(BASELINE_MODULE).ParkedTimerWorkflow
    return workflow_class


class FiredLog:
    """The baseline's effect: one row per fired workflow, in a SQLite file (WAL, like the Store)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def create(self) -> None:
        with contextlib.closing(self._connect()) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS fired "
                "(workflow_id TEXT PRIMARY KEY, fired_at TEXT NOT NULL, wall REAL NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @activity.defn(name=BASELINE_ACTIVITY)
    def fired(self, workflow_id: str, fired_at: str) -> None:
        self._conn().execute(
            "INSERT OR IGNORE INTO fired VALUES (?, ?, ?)", (workflow_id, fired_at, time.time())
        )

    def count(self) -> int:
        row = self._conn().execute("SELECT count(*) FROM fired").fetchone()
        return int(row[0])

    def fired_times(self) -> list[datetime]:
        rows = self._conn().execute("SELECT fired_at FROM fired").fetchall()
        return [datetime.fromisoformat(at) for (at,) in rows]

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()


# --- the followthrough phase's fixtures -------------------------------------------------------


def bench_policy(planned: datetime | None) -> Policy:
    """The shipped policy with no WIP caps, every day a working day and a one-step ladder.

    The one step ("due", 0 business days) fires at the due date's workday start, so with
    due = the planned moment's UTC date and workday_starts = its UTC time of day it fires exactly
    at the planned moment. workday_starts is a `time`, so whole seconds are fine.
    """
    data = load_policy().model_dump(mode="json")
    for team in data["teams"].values():
        team["wip_cap"] = None
    data["calendar"].update(timezone="UTC", working_days=list(WEEKDAYS), holidays=[])
    if planned is not None:
        data["calendar"]["workday_starts"] = planned.astimezone(UTC).time().isoformat()
    data["escalation"] = {
        "default": [{"name": "due", "business_days": 0, "notify": "owner"}],
        "by_priority": {},
    }
    return Policy.model_validate(data)


def record_postmortem(store: Store, policy: Policy, now: datetime) -> str:
    """The one postmortem every item belongs to (the action_items table's foreign key)."""
    incident = Incident(
        id=f"BENCH-{now:%Y%m%d%H%M%S}",
        title="Benchmark: parked action items",
        severity="SEV2",
        resolved_at=now - timedelta(hours=1),
        services=["checkout"],
        commander="alice",
    )
    pm = open_postmortem(incident, policy, now).model_copy(
        update={"state": PostmortemState.TRACKING, "last_seq": 1}
    )
    event = AuditEvent(
        workflow_id=pm.id,
        postmortem_id=pm.id,
        seq=1,
        at=now,
        actor=SYSTEM_ACTOR,
        action="postmortem.opened",
        detail="benchmark fixture",
    )
    store.records.record_postmortem(PostmortemChange(postmortem=pm, event=event))
    return pm.id


def owners(policy: Policy) -> list[tuple[str, str]]:
    """(owner, team): the first member of each team, so items spread over the teams."""
    return [(team.members[0], name) for name, team in sorted(policy.teams.items())]


def item_start(
    pm_id: str, number: int, planned: datetime, policy: Policy, people: list[tuple[str, str]]
) -> ActionItemStart:
    owner, team = people[number % len(people)]
    spec = ActionItemSpec(
        number=number,
        title=f"Page on the checkout 5xx ratio ({number})",
        owner=owner,
        team=team,
        due=planned.astimezone(UTC).date(),
        priority=Priority.P2,
        acceptance_criterion=Manual(
            description="A page fires within 5 minutes when the checkout 5xx ratio exceeds 2% "
            "for 5 minutes"
        ),
    )
    return ActionItemStart(
        item_id=f"{pm_id}-item-{number}", postmortem_id=pm_id, spec=spec, policy=policy
    )


def mailer(data_dir: Path) -> Mailer:
    return Mailer(
        sender="Followthrough <followthrough@localhost>",
        outbox_dir=data_dir / "outbox",
        links=Links(temporal_ui="http://127.0.0.1:8233"),
    )


def store_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'followthrough.db'}"


def count_rows(
    store: Store, table: type[AuditEventRow] | type[OutboxRow], where: ColumnElement[bool]
) -> int:
    with Session(store.engine) as session:
        return int(session.scalar(select(func.count()).select_from(table).where(where)) or 0)


def escalated_times(store: Store) -> list[datetime]:
    with Session(store.engine) as session:
        query = select(AuditEventRow.at).where(AuditEventRow.action == "item.escalated")
        return list(session.scalars(query))


# --- the worker process -----------------------------------------------------------------------


async def worker_main(args: argparse.Namespace) -> None:
    """One phase's worker, until SIGTERM, its parent going away, or its own deadline."""
    configure_logging(level=logging.INFO)  # the product's default; stderr goes to a log file
    client = await Client.connect(args.address, data_converter=pydantic_data_converter)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    data_dir = Path(args.data)
    parent = os.getppid()
    deadline = time.monotonic() + args.deadline
    store: Store | None = None
    fired: FiredLog | None = None
    with ThreadPoolExecutor(max_workers=EXECUTOR_THREADS) as executor:
        if args.worker == "baseline":
            fired = FiredLog(data_dir / "fired.db")
            worker = Worker(
                client,
                task_queue=args.task_queue,
                workflows=[load_baseline_workflow(data_dir)],
                activities=[fired.fired],
                activity_executor=executor,
                graceful_shutdown_timeout=timedelta(seconds=10),
            )
        else:
            store = Store(store_url(data_dir))
            worker = build_worker(
                client,
                store,
                executor,
                mailer(data_dir),
                bench_policy(None),  # only the council digest reads the worker's policy
                task_queue=args.task_queue,
            )
        try:
            async with worker:
                print("ready", flush=True)
                while not stop.is_set() and os.getppid() == parent:
                    if time.monotonic() > deadline:
                        print("worker deadline reached", file=sys.stderr, flush=True)
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            if store is not None:
                store.close()
            if fired is not None:
                fired.close()


# --- /proc: memory and CPU of the worker and the server ---------------------------------------


def proc_kib(pid: int, key: str) -> int | None:
    """VmRSS, VmHWM, ... of a process, in KiB; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return None


def proc_cpu(pid: int) -> float | None:
    """User plus system CPU seconds of a process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_of(pid: int | None) -> float:
    return (proc_cpu(pid) or 0.0) if pid is not None else 0.0


def child_named(name: str) -> int | None:
    """The dev server: the `temporal` child the SDK started for this process."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat.split("(", 1)[1].rsplit(")", 1)[0]
        if comm == name and int(stat.rsplit(")", 1)[1].split()[1]) == me:
            return int(entry.name)
    return None


# --- one phase --------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    name: str
    items: int
    concurrency: int
    margin: float = 0.0
    planned: datetime | None = None
    server_startup: float | None = None
    start_wall: float | None = None  # seconds from the first start call to the last answer
    start_latencies: list[float] = field(default_factory=list)
    start_failures: int = 0
    first_failure: str = ""
    starts_began: float | None = None  # relative to the planned moment (negative: before it)
    starts_done: float | None = None
    settled: float | None = None  # worker and server quiet, relative to the planned moment
    worker_rss_idle: int | None = None
    worker_rss_parked: int | None = None
    worker_rss_peak: int | None = None
    server_rss_parked: int | None = None
    server_rss_end: int | None = None
    worker_cpu_park: float | None = None  # CPU seconds from ready until the planned moment
    worker_cpu_fire: float | None = None  # from the planned moment until every effect is seen
    server_cpu_park: float | None = None
    server_cpu_fire: float | None = None
    fire_wall: float | None = None  # seconds the CPU "to fire" was counted over
    workflow_lateness: list[float] = field(default_factory=list)  # seconds, workflow time
    effect_samples: list[tuple[float, int]] = field(default_factory=list)  # (s after T, count)
    all_seen: float | None = None
    complete: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def parked_rate(self) -> float | None:
        """Items per second from the first start until all were parked and the worker and the
        server went quiet (settle needs 1 s of quiet to say so, hence the - 1)."""
        if self.settled is None or self.starts_began is None:
            return None
        return (self.items - self.start_failures) / (self.settled - self.starts_began - 1.0)

    @property
    def start_rate(self) -> float | None:
        if not self.start_wall:
            return None
        return (self.items - self.start_failures) / self.start_wall

    def effect_at(self, fraction: float) -> float | None:
        """Seconds after the planned moment when the client first saw this share of effects."""
        needed = max(1, math.ceil(fraction * self.items))
        return next((t for t, seen in self.effect_samples if seen >= needed), None)

    @property
    def effects_seen(self) -> int:
        return self.effect_samples[-1][1] if self.effect_samples else 0


def log(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {message}", file=sys.stderr, flush=True)


def default_margin(items: int) -> float:
    """Time from the worker being up to the planned moment: starting at 20 wf/s (half what the notes
    measured with one activity per workflow) plus 20 s, so every item is parked before it."""
    return 20.0 + items / 20.0


def default_cap(items: int, margin: float) -> float:
    return margin + 120.0 + items * 0.25


def worker_environment(root: Path, bytecode_cache: bool) -> dict[str, str]:
    """The worker's environment; with bytecode_cache, .pyc files go to a temporary directory.

    The sandbox imports each workflow's module afresh for every run. Where .pyc files exist, as
    in the pip-installed image (Dockerfile), that is an unmarshal; under PYTHONDONTWRITEBYTECODE
    with an editable install, as on this machine, it is a compile from source every time.
    """
    env = dict(os.environ)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    return env


def scan_worker_log(path: Path) -> str:
    """Warnings, errors and retried activities in a worker's log, in one line."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "worker log missing"
    levels = re.findall(r"\[(warning|error|critical)\s*\]", text)
    retries = sum(1 for attempt in re.findall(r"\battempt=(\d+)", text) if int(attempt) > 1)
    return (
        f"worker log: {levels.count('warning')} warnings, "
        f"{len(levels) - levels.count('warning')} errors, {retries} records/notices on a retry"
    )


async def spawn_worker(
    phase: str, address: str, task_queue: str, data_dir: Path, deadline: float, env: dict[str, str]
) -> asyncio.subprocess.Process:
    log_path = data_dir / "worker.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            phase,
            "--address",
            address,
            "--task-queue",
            task_queue,
            "--data",
            str(data_dir),
            "--deadline",
            str(int(deadline)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            env=env,
        )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=120)
    if line.strip() != b"ready":
        raise RuntimeError(f"the {phase} worker did not start; see {log_path} (--keep)")
    return process


async def stop_worker(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout=30)
    except TimeoutError:
        process.kill()
        await process.wait()


async def start_all(result: PhaseResult, start_one: Callable[[int], Awaitable[object]]) -> None:
    """Start items 1..N with at most `concurrency` start calls in flight."""
    gate = asyncio.Semaphore(result.concurrency)

    async def one(number: int) -> None:
        async with gate:
            began = time.perf_counter()
            try:
                await start_one(number)
            except Exception as err:  # counted and reported; the others carry on
                result.start_failures += 1
                result.first_failure = result.first_failure or f"{type(err).__name__}: {err}"
                return
            result.start_latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(one(number) for number in range(1, result.items + 1)))
    result.start_wall = time.perf_counter() - began


async def settle(
    until: float, pids: Sequence[int], ready: Callable[[], bool] | None = None
) -> float | None:
    """Wait until the worker and the server are quiet (under 15% of a core for 1 s) and `ready`
    holds; the wall-clock moment, or None if that did not happen before `until`."""
    previous = [proc_cpu(pid) or 0.0 for pid in pids]
    quiet = 0
    while time.time() < until:
        await asyncio.sleep(0.5)
        current = [proc_cpu(pid) or 0.0 for pid in pids]
        busy = any(now - before > 0.075 for now, before in zip(current, previous, strict=True))
        previous = current
        quiet = 0 if busy or (ready is not None and not ready()) else quiet + 1
        if quiet >= 2:
            return time.time()
    return None


async def run_phase(
    phase: str, args: argparse.Namespace, root: Path, margin: float, cap: float
) -> PhaseResult:
    result = PhaseResult(name=phase, items=args.items, concurrency=args.concurrency, margin=margin)
    data_dir = root / phase
    data_dir.mkdir()
    log(f"{phase}: starting a dev server (SQLite file, WAL) and a worker process")
    began = time.monotonic()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        ip="127.0.0.1",
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_database_filename=str(data_dir / "temporal.db"),
        dev_server_extra_args=[
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ],
    )
    result.server_startup = time.monotonic() - began
    store: Store | None = None
    fired: FiredLog | None = None
    process: asyncio.subprocess.Process | None = None
    try:
        client = env.client
        server = child_named("temporal")
        if server is None:
            result.notes.append("dev server process not found: no server RSS/CPU")
        task_queue = f"bench-{phase}"
        effects: Callable[[], int]
        lateness: Callable[[], list[datetime]]
        ready: Callable[[], bool] | None = None
        if phase == "baseline":
            fired = FiredLog(data_dir / "fired.db")
            fired.create()
            effects, lateness = fired.count, fired.fired_times
        else:
            upgrade(store_url(data_dir))
            store = Store(store_url(data_dir))
            the_store = store

            def effects() -> int:  # a notice in the outbox: rendered, recorded, written
                return count_rows(the_store, OutboxRow, OutboxRow.kind == "item_step")

            def lateness() -> list[datetime]:
                return escalated_times(the_store)

            def ready() -> bool:  # every opening recorded: the item is about to park
                opened = count_rows(the_store, AuditEventRow, AuditEventRow.action == "item.opened")
                return bool(opened >= args.items - result.start_failures)

        address = client.service_client.config.target_host
        process = await spawn_worker(
            phase,
            address,
            task_queue,
            data_dir,
            cap + 120,
            worker_environment(root, not args.no_bytecode_cache),
        )
        worker = process.pid
        pids = [worker] if server is None else [worker, server]
        await asyncio.sleep(1.0)
        result.worker_rss_idle = proc_kib(worker, "VmRSS")
        worker_cpu_ready, server_cpu_ready = cpu_of(worker), cpu_of(server)

        # The planned moment: far enough ahead that every item is started and parked first.
        planned = datetime.fromtimestamp(math.ceil(time.time() + margin), UTC)
        result.planned = planned
        planned_wall = planned.timestamp()
        start_one: Callable[[int], Awaitable[object]]
        if phase == "baseline":

            async def start_one(number: int) -> object:
                return await client.start_workflow(
                    BASELINE_WORKFLOW,
                    planned,
                    id=f"bench-parked-{number}",
                    task_queue=task_queue,
                )
        else:
            assert store is not None
            policy = bench_policy(planned)
            pm_id = record_postmortem(store, policy, datetime.now(UTC))
            people = owners(policy)

            async def start_one(number: int) -> object:
                return await client.start_workflow(
                    ActionItemWorkflow.run,
                    item_start(pm_id, number, planned, policy, people),
                    id=f"{pm_id}-item-{number}",
                    task_queue=task_queue,
                )

        async with asyncio.timeout(cap):
            log(f"{phase}: starting {args.items} workflows, due at {planned:%H:%M:%S} UTC")
            result.starts_began = time.time() - planned_wall
            await start_all(result, start_one)
            result.starts_done = time.time() - planned_wall
            log(
                f"{phase}: started {args.items - result.start_failures} in "
                f"{result.start_wall:.1f} s ({result.start_failures} failed); "
                f"{-result.starts_done:.0f} s before the planned moment"
            )
            settled = await settle(planned_wall - 1.0, pids, ready)
            if settled is None:
                result.notes.append(
                    "the worker/server were still busy at the planned moment: lateness includes "
                    "the start backlog (raise --margin)"
                )
            else:
                result.settled = settled - planned_wall
                log(f"{phase}: parked and quiet {-result.settled:.0f} s before the planned moment")
            await asyncio.sleep(max(0.0, planned_wall - 1.0 - time.time()))
            result.worker_rss_parked = proc_kib(worker, "VmRSS")
            if server is not None:
                result.server_rss_parked = proc_kib(server, "VmRSS")
            result.worker_cpu_park = cpu_of(worker) - worker_cpu_ready
            if server is not None:
                result.server_cpu_park = cpu_of(server) - server_cpu_ready
            worker_cpu_fire, server_cpu_fire = cpu_of(worker), cpu_of(server)
            fire_began = time.monotonic()

            expected = args.items - result.start_failures
            log(f"{phase}: waiting for {expected} effects")
            while True:
                seen = effects()
                result.effect_samples.append((time.time() - planned_wall, seen))
                if seen >= expected:
                    result.all_seen = result.effect_samples[-1][0]
                    break
                await asyncio.sleep(args.poll)
            # The workflow task after each notice is part of firing too: let it drain.
            await settle(time.time() + 30.0, pids)
            result.fire_wall = time.monotonic() - fire_began
            result.worker_cpu_fire = cpu_of(worker) - worker_cpu_fire
            if server is not None:
                result.server_cpu_fire = cpu_of(server) - server_cpu_fire
            result.complete = True
            log(f"{phase}: all {expected} effects seen {result.all_seen:.1f} s after the moment")
    except TimeoutError:
        result.notes.append(f"hit the phase cap of {cap:.0f} s: partial results")
        log(f"{phase}: hit the phase cap of {cap:.0f} s")
    finally:
        with contextlib.suppress(Exception):
            if result.planned is not None:
                result.workflow_lateness = sorted(
                    (at - result.planned).total_seconds() for at in lateness()
                )
        if process is not None:
            result.worker_rss_peak = proc_kib(process.pid, "VmHWM")
            if server is not None:
                result.server_rss_end = proc_kib(server, "VmRSS")
            await stop_worker(process)
            result.notes.append(scan_worker_log(data_dir / "worker.log"))
        if store is not None:
            store.close()
        if fired is not None:
            fired.close()
        await env.shutdown()
        log(f"{phase}: worker and dev server stopped")
    return result


# --- the report -------------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.0f} MiB"


def secs(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits if abs(value) < 10 else min(digits, 1)}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def per_cached_kib(result: PhaseResult) -> float | None:
    """Worker memory per cached workflow: beyond the cache, parked workflows are evicted
    (and replayed from history when their timer fires), so they cost the worker no memory."""
    if result.worker_rss_parked is None or result.worker_rss_idle is None:
        return None
    return (result.worker_rss_parked - result.worker_rss_idle) / min(result.items, SDK_CACHE)


def busy(cpu: float | None, result: PhaseResult) -> float | None:
    """Share of one core used while the timers fired, in percent."""
    if cpu is None or not result.fire_wall:
        return None
    return 100 * cpu / result.fire_wall


def per_item_ms(cpu: float | None, result: PhaseResult) -> float | None:
    return None if cpu is None else 1000 * cpu / result.items


def report(results: list[PhaseResult], command: str, context: list[str]) -> str:
    by_name = {r.name: r for r in results}
    base, ft = by_name.get("baseline"), by_name.get("followthrough")
    columns = [r for r in (base, ft) if r is not None]
    lines: list[tuple[str, list[str], str]] = []

    def row(
        label: str, fmt: Callable[[PhaseResult], str], value: Callable[[PhaseResult], float | None]
    ) -> None:
        ratio_text = ratio(value(ft), value(base)) if base and ft else ""
        lines.append((label, [fmt(r) for r in columns], ratio_text))

    def lat_row(label: str, values: Callable[[PhaseResult], list[float | None]]) -> None:
        lines.append((label, ["/".join(secs(v) for v in values(r)) for r in columns], ""))

    row("start rate (wf/s)", lambda r: secs(r.start_rate, 1), lambda r: r.start_rate)
    row("start to parked (wf/s)", lambda r: secs(r.parked_rate, 1), lambda r: r.parked_rate)
    row(
        "start call p50/p95 (ms)",
        lambda r: (
            f"{secs(1000 * (quantile(r.start_latencies, 0.5) or 0), 0)}/"
            f"{secs(1000 * (quantile(r.start_latencies, 0.95) or 0), 0)}"
        ),
        lambda r: quantile(r.start_latencies, 0.95),
    )
    row(
        "all parked & quiet (s before T)",
        lambda r: secs(None if r.settled is None else -r.settled, 0),
        lambda r: None,
    )
    row("worker RSS idle", lambda r: mib(r.worker_rss_idle), lambda r: r.worker_rss_idle)
    row("worker RSS parked", lambda r: mib(r.worker_rss_parked), lambda r: r.worker_rss_parked)
    row(
        f"  per cached workflow (KiB, cache {SDK_CACHE})",
        lambda r: secs(per_cached_kib(r), 1),
        per_cached_kib,
    )
    row("worker RSS peak (VmHWM)", lambda r: mib(r.worker_rss_peak), lambda r: r.worker_rss_peak)
    row("server RSS parked", lambda r: mib(r.server_rss_parked), lambda r: r.server_rss_parked)
    row(
        "worker CPU to park (ms/wf)",
        lambda r: secs(per_item_ms(r.worker_cpu_park, r), 1),
        lambda r: per_item_ms(r.worker_cpu_park, r),
    )
    row(
        "worker CPU to fire (ms/wf)",
        lambda r: secs(per_item_ms(r.worker_cpu_fire, r), 1),
        lambda r: per_item_ms(r.worker_cpu_fire, r),
    )
    row(
        "server CPU to park (ms/wf)",
        lambda r: secs(per_item_ms(r.server_cpu_park, r), 1),
        lambda r: per_item_ms(r.server_cpu_park, r),
    )
    row(
        "server CPU to fire (ms/wf)",
        lambda r: secs(per_item_ms(r.server_cpu_fire, r), 1),
        lambda r: per_item_ms(r.server_cpu_fire, r),
    )
    row(
        "busy while firing (% of a core)",
        lambda r: (
            f"worker {secs(busy(r.worker_cpu_fire, r), 0)}, "
            f"server {secs(busy(r.server_cpu_fire, r), 0)}"
        ),
        lambda r: None,
    )
    lat_row(
        "lateness, workflow time (s)",
        lambda r: [
            quantile(r.workflow_lateness, 0.0) if r.workflow_lateness else None,
            quantile(r.workflow_lateness, 0.5),
            quantile(r.workflow_lateness, 0.95),
            r.workflow_lateness[-1] if r.workflow_lateness else None,
        ],
    )
    lat_row(
        "lateness, effect seen (s)",
        lambda r: [r.effect_at(0.0), r.effect_at(0.5), r.effect_at(0.95), r.effect_at(1.0)],
    )
    row(
        "effects seen",
        lambda r: f"{r.effects_seen}/{r.items}",
        lambda r: None,
    )

    names = [f"{r.name} (N={r.items})" for r in columns]
    width = max(len(label) for label, _, _ in lines) + 2
    col = max(30, *(len(n) + 2 for n in names))
    out = [
        f"{'':{width}}"
        + "".join(f"{n:>{col}}" for n in names)
        + (f"{'followthrough/baseline':>26}" if base and ft else "")
    ]
    for label, cells, ratio_text in lines:
        out.append(f"{label:{width}}" + "".join(f"{c:>{col}}" for c in cells) + f"{ratio_text:>26}")
    out.append("")
    out.append(
        "lateness columns are min/p50/p95/max for workflow time (the row's own timestamp minus "
        "the planned moment T) and first/p50/p95/all for the client polling the row count"
    )
    for r in columns:
        planned = f"{r.planned:%Y-%m-%d %H:%M:%S} UTC" if r.planned else "-"
        out.append(
            f"{r.name}: T = {planned}, margin {r.margin:.0f} s, {r.concurrency} starts in "
            f"flight, dev server up in {secs(r.server_startup, 1)} s"
            + (
                f", {r.start_failures} starts failed ({r.first_failure})"
                if r.start_failures
                else ""
            )
        )
        out.extend(f"{r.name}: {note}" for note in r.notes)
    if base and ft:
        out.append("")
        out.append(
            f"followthrough vs baseline: start rate {ratio(ft.start_rate, base.start_rate)}, "
            f"worker RSS parked {ratio(ft.worker_rss_parked, base.worker_rss_parked)}, "
            f"lateness p95 {secs(quantile(ft.workflow_lateness, 0.95))} s vs "
            f"{secs(quantile(base.workflow_lateness, 0.95))} s (workflow time), "
            f"{secs(ft.effect_at(0.95))} s vs {secs(base.effect_at(0.95))} s (effect seen)"
        )
    out.extend(context)
    out.append(f"reproduce: {command}")
    return "\n".join(out)


# --- entry point ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=10000, help="workflows per phase")
    parser.add_argument("--concurrency", type=int, default=50, help="start calls in flight")
    parser.add_argument(
        "--margin",
        type=float,
        default=None,
        help="seconds from the worker being up to the planned moment (default 20 + items/20)",
    )
    parser.add_argument(
        "--phase-cap",
        type=float,
        default=None,
        help="hard wall-clock cap per phase, seconds (default margin + 120 + items/4)",
    )
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between row counts")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run the workers with this environment's bytecode settings as they are (by default "
        "they write .pyc files to the temporary directory, as an installed package has them)",
    )
    # Internal: this file re-runs itself as each phase's worker process.
    parser.add_argument("--worker", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--task-queue", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=3600, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    phases = [p for p in args.phases.split(",") if p]
    if not phases or any(p not in PHASES for p in phases):
        parser.error(f"--phases takes a comma-separated subset of {', '.join(PHASES)}")
    if args.items < 1 or args.concurrency < 1:
        parser.error("--items and --concurrency must be at least 1")
    args.phase_list = phases
    return args


async def bench_main(args: argparse.Namespace) -> None:
    margin = args.margin if args.margin is not None else default_margin(args.items)
    cap = args.phase_cap if args.phase_cap is not None else default_cap(args.items, margin)
    command = "python bench/parked_items.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    log(
        f"{args.items} workflows per phase, planned moment {margin:.0f} s after the worker is "
        f"up, hard cap {cap:.0f} s per phase"
    )
    no_pyc = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    results: list[PhaseResult] = []
    root = Path(tempfile.mkdtemp(prefix="followthrough-bench-"))
    try:
        for phase in args.phase_list:
            try:
                results.append(await run_phase(phase, args, root, margin, cap))
            except Exception as err:  # reported with the rest; the next phase still runs
                log(f"{phase}: failed: {err!r}")
                failed = PhaseResult(phase, args.items, args.concurrency, margin=margin)
                failed.notes.append(f"failed: {err!r}")
                results.append(failed)
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    pyc = (
        "as this environment has it"
        + (" (PYTHONDONTWRITEBYTECODE: compiled per sandboxed run)" if no_pyc else "")
        if args.no_bytecode_cache
        else "cached in the temporary directory, as an installed package has it"
    )
    context = [
        f"workers: {EXECUTOR_THREADS} activity threads, workflow cache {SDK_CACHE} (SDK default), "
        f"bytecode {pyc}; {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"temporalio {temporalio_version}",
    ]
    print(report(results, command.strip(), context), flush=True)


def run_and_exit(main: Coroutine[Any, Any, int | None]) -> NoReturn:
    """Run a benchmark process's main coroutine, then leave with its status (130 on Ctrl-C).

    As the CLI does: the Temporal client's Rust threads can abort interpreter shutdown
    (temporalio/sdk-python#300), so leave without it once everything is stopped and flushed.
    """
    try:
        status = asyncio.run(main) or 0
    except KeyboardInterrupt:
        status = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def main() -> None:
    args = parse_args()
    run_and_exit(worker_main(args) if args.worker else bench_main(args))


if __name__ == "__main__":
    main()
