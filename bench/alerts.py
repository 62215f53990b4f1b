#!/usr/bin/env python
"""Alerts: firing/resolved Alertmanager notifications through the HTTP API, beside the incident
ingest baseline and a no-op authenticated request, in the same run.

A benchmark, not a test: it prints numbers and asserts none, but it checks its own bookkeeping
(every request answered as expected, exactly the alert events sent kept, N postmortems started)
and exits 1 when that fails. The app is the real one in-process (httpx's ASGI transport around
create_app) over a SQLite file (or --database-url), its Temporal a dev server started as
`followthrough up` starts it; no worker runs, so an incident's cost is the API's own (verify,
parse, start the workflow, remember the delivery). Three phases, C requests in flight each:

* no-op: N x ratio authenticated `GET /api/me` (a token lookup and a small answer);
* incidents: N signed `POST /webhooks/generic` resolutions, each starting a postmortem;
* alerts: N x ratio / 2 alerts, each fired then resolved (`POST /webhooks/alertmanager`, one
  alert per notification as Alertmanager's default `group_by: ['...']` sends them). None is
  labelled `postmortem="true"`, so none is an incident (the policy's `alerts.postmortem_when`):
  each is kept as an alert event and starts nothing. Twice, with other alerts each time: first
  with every delivery writing its own transaction (how alerts were kept before
  api/group_commit.py), then as the API keeps them, several deliveries to a write.

Printed: per phase p50/p95 latency and CPU per request of this process, the alerts' p95 over
the no-op's (the issue's bound: within 2x), and the store's growth per alert event. Run from the
project root:

    python bench/alerts.py --incidents 50 --ratio 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from parked_items import log, quantile, ratio

from followthrough.api import create_app
from followthrough.api.auth import issue_token
from followthrough.api.group_commit import GroupCommit
from followthrough.api.services import Services
from followthrough.domain.alert_quality import AlertEvent
from followthrough.logging import configure_logging
from followthrough.runtime import EmbeddedTemporal
from followthrough.settings import Settings
from followthrough.storage import Store
from followthrough.storage.migrate import upgrade
from followthrough.webhooks.generic import sign_generic

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-alerts-secret-0123456789"
PERSON = "dan"  # in the shipped policy
MAX_REQUESTS = 200_000  # a bound on any phase, whatever the arguments say


class OneWriteEach(GroupCommit[AlertEvent, int]):
    """The baseline: each delivery its own transaction, as before the group commit."""

    async def add(self, items: list[AlertEvent]) -> int:
        return await asyncio.to_thread(self.write, items)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--incidents", type=int, default=50, help="incident webhooks (N)")
    parser.add_argument("--ratio", type=int, default=20, help="alert notifications per incident")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (C)")
    parser.add_argument("--database-url", default="", help="default: a SQLite file")
    args = parser.parse_args(argv)
    if not 1 <= args.incidents * max(args.ratio, 1) <= MAX_REQUESTS:
        parser.error(f"--incidents x --ratio must be from 1 to {MAX_REQUESTS}")
    if not 1 <= args.concurrency <= 64 or args.ratio < 2:
        parser.error("--concurrency is from 1 to 64, --ratio at least 2")
    return args


class Phase:
    def __init__(self, name: str) -> None:
        self.name = name
        self.latencies: list[float] = []
        self.cpu = 0.0
        self.failures: list[str] = []

    def line(self) -> str:
        p50, p95 = quantile(self.latencies, 0.5), quantile(self.latencies, 0.95)
        per = self.cpu / len(self.latencies) * 1000 if self.latencies else 0.0
        return (
            f"{self.name:<30}{len(self.latencies):>9}{(p50 or 0) * 1000:>10.2f}"
            f"{(p95 or 0) * 1000:>10.2f}{per:>14.2f}"
        )


async def run(
    phase: Phase, count: int, concurrency: int, request: Callable[[int], Awaitable[str | None]]
) -> Phase:
    """`count` requests, `concurrency` in flight; each returns None or what went wrong."""
    queue = iter(range(count))

    async def lane() -> None:
        for index in queue:
            began = time.perf_counter()
            problem = await request(index)
            phase.latencies.append(time.perf_counter() - began)
            if problem and len(phase.failures) < 5:
                phase.failures.append(problem)

    cpu = time.process_time()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    phase.cpu = time.process_time() - cpu
    return phase


def notification(index: int, status: str, now: datetime) -> bytes:
    """Alertmanager's webhook payload (version 4) for one alert of its own group."""
    labels = {
        "alertname": f"BenchAlert{index % 17}",
        "service": f"service-{index % 5}",
        "severity": "page" if index % 3 == 0 else "warning",
        "instance": f"10.0.{index // 250}.{index % 250}:9100",
    }
    starts = now - timedelta(minutes=5)
    alert = {
        "status": status,
        "labels": labels,
        "annotations": {"summary": f"bench alert {index}"},
        "startsAt": starts.isoformat(),
        "endsAt": now.isoformat() if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": f"{index:016x}",
    }
    group = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    return json.dumps(
        {
            "version": "4",
            "groupKey": group,
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "followthrough",
            "groupLabels": labels,
            "commonLabels": labels,
            "commonAnnotations": alert["annotations"],
            "externalURL": "http://127.0.0.1:9093",
            "alerts": [alert],
        }
    ).encode()


