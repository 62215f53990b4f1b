"""How soon does a postmortem's owner hear it is theirs? From a signed resolution webhook to the
owner's "postmortem opened" notice recorded in the outbox, p50 and p95, beside a no-op baseline
measured in the same run on the same Temporal dev server.

* baseline: the cheapest round trip there is: start a workflow that runs one no-op activity and
  wait for its result (start, a workflow task, an activity task, a workflow task, completion).
* handoff: `POST /webhooks/generic` (signed, in-process API) starts the PostmortemWorkflow, which
  records the opening and sends the owner's notice in the background; the clock stops when the
  notice's outbox row is no longer pending (rendered, recorded and written to the local outbox).

One incident at a time, so each figure is a latency, not a queue. Prints numbers and their ratio,
asserts nothing (bench/README.md). Loopback only; bounded by --incidents and --timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from followthrough.api import create_app
from followthrough.api.services import Services
from followthrough.domain.notice import OutboxStatus
from followthrough.notices.delivery import Mailer
from followthrough.notices.render import Links
from followthrough.settings import Settings
from followthrough.storage import Store
from followthrough.storage.migrate import upgrade
from followthrough.temporal.binaries import find_binary
from followthrough.temporal.worker import build_worker
from followthrough.webhooks.generic import DELIVERY, sign_generic
from workflows import SEARCH_ATTRIBUTES

SECRET = "bench-handoff-secret"
POLL = 0.002  # seconds between outbox reads


@activity.defn(name="bench_noop")
async def noop() -> None:
    return None


@workflow.defn(name="BenchNoOpRoundTrip", sandboxed=False)
class NoOpRoundTrip:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity("bench_noop", start_to_close_timeout=timedelta(seconds=10))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def baseline(client: Client, queue: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        began = time.perf_counter()
        # By name: typed by its method, mypy (1.x) then mis-infers other files' handles.
        await client.execute_workflow(
            "BenchNoOpRoundTrip", id=f"bench-noop-{uuid.uuid4().hex}", task_queue=queue
        )
        times.append(time.perf_counter() - began)
    return times


def incident(number: int, run: str) -> bytes:
    now = datetime.now(UTC)
    return json.dumps(
        {
            "id": f"HANDOFF-{run}-{number:04d}",
            "title": "Checkout returned 502s after a config push",
            "severity": "SEV2",
            "commander": "alice",
            "started_at": (now - timedelta(hours=3)).isoformat(),
            "resolved_at": (now - timedelta(minutes=5)).isoformat(),
        }
    ).encode()


async def handoff(http: httpx.AsyncClient, store: Store, count: int, timeout: float) -> list[float]:
    run, times = uuid.uuid4().hex[:6], []
    for number in range(1, count + 1):
        body = incident(number, run)
        headers = {
            **sign_generic(SECRET, body, int(time.time())),
            DELIVERY: f"{run}-{number}",
            "Content-Type": "application/json",
        }
        began = time.perf_counter()
        response = await http.post("/webhooks/generic", content=body, headers=headers)
        if response.status_code != 202:
            raise SystemExit(f"webhook answered {response.status_code}: {response.text[:200]}")
        key = f"{response.json()['workflow_id']}/opened"
        while True:
            message = await asyncio.to_thread(store.outbox.message, key)
            if message is not None and message.status is not OutboxStatus.PENDING:
                break
            if time.perf_counter() - began > timeout:
                raise SystemExit(f"no notice {key} within {timeout} s")
            await asyncio.sleep(POLL)
        times.append(time.perf_counter() - began)
    return times


async def bench(args: argparse.Namespace) -> str:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        ip="127.0.0.1",
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bench-handoff-") as scratch:
            root = Path(scratch)
            url = f"sqlite:///{root / 'followthrough.db'}"
            upgrade(url)
            store = Store(url)
            queue, noop_queue = f"bench-{uuid.uuid4().hex[:6]}", f"noop-{uuid.uuid4().hex[:6]}"
            settings = Settings(
                data_dir=root, task_queue=queue, webhook_secret_generic=SECRET, database_url=url
            )
            mailer = Mailer(
                sender="Followthrough <followthrough@localhost>",
                outbox_dir=root / "outbox",
                links=Links(temporal_ui="http://127.0.0.1:8233"),
            )
            client = env.client
            with ThreadPoolExecutor(max_workers=16) as executor:
                product = build_worker(
                    client, store, executor, mailer, settings.loaded_policy, task_queue=queue
                )
                plain = Worker(
                    client,
                    task_queue=noop_queue,
                    workflows=[NoOpRoundTrip],
                    activities=[noop],
                )
                app = create_app(Services(settings=settings, store=store, client=client))
                transport = httpx.ASGITransport(app=app)
                async with (
                    product,
                    plain,
                    httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http,
                ):
                    await baseline(client, noop_queue, 3)  # warm-up, not counted
                    await handoff(http, store, 2, args.timeout)
                    # ABBA: neither gains from going first.
                    base = await baseline(client, noop_queue, args.incidents // 2)
                    hand = await handoff(http, store, args.incidents // 2, args.timeout)
                    hand += await handoff(
                        http, store, args.incidents - args.incidents // 2, args.timeout
                    )
                    base += await baseline(client, noop_queue, args.incidents - args.incidents // 2)
            store.close()
    finally:
        await env.shutdown()
    lines = [
        f"{'(ms)':<40}{'baseline':>10}{'handoff':>10}{'ratio':>9}",
    ]
    for label, q in (("p50", 0.5), ("p95", 0.95)):
        b, h = quantile(base, q) * 1000, quantile(hand, q) * 1000
        name = f"latency {label}"
        lines.append(f"{name:<40}{b:>10.0f}{h:>10.0f}{h / b:>8.1f}x")
    lines.append(
        f"{'mean':<40}{statistics.mean(base) * 1000:>10.0f}{statistics.mean(hand) * 1000:>10.0f}"
    )
    lines.append(f"incidents: {len(hand)} webhooks, {len(base)} no-op round trips")
    lines.append(f"reproduce: python bench/handoff_notice.py --incidents {args.incidents}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100, help="webhooks (and round trips)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per notice, at most")
    args = parser.parse_args()
    if not 2 <= args.incidents <= 5000:
        parser.error("--incidents: between 2 and 5000")
    print(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
