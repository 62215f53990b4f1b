#!/usr/bin/env python
"""Ingest: resolved-incident webhooks to started postmortems through the HTTP API, against a no-op
workflow started on the same Temporal dev server in the same run.

A benchmark, not a test: it prints numbers and asserts none, but it checks its own bookkeeping
(exactly N postmortems, no failed delivery) and exits 1 when that fails. One Temporal dev server,
started as `followthrough up` starts it (SQLite file in WAL mode), serves two phases in turn:

* baseline: a client process (this file re-run with --starter, connected as the API connects)
  starts N no-op workflows with `client.start_workflow`, C calls in flight, while a worker process
  (this file re-run with --worker) runs them;
* ingest: `followthrough api` (uvicorn on loopback) receives N signed `POST /webhooks/generic`
  deliveries from this process, C in flight, each starting a postmortem, while `followthrough
  worker` runs them. The store is a SQLite file, or a scratch PostgreSQL database with
  --database-url.

Printed: workflows started per second in both phases and their ratio, p50/p95 of a start call
and of a delivery, CPU per workflow of every process, and the checks. Run from the project root:

    python bench/ingest.py --incidents 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib.util
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from parked_items import (
    PhaseResult,
    cpu_of,
    log,
    quantile,
    ratio,
    run_and_exit,
    scan_worker_log,
    secs,
    settle,
    start_all,
    stop_worker,
    worker_environment,
)
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from temporalio import __version__ as temporalio_version
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from followthrough.domain.relative_time import with_relative_times
from followthrough.runtime import EmbeddedTemporal
from followthrough.storage import Store
from followthrough.storage.migrate import upgrade
from followthrough.storage.tables import PostmortemRow, WebhookDeliveryRow
from followthrough.temporal.client import connect
from followthrough.webhooks.generic import DELIVERY, sign_generic

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_INCIDENT = ROOT / "examples" / "incident.json"
WEBHOOK_SECRET = "bench-generic-secret"
BASELINE_WORKFLOW = "BenchNoOp"
PHASES = ("warmup", "baseline", "ingest")
# A fresh server's SQLite file is small and fast: the first N workflows on it start up to 1.7x
# faster than the next N (measured), so a warm-up phase (the baseline, not compared) goes first,
# and baseline and ingest then run twice, in ABBA order, so neither gains from going first.
DEFAULT_PHASES = "warmup,baseline,ingest,ingest,baseline"
ACCEPTANCE = 0.5  # the issue: ingest reaches at least half the baseline's workflows per second


# --- the baseline: the cheapest workflow there is ---------------------------------------------


# Unsandboxed: it does nothing, so there is nothing to protect, and the sandbox would re-import
# this file for every run; the baseline is the cheapest start-and-complete the server can do.
@workflow.defn(name=BASELINE_WORKFLOW, sandboxed=False)
class NoOpWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None


async def worker_main(args: argparse.Namespace) -> None:
    """The baseline's worker, until SIGTERM or its own deadline (or the benchmark's death)."""
    client = await connect(args.address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(
        client,
        task_queue=args.task_queue,
        workflows=[NoOpWorkflow],
        graceful_shutdown_timeout=timedelta(seconds=10),
    )
    async with worker:
        print("ready", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.deadline)


async def starter_main(args: argparse.Namespace) -> None:
    """The baseline's client: connect as the API does, say ready, and on "go" start N no-op
    workflows with C calls in flight; print the timings as one JSON line."""
    client = await connect(args.address)
    print("ready", flush=True)
    go = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if (await asyncio.wait_for(go, args.deadline)).strip() != "go":
        return
    result = PhaseResult("baseline", args.incidents, args.concurrency)

    async def start_one(number: int) -> object:
        # By name: the typed form (NoOpWorkflow.run) trips a mypy 2.4 overload bug that then
        # types every get_workflow_handle_for call in the tests as Never.
        return await client.start_workflow(
            BASELINE_WORKFLOW, id=f"{args.task_queue}-{number}", task_queue=args.task_queue
        )

    async with asyncio.timeout(args.deadline):
        await start_all(result, start_one)
    print(json.dumps(result_timings(result)), flush=True)


def result_timings(result: PhaseResult) -> dict[str, Any]:
    return {
        "start_wall": result.start_wall,
        "start_latencies": result.start_latencies,
        "start_failures": result.start_failures,
        "first_failure": result.first_failure,
    }


# --- the deliveries ---------------------------------------------------------------------------


def incident_bodies(count: int, run: str, now: datetime) -> list[bytes]:
    """examples/incident.json (the README's generic incident) as incident BENCH-{run}-{n}, every
    timestamp moved so it was resolved just now: its draft is due in days, nothing escalates."""
    # The example's times may be relative ("now-1h"), as the CLI reads them.
    raw = json.loads(EXAMPLE_INCIDENT.read_text(encoding="utf-8"))
    example, problems = with_relative_times(raw, now)
    if problems:
        raise ValueError(f"{EXAMPLE_INCIDENT}: {'; '.join(problems)}")
    shift = now - datetime.fromisoformat(example["resolved_at"])
    for key, value in example.items():
        if key.endswith("_at"):
            example[key] = (datetime.fromisoformat(value) + shift).isoformat()
    return [
        json.dumps({**example, "id": f"BENCH-{run}-{number:05d}"}).encode()
        for number in range(1, count + 1)
    ]


class DeliveryFailed(Exception):
    """The API did not answer 202 "started"."""


async def deliver(http: httpx.AsyncClient, body: bytes, delivery_id: str) -> None:
    """One signed delivery, as a sender following the README's recipe sends it."""
    headers = {
        **sign_generic(WEBHOOK_SECRET, body, int(time.time())),
        DELIVERY: delivery_id,
        "Content-Type": "application/json",
    }
    response = await http.post("/webhooks/generic", content=body, headers=headers)
    if response.status_code != 202 or response.json().get("status") != "started":
        raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}")