def incident(index: int, run_id: str, now: datetime) -> bytes:
    return json.dumps(
        {
            "id": f"BENCH-{run_id}-{index}",
            "title": f"Bench incident {index}",
            "severity": "SEV2",
            "services": ["checkout"],
            "started_at": (now - timedelta(hours=1)).isoformat(),
            "resolved_at": now.isoformat(),
        }
    ).encode()


def store_size(store: Store, url: str) -> int | None:
    """The database's size: SQLite's main file once its WAL is checkpointed into it (the WAL
    holds a whole page per page a commit touched, so its size says how often, not how much),
    PostgreSQL's alert_events table with its indexes."""
    if url.startswith("sqlite:///"):
        with store.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return Path(url.removeprefix("sqlite:///")).stat().st_size
    with store.engine.connect() as connection:
        found = connection.exec_driver_sql("SELECT pg_total_relation_size('alert_events')")
        return int(found.scalar_one())


async def bench(args: argparse.Namespace, root: Path) -> int:
    url = args.database_url or f"sqlite:///{root / 'followthrough.db'}"
    upgrade(url)
    store = Store(url)
    server = EmbeddedTemporal(root / "temporal", port=free_port(), ui_port=free_port())
    log("starting a Temporal dev server as `followthrough up` does")
    client = await server.start()
    try:
        settings = Settings(
            data_dir=root / "data",
            database_url=url,
            link_secret="bench-alerts-link-secret-0123456789",
            task_queue=f"bench-alerts-{uuid.uuid4().hex[:8]}",
            webhook_secret_alertmanager=SECRET,
            webhook_secret_generic=SECRET,
        )
        services = Services(settings=settings, store=store, client=client)
        now = datetime.now(UTC)
        token = issue_token(store, services.policy, PERSON, "bench", now)
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return await phases(args, http, token, services, url, now)
    finally:
        server.stop()
        store.close()


