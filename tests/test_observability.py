"""What operators see of a running Followthrough: the Temporal SDK's metrics scraped from a worker
process, the trace of a postmortem across the API-side client and that worker (received by an
OTLP/HTTP collector on loopback), and JSON log lines from `worker`, `api` and `up`.

One short lifecycle on the dev server (start, draft, approval, one item claimed and verified,
closed) runs once for the module; each test reads what it left.
"""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import threading
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.slots import team_slots_id
from followthrough.actions import act
from followthrough.domain.draft import parse_draft
from followthrough.domain.incident import parse_incident
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    Approval,
    DoneClaim,
    DraftSubmission,
    PostmortemState,
    Verification,
)
from followthrough.observability import Telemetry
from followthrough.temporal.client import connect, start_postmortem
from tests.conftest import eventually
from tests.factories import draft_data, incident_data
from tests.lifecycle import wait_for_item
from tests.processes import Followthrough, free_port
from workflows.action_item import ActionItemWorkflow
from workflows.postmortem import PostmortemWorkflow

# --- an OTLP/HTTP collector on loopback --------------------------------------------------------


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    service: str


@dataclass
class Collector:
    """Accepts OTLP/HTTP trace exports (protobuf) the way a collector does and keeps the spans."""

    port: int = 0
    spans: list[ReceivedSpan] = field(default_factory=list)

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(span.name, span.trace_id.hex(), attributes["service.name"])
                    )


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    collector = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == "/v1/traces":
                collector.receive(body)
                status, answer = 200, ExportTraceServiceResponse().SerializeToString()
            else:
                status, answer = 404, b""
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    collector.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield collector
    server.shutdown()
    server.server_close()


# --- one lifecycle against a worker process ----------------------------------------------------


@dataclass
class Lifecycle:
    postmortem_id: str
    item_id: str
    worker_log: list[str]  # every line the worker process wrote, stdout and stderr
    worker_exit: int | None  # after SIGTERM
    metrics_before: str  # the worker's /metrics once it was up
    metrics_after: str  # and once the postmortem had closed
    client_spans: tuple[ReadableSpan, ...]  # what the API-side client traced, in memory
    collector: Collector


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


@pytest.fixture(scope="module")
async def lifecycle(
    dev_server: WorkflowEnvironment,
    collector: Collector,
    policy: Policy,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Lifecycle]:
    address = dev_server.client.service_client.config.target_host
    queue = f"observability-{uuid.uuid4().hex[:8]}"
    ft = Followthrough.create(
        tmp_path_factory.mktemp("observability"),
        temporal_address=address,
        database_url=None,
        task_queue=queue,
    )
    metrics_address = f"127.0.0.1:{free_port()}"
    ft.env.update(
        {
            "FOLLOWTHROUGH_LOG_JSON": "true",
            "FOLLOWTHROUGH_WORKER_METRICS_ADDRESS": metrics_address,
            "FOLLOWTHROUGH_OTEL_ENDPOINT": f"http://127.0.0.1:{collector.port}",
        }
    )
    assert ft.log_dir is not None
    log_path = ft.log_dir / "worker-0.log"
    ft.start_worker()
    # The API's side: a client traced into memory, as `followthrough api` traces into OTLP.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = await connect(address, Telemetry(Runtime.default(), provider))
    try:
        await eventually(lambda: '"worker running"' in log_path.read_text(), seconds=60)
        before = scrape(metrics_address)
        pm_id, item_id = await _close_one_postmortem(client, policy, queue)
        # The SDK counts a workflow when its last task completes, just after the result; the
        # item may finish a moment after the postmortem it told.
        await eventually(
            lambda: all(
                _completed(scrape(metrics_address), workflow_type)
                for workflow_type in ("PostmortemWorkflow", "ActionItemWorkflow")
            )
        )
        after = scrape(metrics_address)
    finally:
        ft.stop_workers()  # SIGTERM: the worker sends the spans it still holds as it stops
        await _clean_up(client, queue, policy)
    yield Lifecycle(
        postmortem_id=pm_id,
        item_id=item_id,
        worker_log=log_path.read_text().splitlines(),
        worker_exit=ft.workers[0].returncode,
        metrics_before=before,
        metrics_after=after,
        client_spans=exporter.get_finished_spans(),
        collector=collector,
    )