# --- processes --------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the forked child only calls it


def _die_with_parent() -> None:
    """Between fork and exec: SIGTERM this child when the benchmark goes away, however it goes."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def spawn(
    command: Sequence[str], env: dict[str, str], log_path: Path, *, pipes: bool = False
) -> asyncio.subprocess.Process:
    """A child process logging to `log_path`; with `pipes`, its stdin and stdout are ours."""
    with log_path.open("ab") as log_file:
        return await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if pipes else log_file,
            stderr=log_file,
            env=env,
            cwd=ROOT,
            preexec_fn=_die_with_parent,
        )


async def wait_ready(
    process: asyncio.subprocess.Process,
    ready: Callable[[], Awaitable[bool]],
    what: str,
    log_path: Path,
    seconds: float = 120,
) -> None:
    deadline = time.monotonic() + seconds
    while not await ready():
        if process.returncode is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see {log_path} (--keep)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not ready in {seconds:.0f} s; see {log_path} (--keep)")
        await asyncio.sleep(0.1)


async def read_line(process: asyncio.subprocess.Process, seconds: float) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), seconds)).decode().strip()


def log_says(path: Path, text: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        with contextlib.suppress(OSError):
            return text in path.read_text(encoding="utf-8", errors="replace")
        return False

    return check


def answers_health(url: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"{url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    return check


# --- the store --------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(database_url: str | None, root: Path, keep: bool) -> Iterator[str]:
    """A migrated database of the run's own: a SQLite file in the temporary directory, or a
    fresh database beside the one a PostgreSQL --database-url names, dropped afterwards (unless
    --keep)."""
    if database_url is None:
        url = f"sqlite:///{root / 'followthrough.db'}"
        upgrade(url)
        yield url
        return
    given = make_url(database_url)
    if given.get_backend_name() != "postgresql":
        raise SystemExit("--database-url takes a PostgreSQL URL (the default is a SQLite file)")
    admin = given.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"followthrough_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = given.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        if keep:
            log(f"kept database {name}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def recorded(store: Store, run: str) -> tuple[int, int]:
    """(postmortems, deliveries) of one ingest phase in the record."""
    with Session(store.engine) as session:
        postmortems = session.scalar(
            select(func.count())
            .select_from(PostmortemRow)
            .where(PostmortemRow.id.startswith(f"postmortem-generic-BENCH-{run}-"))
        )
        deliveries = session.scalar(
            select(func.count())
            .select_from(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.delivery_id.startswith(f"bench-{run}-"))
        )
    return int(postmortems or 0), int(deliveries or 0)


async def visible(client: Client, task_queue: str, workflow_type: str, status: str) -> int:
    query = (
        f"WorkflowType = '{workflow_type}' AND TaskQueue = '{task_queue}' "
        f"AND ExecutionStatus = '{status}'"
    )
    return (await client.count_workflows(query)).count


async def poll_until(
    count: Callable[[], Awaitable[int]], wanted: int, until: float, every: float = 0.25
) -> tuple[int, float | None]:
    """Poll `count` until it reaches `wanted` or the monotonic clock passes `until`:
    the last count, and when it got there (None if it did not)."""
    seen = await count()
    while seen < wanted and time.monotonic() < until:
        await asyncio.sleep(every)
        seen = await count()
    return seen, (time.monotonic() if seen >= wanted else None)


# --- the phases -------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str  # "baseline" or "ingest"
    label: str  # its column: the name, numbered when --phases repeats it
    starts: PhaseResult
    client_process: str  # who called start_workflow: the starter or the API
    cpu_ms: dict[str, float | None] = field(default_factory=dict)  # per workflow, during the load
    busy: dict[str, float | None] = field(default_factory=dict)  # % of one core, during the load
    processed_after: float | None = None  # s from the first start until all N ran or recorded
    checks: list[str] = field(default_factory=list)
    ok: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        return self.starts.start_rate if self.ok else None

    def latency_ms(self, q: float) -> float | None:
        value = quantile(self.starts.start_latencies, q)
        return None if value is None else 1000 * value


@dataclass
class Bench:
    """What both phases share: the server, the directories and the settings of the run."""

    args: argparse.Namespace
    root: Path
    server: EmbeddedTemporal
    client: Client
    database_url: str
    env: dict[str, str]  # the children's environment: no FOLLOWTHROUGH_/TEMPORAL_ of ours

    @property
    def cap(self) -> float:
        """Hard wall-clock cap per phase's load and wait: at least 5 workflows a second."""
        incidents: int = self.args.incidents
        return 120.0 + incidents / 5.0

    def server_pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid


