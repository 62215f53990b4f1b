#!/usr/bin/env python
"""Activity calls by name or typed: what a parked ActionItemWorkflow costs the worker either way.

A benchmark, not a test: it prints numbers and asserts none (the machine is small and noisy).
Today the workflows call activities by name (`workflow.execute_activity(RECORD_ACTION_ITEM, ...)`
with the names from `activities/__init__.py`), so no activity module is imported where a workflow
runs. The SDK's guidance (samples-python) imports the activities through the sandbox's
passthrough and calls them typed (`workflow.execute_activity_method(RecordActivities.
record_action_item, ...)`). Both variants run here, in one run, on the same dev servers:

* names: today's `workflows/` package on the product's worker (`build_worker`);
* typed: a copy of today's `workflows/` package, rewritten mechanically (`write_typed_workflows`):
  each `from activities import NAME` inside `imports_passed_through()` becomes an import of the
  activity's class or function from its module, each NAME becomes that activity's method or
  function, and `execute_activity(` with a method becomes `execute_activity_method(`. The worker is
  the same `build_worker` with the copy first on PYTHONPATH. The product's files are not touched.

Each round starts a dev server and one worker process per variant, in alternating order, starts
N action items that park on their first escalation step (a day away) and measures the worker's RSS
per cached workflow and CPU per started workflow and per workflow task; the report gives
typed/names ratios per round and their median. Run from the project root:

    python bench/activity_calls.py --items 300 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import pkgutil
import re
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from parked_items import (
    EXECUTOR_THREADS,
    SDK_CACHE,
    bench_policy,
    child_named,
    count_rows,
    cpu_of,
    item_start,
    log,
    mailer,
    owners,
    proc_kib,
    record_postmortem,
    run_and_exit,
    scan_worker_log,
    settle,
    stop_worker,
    store_url,
    worker_environment,
)
from temporalio import __version__ as temporalio_version
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

import activities
import workflows
from followthrough.logging import configure_logging
from followthrough.storage import Store
from followthrough.storage.migrate import upgrade
from followthrough.storage.tables import AuditEventRow
from followthrough.temporal.binaries import find_binary
from followthrough.temporal.worker import build_worker
from workflows import SEARCH_ATTRIBUTES
from workflows.action_item import ActionItemWorkflow

VARIANTS = ("names", "typed")
TASKS_SAMPLE = 20  # workflows whose histories are read to count workflow tasks per workflow


# --- the typed variant: today's workflows, rewritten ------------------------------------------


def activity_references() -> dict[str, tuple[str, str, str]]:
    """Activity name -> (module, what to import from it, how a workflow refers to it)."""
    found: dict[str, tuple[str, str, str]] = {}
    for info in pkgutil.iter_modules(activities.__path__):
        module_name = f"activities.{info.name}"
        module = importlib.import_module(module_name)
        for attr, value in vars(module).items():
            if getattr(value, "__module__", None) != module_name:
                continue
            members = vars(value).items() if inspect.isclass(value) else [("", value)]
            for member, function in members:
                definition = activity._Definition.from_callable(function)
                if definition is not None and isinstance(definition.name, str):
                    reference = f"{attr}.{member}" if member else attr
                    found[definition.name] = (module_name, attr, reference)
    return found


IMPORT_NAMES = re.compile(
    r"^(?P<indent>[ \t]*)from activities import (?:\((?P<many>[^)]*)\)|(?P<one>[^\n(]+))\n",
    re.MULTILINE,
)


def typed_source(text: str, references: dict[str, tuple[str, str, str]]) -> tuple[str, list[str]]:
    """One workflow module's source with its activities called typed; and the references used."""
    names = {k: v for k, v in vars(activities).items() if k.isupper() and isinstance(v, str)}
    match = IMPORT_NAMES.search(text)
    if match is None:
        return text, []
    listed = match["many"] if match["many"] is not None else match["one"]
    constants = [name.strip() for name in listed.split(",") if name.strip()]
    wanted = sorted({references[names[c]][:2] for c in constants})
    imports = "".join(f"{match['indent']}from {module} import {attr}\n" for module, attr in wanted)
    text = text[: match.start()] + imports + text[match.end() :]
    used = []
    for constant in constants:
        used.append(references[names[constant]][2])
        text = re.sub(rf"\b{constant}\b", used[-1], text)
    # The typed call decodes the result as the activity's return annotation says: no result_type
    # (execute_activity_method takes none). execute_activity_method is the typed form for methods.
    text = re.sub(r"^[ \t]*result_type=.*\n", "", text, flags=re.MULTILINE)
    text = re.sub(
        r"workflow\.execute_activity\((\s*)([A-Z]\w*\.\w+),",
        r"workflow.execute_activity_method(\1\2,",
        text,
    )
    return text, used