async def phases(
    args: argparse.Namespace,
    http: httpx.AsyncClient,
    token: str,
    services: Services,
    url: str,
    now: datetime,
) -> int:
    store = services.store
    alerts = args.incidents * args.ratio // 2
    run_id = uuid.uuid4().hex[:8]
    bearer = {"Authorization": f"Bearer {token}"}
    am = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}

    async def noop(index: int) -> str | None:
        answer = await http.get("/api/me", headers=bearer)
        return None if answer.status_code == 200 else f"/api/me {answer.status_code}"

    async def resolved_incident(index: int) -> str | None:
        body = incident(index, run_id, now)
        headers = {**sign_generic(SECRET, body, int(now.timestamp())), **am}
        answer = await http.post("/webhooks/generic", content=body, headers=headers)
        ok = answer.status_code == 202 and answer.json()["status"] == "started"
        return None if ok else f"incident {answer.status_code} {answer.text[:200]}"

    def alert(status: str, first: int) -> Callable[[int], Awaitable[str | None]]:
        async def send(index: int) -> str | None:
            body = notification(first + index, status, now)
            answer = await http.post("/webhooks/alertmanager", content=body, headers=am)
            kept = answer.status_code == 200 and answer.json()["status"] == "ignored"
            if not kept or answer.json()["alerts_kept"] != 1:
                return f"alert {status} {answer.status_code} {answer.text[:200]}"
            return None

        return send

    log("warm-up")
    await run(Phase("warm-up"), 20, 2, noop)
    requests = args.incidents * args.ratio
    log(f"no-op: {requests} requests")
    noops = await run(Phase("no-op GET /api/me"), requests, args.concurrency, noop)
    log(f"incidents: {args.incidents} resolutions")
    incidents = await run(
        Phase("incident resolutions"), args.incidents, args.concurrency, resolved_incident
    )
    before_rows, before_size = store.alerts.count(), store_size(store, url)
    log(f"alerts, one write each (before): {alerts} fired, then resolved")
    grouped_intake = services.alert_intake
    services.__dict__["alert_intake"] = OneWriteEach(store.alerts.keep)
    firing_each = await run(
        Phase("alerts firing, 1 write each"), alerts, args.concurrency, alert("firing", alerts)
    )
    resolved_each = await run(
        Phase("alerts resolved, 1 write each"), alerts, args.concurrency, alert("resolved", alerts)
    )
    services.__dict__["alert_intake"] = grouped_intake
    log(f"alerts: {alerts} fired, then resolved")
    firing = await run(Phase("alerts firing"), alerts, args.concurrency, alert("firing", 0))
    resolved = await run(Phase("alerts resolved"), alerts, args.concurrency, alert("resolved", 0))
    grown_rows = store.alerts.count() - before_rows
    after_size = store_size(store, url)

    print(f"{'phase':<30}{'requests':>9}{'p50 ms':>10}{'p95 ms':>10}{'cpu ms/req':>14}")
    for phase in (noops, incidents, firing_each, resolved_each, firing, resolved):
        print(phase.line())
    p95_noop = quantile(noops.latencies, 0.95)
    for label, fired, ended in (
        ("one write each", firing_each, resolved_each),
        ("as kept", firing, resolved),
    ):
        print(
            f"{label}: firing p95 / no-op p95: "
            f"{ratio(quantile(fired.latencies, 0.95), p95_noop)}; resolved p95 / no-op p95: "
            f"{ratio(quantile(ended.latencies, 0.95), p95_noop)} (issue's bound: 2x)"
        )
    each = (firing_each.cpu + resolved_each.cpu) / alerts * 1000
    print(
        f"cpu per alert (firing + resolved): {(firing.cpu + resolved.cpu) / alerts * 1000:.2f} ms "
        f"as kept, {each:.2f} ms one write each; per incident resolution: "
        f"{incidents.cpu / args.incidents * 1000:.2f} ms; {alerts} alerts = "
        f"{alerts / args.incidents:.0f}x the incidents"
    )
    if before_size is not None and after_size is not None:
        grown = after_size - before_size
        print(
            f"store growth during the alerts (both ways): {grown_rows} alert events, "
            f"{grown / 1024:.0f} KiB ({grown / max(grown_rows, 1):.0f} bytes per alert)"
        )
    failures = [
        failure
        for phase in (noops, incidents, firing_each, resolved_each, firing, resolved)
        for failure in phase.failures
    ]
    if grown_rows != 2 * alerts:
        failures.append(f"{grown_rows} alert events kept for {2 * alerts} alerts sent")
    for failure in failures:
        print(f"FAILED: {failure}")
    print(f"reproduce: python bench/alerts.py --incidents {args.incidents} --ratio {args.ratio}")
    return 1 if failures else 0


def main() -> None:
    args = arguments()
    configure_logging(level=logging.WARNING)  # a log line per request would be the benchmark
    with tempfile.TemporaryDirectory(prefix="followthrough-alerts-") as directory:
        sys.exit(asyncio.run(bench(args, Path(directory))))


if __name__ == "__main__":
    main()