class Load:
    """CPU of some processes over the load: per workflow and as a share of one core."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.before = {name: cpu_of(pid) for name, pid in pids.items()}
        self.began = time.monotonic()

    def finish(self, phase: Phase) -> None:
        wall = time.monotonic() - self.began
        for name, pid in self.pids.items():
            used = cpu_of(pid) - self.before[name] if pid is not None else None
            phase.cpu_ms[name] = None if used is None else 1000 * used / phase.starts.items
            phase.busy[name] = None if used is None else 100 * used / wall


async def run_baseline(bench: Bench, label: str) -> Phase:
    """The no-op baseline (also the warm-up, which the report shows but does not compare)."""
    args = bench.args
    name = "warmup" if label.startswith("warmup") else "baseline"
    phase = Phase(name, label, PhaseResult(label, args.incidents, args.concurrency), "starter")
    queue = f"bench-{label}"  # a queue per phase: visibility counts this phase's workflows
    here = [sys.executable, str(Path(__file__).resolve())]
    common = ["--address", bench.server.address, "--task-queue", queue]
    common += ["--deadline", str(int(bench.cap + 120))]
    worker_log = bench.root / f"{label}-worker.log"
    worker = await spawn([*here, "--worker", *common], bench.env, worker_log, pipes=True)
    starter: asyncio.subprocess.Process | None = None
    try:
        if await read_line(worker, 120) != "ready":
            raise RuntimeError(f"the baseline worker did not start; see {worker_log} (--keep)")
        starter_log = bench.root / f"{label}-starter.log"
        counts = ["--incidents", str(args.incidents), "--concurrency", str(args.concurrency)]
        starter = await spawn(
            [*here, "--starter", *common, *counts], bench.env, starter_log, pipes=True
        )
        if await read_line(starter, 120) != "ready":
            raise RuntimeError(f"the baseline starter did not start; see {starter_log} (--keep)")
        pids = {"server": bench.server_pid(), "worker": worker.pid, "starter": starter.pid}
        await settle(time.time() + 30, [p for p in pids.values() if p is not None])
        log(f"{label}: starting {args.incidents} no-op workflows, {args.concurrency} in flight")
        assert starter.stdin is not None
        load = Load({**pids, "load generator": None})
        began = time.monotonic()
        starter.stdin.write(b"go\n")
        await starter.stdin.drain()
        timings = json.loads(await read_line(starter, bench.cap))
        load.finish(phase)
        for key, value in timings.items():
            setattr(phase.starts, key, value)
        log(f"{label}: {args.incidents} start calls answered in {phase.starts.start_wall:.1f} s")

        async def completed() -> int:
            return await visible(bench.client, queue, BASELINE_WORKFLOW, "Completed")

        seen, done = await poll_until(completed, args.incidents, began + bench.cap)
        phase.processed_after = None if done is None else done - began
        phase.checks.append(f"{seen}/{args.incidents} no-op workflows completed (visibility)")
        phase.ok = seen == args.incidents and phase.starts.start_failures == 0
        await settle(time.time() + 30, [p for p in pids.values() if p is not None])
    finally:
        for process in (starter, worker):
            if process is not None:
                await stop_worker(process)
    return phase


async def run_ingest(bench: Bench, label: str) -> Phase:
    args = bench.args
    phase = Phase("ingest", label, PhaseResult(label, args.incidents, args.concurrency), "API")
    port, queue = free_port(), f"bench-{label}"
    run = f"{datetime.now(UTC):%H%M%S}{secrets.token_hex(2)}"  # this phase's incident ids
    env = {
        **bench.env,
        "TEMPORAL_ADDRESS": bench.server.address,
        "FOLLOWTHROUGH_DATA_DIR": str(bench.root / "data"),
        "FOLLOWTHROUGH_DATABASE_URL": bench.database_url,
        "FOLLOWTHROUGH_TASK_QUEUE": queue,
        "FOLLOWTHROUGH_API_PORT": str(port),
        "FOLLOWTHROUGH_WEBHOOK_SECRET_GENERIC": WEBHOOK_SECRET,
    }
    cli = [sys.executable, "-m", "followthrough.cli"]
    worker_log, api_log = bench.root / f"{label}-worker.log", bench.root / f"{label}-api.log"
    url = f"http://127.0.0.1:{port}"
    store = Store(bench.database_url)
    worker = await spawn([*cli, "worker"], env, worker_log)
    api: asyncio.subprocess.Process | None = None
    try:
        await wait_ready(worker, log_says(worker_log, "worker running"), "the worker", worker_log)
        api = await spawn([*cli, "api"], env, api_log)
        await wait_ready(api, answers_health(url), "the API", api_log)
        bodies = incident_bodies(args.incidents, run, datetime.now(UTC))
        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=args.concurrency
        )
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
            # Open the connections the load will use, so it does not pay for their handshakes.
            await asyncio.gather(*(http.get("/healthz") for _ in range(args.concurrency)))
            pids = {"server": bench.server_pid(), "worker": worker.pid, "API": api.pid}
            await settle(time.time() + 30, list(pids.values()))
            log(f"{label}: {args.incidents} signed deliveries, {args.concurrency} in flight")
            load = Load({**pids, "load generator": os.getpid()})
            began = time.monotonic()

            async def deliver_one(number: int) -> None:
                await deliver(http, bodies[number - 1], f"bench-{run}-{number}")

            async with asyncio.timeout(bench.cap):
                await start_all(phase.starts, deliver_one)
            load.finish(phase)
        failed = phase.starts.start_failures
        log(f"{label}: {args.incidents} deliveries answered in {phase.starts.start_wall:.1f} s")

        async def postmortems() -> int:
            return (await asyncio.to_thread(recorded, store, run))[0]

        seen, done = await poll_until(postmortems, args.incidents, began + bench.cap)
        phase.processed_after = None if done is None else done - began
        _, deliveries = recorded(store, run)

        async def running() -> int:
            return await visible(bench.client, queue, "PostmortemWorkflow", "Running")

        workflows, _ = await poll_until(running, args.incidents, time.monotonic() + 30)
        phase.checks += [
            f"{args.incidents - failed}/{args.incidents} deliveries answered 202 started",
            f"{seen} postmortems and {deliveries} deliveries recorded",
            f"{workflows} postmortem workflows running (visibility)",
        ]
        phase.ok = failed == 0 and seen == deliveries == workflows == args.incidents
        await settle(time.time() + 30, list(pids.values()))
    finally:
        store.close()
        for process in (api, worker):
            if process is not None:
                await stop_worker(process)
        phase.notes.append(scan_worker_log(worker_log))
        api_notes = scan_worker_log(api_log).replace("worker log", "API log").split(", ")
        phase.notes.append(", ".join(api_notes[:2]))  # an API log has no activity retries
    return phase


# --- the report -------------------------------------------------------------------------------


def mean(values: Sequence[float | None]) -> float | None:
    """The mean of a kind's phases, or None when any of them has no value."""
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None) / len(values)