async def _close_one_postmortem(client: Client, policy: Policy, queue: str) -> tuple[str, str]:
    now = datetime.now(UTC)
    incident = parse_incident(incident_data(now), policy)
    started = await start_postmortem(client, incident, policy, task_queue=queue)
    pm_id = started.workflow_id
    one_item = draft_data(now)
    one_item["action_items"] = one_item["action_items"][:1]
    submission = DraftSubmission(by="alice", draft=parse_draft(one_item))
    await act(client, pm_id, PostmortemWorkflow.submit_draft, submission)
    pm = await act(client, pm_id, PostmortemWorkflow.approve, Approval(by="erin"))
    (item_id,) = pm.action_item_ids
    await wait_for_item(client, item_id)
    await act(
        client, item_id, ActionItemWorkflow.claim_done, DoneClaim(by="bob", evidence="PR #812")
    )
    await act(client, item_id, ActionItemWorkflow.verify, Verification(by="erin"))
    outcome = await client.get_workflow_handle_for(PostmortemWorkflow.run, pm_id).result()
    assert outcome.state is PostmortemState.CLOSED
    return pm_id, item_id


async def _clean_up(client: Client, queue: str, policy: Policy) -> None:
    """The dev server is shared by the session: leave no running workflow or schedule behind."""
    for team in policy.teams:
        with suppress(RPCError):  # never started
            await client.get_workflow_handle(team_slots_id(team, queue)).terminate("test over")
    for schedule in (f"council-digest-{queue}", f"council-digest-monthly-{queue}"):
        with suppress(RPCError):
            await client.get_schedule_handle(schedule).delete()


# --- metrics -----------------------------------------------------------------------------------


def _count(text: str, metric: str, **labels: str) -> float:
    """A counter's value or a histogram's number of observations, summed over the series whose
    labels include `labels` (0 for a metric not served yet)."""
    wanted = set(labels.items())
    for family in text_string_to_metric_families(text):
        if family.name == metric:
            # The parser names a counter's sample `_total`, as OpenMetrics does.
            sample = metric + ("_count" if family.type == "histogram" else "_total")
            return sum(
                s.value
                for s in family.samples
                if s.name == sample and wanted <= set(s.labels.items())
            )
    return 0.0


def _completed(text: str, workflow_type: str) -> float:
    return _count(text, "temporal_workflow_completed", workflow_type=workflow_type)


def _moved(metric: str, lifecycle: Lifecycle, **labels: str) -> float:
    return _count(lifecycle.metrics_after, metric, **labels) - _count(
        lifecycle.metrics_before, metric, **labels
    )


def test_worker_serves_the_sdk_metrics_and_they_move(lifecycle: Lifecycle) -> None:
    # Served from the start, before any workflow ran.
    assert _count(lifecycle.metrics_before, "temporal_worker_start") >= 1
    for workflow_type in ("PostmortemWorkflow", "ActionItemWorkflow"):
        moved = _moved("temporal_workflow_completed", lifecycle, workflow_type=workflow_type)
        assert moved == 1, workflow_type
        assert _moved("temporal_workflow_endtoend_latency", lifecycle, workflow_type=workflow_type)
    # Each opened and closed its record, at least.
    assert (
        _moved("temporal_activity_execution_latency", lifecycle, activity_type="record_postmortem")
        >= 2
    )
    assert (
        _moved("temporal_activity_execution_latency", lifecycle, activity_type="record_action_item")
        >= 2
    )
    assert _moved("temporal_workflow_task_execution_latency", lifecycle) >= 4
    assert _moved("temporal_request", lifecycle) > 0


# --- traces ------------------------------------------------------------------------------------