def write_typed_workflows(source: Path, target: Path) -> list[str]:
    """Copy the `workflows` package in `source` to `target`, every activity called typed.

    Returns the activity references it wrote; raises if a workflow still imports a name.
    """
    references = activity_references()
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    used: set[str] = set()
    for path in sorted(target.glob("*.py")):
        text, references_used = typed_source(path.read_text(encoding="utf-8"), references)
        if "from activities import" in text:
            raise RuntimeError(f"{path.name}: an activity import left by name")
        compile(text, str(path), "exec")
        path.write_text(text, encoding="utf-8")
        used.update(references_used)
    return sorted(used)


# --- the worker process -----------------------------------------------------------------------


async def worker_main(args: argparse.Namespace) -> None:
    """One variant's worker, until SIGTERM, its parent going away, or its own deadline."""
    configure_logging(level=logging.INFO)  # the product's default; stderr goes to a log file
    client = await Client.connect(args.address, data_converter=pydantic_data_converter)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    data_dir = Path(args.data)
    parent = os.getppid()
    deadline = time.monotonic() + args.deadline
    store = Store(store_url(data_dir))
    with ThreadPoolExecutor(max_workers=EXECUTOR_THREADS) as executor:
        worker = build_worker(
            client,
            store,
            executor,
            mailer(data_dir),
            bench_policy(None),
            task_queue=args.task_queue,
        )
        try:
            async with worker:
                # The parent checks which `workflows` package this worker runs.
                print(f"ready {Path(workflows.__file__).parent}", flush=True)
                while not stop.is_set() and os.getppid() == parent:
                    if time.monotonic() > deadline:
                        print("worker deadline reached", file=sys.stderr, flush=True)
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            store.close()


async def spawn_worker(
    variant: str, address: str, task_queue: str, data_dir: Path, env: dict[str, str]
) -> tuple[asyncio.subprocess.Process, str]:
    with (data_dir / "worker.log").open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            variant,
            "--address",
            address,
            "--task-queue",
            task_queue,
            "--data",
            str(data_dir),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            env=env,
        )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), timeout=120)).decode().strip()
    if not line.startswith("ready "):
        raise RuntimeError(f"the {variant} worker did not start; see {data_dir}/worker.log")
    return process, line.removeprefix("ready ")


# --- one round of one variant -----------------------------------------------------------------


@dataclass
class Measured:
    variant: str
    round: int
    items: int
    parked: int = 0
    workflows_dir: str = ""
    rss_idle: int | None = None  # KiB, worker up, nothing started
    rss_parked: int | None = None  # KiB, every item parked and the worker quiet
    cpu: float | None = None  # worker CPU seconds from idle to parked
    tasks_per_workflow: float | None = None
    wall: float | None = None
    scheduled: list[str] = field(default_factory=list)  # activity types, sampled workflows
    notes: list[str] = field(default_factory=list)

    @property
    def kib_per_cached(self) -> float | None:
        if self.rss_parked is None or self.rss_idle is None or not self.parked:
            return None
        return (self.rss_parked - self.rss_idle) / min(self.parked, SDK_CACHE)

    @property
    def ms_per_workflow(self) -> float | None:
        return None if self.cpu is None or not self.parked else 1000 * self.cpu / self.parked

    @property
    def ms_per_task(self) -> float | None:
        if self.ms_per_workflow is None or not self.tasks_per_workflow:
            return None
        return self.ms_per_workflow / self.tasks_per_workflow