def report(phases: list[Phase], command: str, context: list[str]) -> str:
    """One column per phase; the last compares the mean of the ingest phases with the mean of
    the baseline phases (one each, unless --phases repeats them)."""
    bases = [p for p in phases if p.name == "baseline"]
    ingests = [p for p in phases if p.name == "ingest"]
    both = bool(bases and ingests)
    lines: list[tuple[str, list[str], str]] = []

    def row(
        label: str, cell: Callable[[Phase], str], value: Callable[[Phase], float | None]
    ) -> None:
        compared = ""
        if both:
            compared = ratio(mean([value(p) for p in ingests]), mean([value(p) for p in bases]))
        lines.append((label, [cell(p) for p in phases], compared))

    row("workflows started per second", lambda p: secs(p.rate, 1), lambda p: p.rate)
    for q in (0.5, 0.95):

        def latency(p: Phase, q: float = q) -> float | None:
            return p.latency_ms(q)

        def shown(p: Phase, q: float = q) -> str:
            return secs(p.latency_ms(q), 0)

        row(f"start call / delivery p{100 * q:.0f} (ms)", shown, latency)
    row("failed", lambda p: str(p.starts.start_failures), lambda p: None)
    row(
        "all N ran / recorded after (s)",
        lambda p: secs(p.processed_after, 1),
        lambda p: p.processed_after,
    )
    for name in ("server", "worker", "client", "load generator"):

        def cpu(p: Phase, name: str = name) -> float | None:
            return p.cpu_ms.get(p.client_process if name == "client" else name)

        def busy(p: Phase, name: str = name) -> str:
            value = p.busy.get(p.client_process if name == "client" else name)
            return "-" if value is None else f"{secs(cpu(p), 1)} ({value:.0f}%)"

        label = "starter / API" if name == "client" else name
        row(f"CPU ms per workflow (% of a core): {label}", busy, cpu)

    names = [f"{p.label} (N={p.starts.items})" for p in phases]
    width = max(len(label) for label, _, _ in lines) + 2
    col = max(22, *(len(n) + 2 for n in names))
    out = [
        f"{'':{width}}"
        + "".join(f"{n:>{col}}" for n in names)
        + (f"{'ingest/baseline':>18}" if both else "")
    ]
    for label, cells, compared in lines:
        out.append(f"{label:{width}}" + "".join(f"{c:>{col}}" for c in cells) + f"{compared:>18}")
    out.append("")
    for p in phases:
        out.append(f"{p.label}: " + "; ".join(p.checks) + ("" if p.ok else "  <-- FAILED"))
        if p.starts.first_failure:
            out.append(f"{p.label}: first failure: {p.starts.first_failure}")
        out.extend(f"{p.label}: {note}" for note in p.notes)
    base_rate, ingest_rate = mean([p.rate for p in bases]), mean([p.rate for p in ingests])
    if base_rate and ingest_rate:
        share = ingest_rate / base_rate
        verdict = "met" if share >= ACCEPTANCE else "NOT met"
        out.append(
            f"ingest/baseline: {ingest_rate:.1f} / {base_rate:.1f} workflows started per second "
            f"= {share:.2f}x the no-op baseline (acceptance: at least {ACCEPTANCE:.2f}x): {verdict}"
        )
    out.extend(context)
    out.append(f"reproduce: {command}")
    return "\n".join(out)