def test_one_trace_from_the_api_side_start_through_the_worker(lifecycle: Lifecycle) -> None:
    start = [s for s in lifecycle.client_spans if s.name == "StartWorkflow:PostmortemWorkflow"]
    assert len(start) == 1
    assert start[0].context is not None
    trace_id = f"{start[0].context.trace_id:032x}"
    worker = {s.name for s in lifecycle.collector.spans if s.trace_id == trace_id}
    assert {
        "RunWorkflow:PostmortemWorkflow",
        "StartActivity:record_postmortem",
        "RunActivity:record_postmortem",
        "StartChildWorkflow:ActionItemWorkflow",
        "RunWorkflow:ActionItemWorkflow",
        "RunActivity:record_action_item",
    } <= worker
    assert {s.service for s in lifecycle.collector.spans} == {"followthrough-worker"}
    updates = {s.name for s in lifecycle.client_spans if s.name.startswith("StartWorkflowUpdate")}
    assert {
        "StartWorkflowUpdate:submit_draft",
        "StartWorkflowUpdate:approve",
        "StartWorkflowUpdate:claim_done",
        "StartWorkflowUpdate:verify",
    } <= updates


# --- logs --------------------------------------------------------------------------------------


def _json_lines(lines: list[str]) -> list[dict[str, Any]]:
    events = []
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON log line: {line!r}") from None
        assert isinstance(event, dict), line
        assert {"event", "level", "logger", "timestamp"} <= event.keys(), event
        events.append(event)
    return events


def test_worker_logs_json_with_the_ids_of_what_it_worked_on(lifecycle: Lifecycle) -> None:
    events = _json_lines(lifecycle.worker_log)
    for workflow_id, activity in (
        (lifecycle.postmortem_id, "record_postmortem"),
        (lifecycle.item_id, "record_action_item"),
    ):
        assert any(
            e.get("workflow_id") == workflow_id and e.get("activity_type") == activity
            for e in events
        ), (workflow_id, activity)
    # Workflow code logs through workflow.logger: its ids become fields too.
    assert any(
        e.get("workflow_id") == lifecycle.item_id and e.get("workflow_type") == "ActionItemWorkflow"
        for e in events
    )
    assert "worker stopping" in [e["event"] for e in events]
    assert lifecycle.worker_exit == 0


class Output:
    """A background process's stdout and stderr lines, collected as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for stream, lines in ((process.stdout, self.stdout), (process.stderr, self.stderr)):
            threading.Thread(target=lines.extend, args=(stream,), daemon=True).start()

    async def wait_for_event(self, event: str) -> None:
        await eventually(
            lambda: any(f'"event": "{event}"' in line for line in self.stderr), seconds=60
        )

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)


async def test_api_logs_json(dev_server: WorkflowEnvironment, tmp_path: Path) -> None:
    address = dev_server.client.service_client.config.target_host
    ft = Followthrough.create(tmp_path, temporal_address=address, database_url=None, task_queue="x")
    ft.env["FOLLOWTHROUGH_LOG_JSON"] = "true"
    api = Output(ft.cli_background("api"))
    try:
        await api.wait_for_event("api running")
    finally:
        assert api.stop(signal.SIGTERM) == 0
    assert api.stdout == []
    assert "api running" in [e["event"] for e in _json_lines(api.stderr)]


async def test_up_logs_json_and_serves_the_sdk_metrics(tmp_path: Path) -> None:
    ft = Followthrough.create(
        tmp_path, temporal_address="unused", database_url=None, task_queue="followthrough"
    )
    metrics_address = f"127.0.0.1:{free_port()}"
    ft.env["FOLLOWTHROUGH_LOG_JSON"] = "true"
    ft.env["FOLLOWTHROUGH_WORKER_METRICS_ADDRESS"] = metrics_address
    up = Output(
        ft.cli_background("up", "--temporal-port", str(free_port()), "--ui-port", str(free_port()))
    )
    try:
        await up.wait_for_event("worker running")
        metrics = scrape(metrics_address)
    finally:
        assert up.stop(signal.SIGINT) == 0
    assert _count(metrics, "temporal_worker_start") >= 1
    assert _count(metrics, "temporal_request") > 0
    events = [e["event"] for e in _json_lines(up.stderr)]
    assert {"worker running", "api running", "worker stopping"} <= set(events)
    # The banner and the goodbye are for the person at the terminal, on stdout.
    assert "Followthrough is up.\n" in up.stdout