async def workflow_tasks(client: Client, workflow_ids: Sequence[str]) -> tuple[float, list[str]]:
    """Workflow tasks completed per workflow, the mean over a few workflows' histories; and the
    activities they scheduled, by type (both variants must schedule the same ones)."""
    counts = []
    scheduled: set[str] = set()
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        completed = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        counts.append(sum(1 for event in history.events if event.event_type == completed))
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled.add(event.activity_task_scheduled_event_attributes.activity_type.name)
    return statistics.mean(counts), sorted(scheduled)


async def run_variant(
    variant: str, round_number: int, args: argparse.Namespace, root: Path, client: Client
) -> Measured:
    result = Measured(variant, round_number, args.items)
    data_dir = root / f"{round_number}-{variant}"
    data_dir.mkdir()
    upgrade(store_url(data_dir))
    store = Store(store_url(data_dir))
    env = worker_environment(root, not args.no_bytecode_cache)
    # This checkout first (not whichever one is pip-installed), the typed copy before it.
    source_root = str(Path(workflows.__file__).parents[1])
    paths = [str(root / "typed")] if variant == "typed" else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, source_root, env.get("PYTHONPATH", "")])
    task_queue = f"bench-{variant}-{round_number}"
    process, result.workflows_dir = await spawn_worker(
        variant, client.service_client.config.target_host, task_queue, data_dir, env
    )
    try:
        worker = process.pid
        server = child_named("temporal")
        pids = [worker] if server is None else [worker, server]
        await asyncio.sleep(1.0)
        result.rss_idle = proc_kib(worker, "VmRSS")
        cpu_before = cpu_of(worker)
        # Due tomorrow: every item records its opening, then parks on the one escalation step.
        planned = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        policy = bench_policy(planned)
        pm_id = record_postmortem(store, policy, datetime.now(UTC))
        people = owners(policy)

        def opened() -> int:
            return count_rows(store, AuditEventRow, AuditEventRow.action == "item.opened")

        # Starts go in batches, each once the one before has opened: a worker handed hundreds of
        # first workflow tasks at once on this shared machine lets some pass their 10 s timeout.
        began = time.monotonic()
        until = time.time() + args.cap
        for first in range(1, args.items + 1, args.batch):
            batch = range(first, min(first + args.batch, args.items + 1))
            await asyncio.gather(
                *(
                    client.start_workflow(
                        ActionItemWorkflow.run,
                        item_start(pm_id, number, planned, policy, people),
                        id=f"{pm_id}-{variant}-{round_number}-item-{number}",
                        task_queue=task_queue,
                    )
                    for number in batch
                )
            )
            while opened() < batch[-1] and time.time() < until:
                await asyncio.sleep(0.1)
        settled = await settle(until, pids, lambda: opened() >= args.items)
        result.wall = time.monotonic() - began
        if settled is None:
            result.notes.append(f"not parked and quiet within {args.cap:.0f} s")
        result.rss_parked = proc_kib(worker, "VmRSS")
        result.cpu = cpu_of(worker) - cpu_before
        result.parked = opened()
        sample = [f"{pm_id}-{variant}-{round_number}-item-{n}" for n in range(1, TASKS_SAMPLE + 1)]
        result.tasks_per_workflow, result.scheduled = await workflow_tasks(
            client, sample[: args.items]
        )
    finally:
        await stop_worker(process)
        store.close()
        result.notes.append(scan_worker_log(data_dir / "worker.log"))
    log(
        f"round {round_number} {variant}: {result.parked}/{args.items} parked in "
        f"{result.wall or 0:.1f} s, {fmt(result.kib_per_cached)} KiB and "
        f"{fmt(result.ms_per_workflow)} ms CPU per workflow"
    )
    return result


# --- the report -------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def ratios(results: list[Measured], metric: str) -> list[float]:
    """typed/names per round, for the rounds where both have the metric."""
    out = []
    for number in sorted({r.round for r in results}):
        pair = {r.variant: getattr(r, metric) for r in results if r.round == number}
        if pair.get("names") and pair.get("typed") is not None:
            out.append(pair["typed"] / pair["names"])
    return out


METRICS = (
    ("worker RSS per cached workflow (KiB)", "kib_per_cached"),
    ("worker CPU per started workflow (ms)", "ms_per_workflow"),
    ("worker CPU per workflow task (ms)", "ms_per_task"),
    ("workflow tasks per workflow", "tasks_per_workflow"),
    ("worker RSS idle (KiB)", "rss_idle"),
)