def describe_api() -> str:
    """How uvicorn serves the API here: its `auto` choices depend on what is installed."""
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"uvicorn {uvicorn.__version__} ({http}, {loop} loop)"


# --- entry point ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--incidents", type=int, default=2000, help="workflows per phase")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test): the "
        "store is a scratch database created beside it; default: a SQLite file",
    )
    parser.add_argument(
        "--phases",
        default=DEFAULT_PHASES,
        help=f"comma-separated, run in this order; a warmup is the baseline, not compared "
        f"(default {DEFAULT_PHASES})",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run the children with this environment's bytecode settings as they are (by "
        "default they write .pyc files to the temporary directory, as an installed package has)",
    )
    # Internal: this file re-runs itself as the baseline's worker and starter processes.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--starter", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--task-queue", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=3600, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.incidents < 1 or args.concurrency < 1:
        parser.error("--incidents and --concurrency must be at least 1")
    args.phase_list = [p for p in args.phases.split(",") if p]
    if not args.phase_list or any(p not in PHASES for p in args.phase_list):
        parser.error(f"--phases takes a comma-separated subset of {', '.join(PHASES)}")
    return args


def phase_labels(names: Sequence[str]) -> list[tuple[str, str]]:
    """(name, label): a phase that --phases repeats is numbered from its second run on."""
    labels: list[tuple[str, str]] = []
    for index, name in enumerate(names):
        seen = names[:index].count(name)
        labels.append((name, name if seen == 0 else f"{name}-{seen + 1}"))
    return labels


def child_environment(root: Path, bytecode_cache: bool) -> dict[str, str]:
    """parked_items' worker environment, without this shell's Followthrough or Temporal settings."""
    env = worker_environment(root, bytecode_cache)
    for key in [k for k in env if k.startswith(("FOLLOWTHROUGH_", "TEMPORAL_"))]:
        del env[key]
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def bench_main(args: argparse.Namespace) -> int:
    command = "python bench/ingest.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    root = Path(tempfile.mkdtemp(prefix="followthrough-ingest-"))
    phases: list[Phase] = []
    try:
        with scratch_database(args.database_url, root, args.keep) as database_url:
            server = EmbeddedTemporal(root / "temporal", port=free_port(), ui_port=free_port())
            log("starting a Temporal dev server as `followthrough up` does (SQLite file, WAL)")
            try:
                client = await server.start()
                env = child_environment(root, not args.no_bytecode_cache)
                bench = Bench(args, root, server, client, database_url, env)
                for name, label in phase_labels(args.phase_list):
                    run_phase = run_ingest if name == "ingest" else run_baseline
                    try:
                        phases.append(await run_phase(bench, label))
                    except Exception as err:  # reported with the rest; the next phase still runs
                        log(f"{label}: failed: {err!r}")
                        failed = Phase(name, label, PhaseResult(label, args.incidents, 0), "-")
                        failed.checks.append(f"failed: {err!r}")
                        phases.append(failed)
            finally:
                server.stop()
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    store = "PostgreSQL (a scratch database)" if args.database_url else "a SQLite file (WAL)"
    context = [
        f"one Temporal dev server for every phase, as `followthrough up` starts it (SQLite "
        f"file, WAL); store: {store}; API: {describe_api()}; {args.concurrency} in flight",
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, temporalio {temporalio_version}",
    ]
    print(report(phases, command.strip(), context), flush=True)
    return 0 if phases and all(p.ok for p in phases) else 1


def main() -> None:
    args = parse_args()
    if args.worker:
        run_and_exit(worker_main(args))
    run_and_exit(starter_main(args) if args.starter else bench_main(args))


if __name__ == "__main__":
    main()