def report(results: list[Measured], command: str, context: list[str]) -> str:
    out = [f"{'':40}{'round':>6}{'names':>12}{'typed':>12}{'typed/names':>14}"]
    rounds = sorted({r.round for r in results})
    for label, metric in METRICS:
        per_round = ratios(results, metric)
        for index, number in enumerate(rounds):
            values = {r.variant: getattr(r, metric) for r in results if r.round == number}
            ratio_text = f"{per_round[index]:.2f}x" if index < len(per_round) else "-"
            out.append(
                f"{label if index == 0 else '':40}{number:>6}"
                f"{fmt(values.get('names')):>12}{fmt(values.get('typed')):>12}{ratio_text:>14}"
            )
        median = f"{statistics.median(per_round):.2f}x" if per_round else "-"
        out.append(f"{'':40}{'median':>6}{'':24}{median:>14}")
    out.append("")
    for r in results:
        out.append(
            f"round {r.round} {r.variant}: {r.parked}/{r.items} parked, workflows from "
            f"{r.workflows_dir}; " + "; ".join(r.notes)
        )
        out.append(f"round {r.round} {r.variant}: scheduled {', '.join(r.scheduled) or 'nothing'}")
    for number in rounds:
        scheduled = {r.variant: r.scheduled for r in results if r.round == number}
        same = scheduled.get("names") == scheduled.get("typed")
        out.append(f"round {number}: {'the same' if same else 'DIFFERENT'} activities both ways")
    out.extend(context)
    out.append(f"reproduce: {command}")
    return "\n".join(out)


# --- entry point ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=300, help="workflows per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, variants alternating")
    parser.add_argument("--batch", type=int, default=10, help="starts per batch")
    parser.add_argument("--cap", type=float, default=300, help="seconds to park, per variant")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--write-typed",
        metavar="DIR",
        type=Path,
        help="only write the typed copy of workflows/ to DIR (which must not exist) and exit",
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="as parked_items.py: run the workers with this environment's bytecode settings",
    )
    # Internal: this file re-runs itself as each variant's worker process.
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--task-queue", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=3600, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.items < 1 or args.rounds < 1 or args.items > SDK_CACHE:
        parser.error(f"--items between 1 and {SDK_CACHE} (the workflow cache), --rounds 1 or more")
    return args


async def bench_main(args: argparse.Namespace) -> None:
    command = "python bench/activity_calls.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    root = Path(tempfile.mkdtemp(prefix="followthrough-activity-calls-"))
    results: list[Measured] = []
    try:
        typed = write_typed_workflows(Path(workflows.__file__).parent, root / "typed" / "workflows")
        log(f"typed copy of workflows/: {len(typed)} activities called typed")
        for number in range(1, args.rounds + 1):
            # A fresh dev server per round (a SQLite file in WAL mode, as parked_items.py), so no
            # round inherits the parked workflows of the ones before it.
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=find_binary("temporal"),
                ip="127.0.0.1",
                data_converter=pydantic_data_converter,
                search_attributes=SEARCH_ATTRIBUTES,
                dev_server_database_filename=str(root / f"temporal-{number}.db"),
                dev_server_extra_args=[
                    "--sqlite-pragma",
                    "journal_mode=wal",
                    "--sqlite-pragma",
                    "synchronous=normal",
                ],
            )
            try:
                order = VARIANTS if number % 2 else tuple(reversed(VARIANTS))
                for variant in order:
                    results.append(await run_variant(variant, number, args, root, env.client))
            finally:
                await env.shutdown()
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    context = [
        f"typed: {', '.join(typed)}",
        f"a dev server per round (SQLite file, WAL); workers: {EXECUTOR_THREADS} activity "
        f"threads, workflow cache {SDK_CACHE}; {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, temporalio {temporalio_version}",
    ]
    print(report(results, command.strip(), context), flush=True)


def main() -> None:
    args = parse_args()
    if args.write_typed:
        typed = write_typed_workflows(Path(workflows.__file__).parent, args.write_typed)
        print(f"wrote {args.write_typed}: {', '.join(typed)} called typed")
        return
    run_and_exit(worker_main(args) if args.worker else bench_main(args))


if __name__ == "__main__":
    main()
