"""What operators need from a running Followthrough: is it ready, and is any work stuck.

Both read Temporal's own information: the gRPC health check, the visibility store's list of
running workflows (and the workflows Temporal itself flags in `TemporalReportedProblems`) and
DescribeWorkflowExecution for each: its pending workflow task's attempt and its pending activities'
attempts and last failures. The operations page and the periodic sweep (workflows/stuck_work.py)
call the same `find_stuck_work`, so the page shows live what the emails report.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from followthrough.domain.limits import STUCK_WORK_DESCRIBED_PER_SWEEP
from followthrough.domain.stuck import (
    StuckWork,
    StuckWorkReport,
    activity_stuck,
    short_error,
    workflow_task_stuck,
)
from followthrough.logging import get_logger
from followthrough.storage import Store

log = get_logger(__name__)

# Each readiness check answers within this, so a hung dependency is reported, not waited on.
READINESS_TIMEOUT = timedelta(seconds=3)
# Descriptions read at once: enough to finish a sweep quickly, few enough not to load the server.
DESCRIBE_CONCURRENCY = 8


async def readiness(client: Client, store: Store) -> dict[str, str]:
    """'ok' for each part that works, else what failed: Temporal answers its health check and the
    database takes a write (rolled back)."""
    parts: dict[str, str] = {}
    try:
        healthy = await client.service_client.check_health(timeout=READINESS_TIMEOUT)
        parts["temporal"] = "ok" if healthy else "Temporal reports itself not serving"
    except Exception as err:  # any failure to answer is the answer
        parts["temporal"] = f"Temporal did not answer: {_first_line(err)}"
    try:
        await asyncio.wait_for(
            asyncio.to_thread(store.check_writable), READINESS_TIMEOUT.total_seconds()
        )
        parts["database"] = "ok"
    except Exception as err:
        parts["database"] = f"the database refused a write: {_first_line(err)}"
    return parts


async def find_stuck_work(
    client: Client, task_queue: str, *, limit: int = STUCK_WORK_DESCRIBED_PER_SWEEP
) -> StuckWorkReport:
    """The running workflows on `task_queue` whose tasks keep failing or whose activities keep
    failing, from at most `limit` descriptions: those Temporal flags first, then the others."""
    queue = task_queue.replace("'", "")  # a queue name is ours; never a way out of the query
    try:
        flagged = await _workflow_ids(
            client, f"TaskQueue = '{queue}' AND TemporalReportedProblems IS NOT NULL", limit
        )
    except RPCError:  # a server older than the attribute: describing finds the same
        flagged = []
    try:
        running = await _workflow_ids(
            client, f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'", limit + 1
        )
    except RPCError as err:
        if err.status is not RPCStatusCode.UNIMPLEMENTED:
            raise
        return StuckWorkReport(stuck=[], described=0, unsupported=err.message)
    candidates = list(dict.fromkeys(flagged + running))
    more = len(candidates) > limit
    candidates = candidates[:limit]
    gate = asyncio.Semaphore(DESCRIBE_CONCURRENCY)

    async def examine(workflow_id: str) -> list[StuckWork]:
        async with gate:
            return await _stuck_in(client, workflow_id)

    found = await asyncio.gather(*(examine(w) for w in candidates))
    return StuckWorkReport(
        stuck=[stuck for each in found for stuck in each], described=len(candidates), more=more
    )


async def _workflow_ids(client: Client, query: str, limit: int) -> list[str]:
    return [w.id async for w in client.list_workflows(query, limit=limit)]


async def _stuck_in(client: Client, workflow_id: str) -> list[StuckWork]:
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:  # closed and gone since it was listed
            return []
        raise
    raw = described.raw_description
    stuck = []
    task = raw.pending_workflow_task
    if raw.HasField("pending_workflow_task") and workflow_task_stuck(task.attempt):
        stuck.append(
            StuckWork(
                workflow_id=workflow_id,
                workflow_type=described.workflow_type,
                problem="workflow task",
                attempts=task.attempt - 1,  # the pending one has not failed yet
                error=await _last_task_failure(client, described),
            )
        )
    for pending in raw.pending_activities:
        if activity_stuck(pending.attempt):
            failure = pending.last_failure
            stuck.append(
                StuckWork(
                    workflow_id=workflow_id,
                    workflow_type=described.workflow_type,
                    problem=f"activity {pending.activity_type.name}",
                    attempts=pending.attempt,
                    error=short_error(failure.message or "no error recorded"),
                    since=(
                        pending.last_attempt_complete_time.ToDatetime(tzinfo=UTC)
                        if pending.HasField("last_attempt_complete_time")
                        else None
                    ),
                )
            )
    return stuck


async def _last_task_failure(client: Client, described: WorkflowExecutionDescription) -> str:
    """The failure Temporal recorded for the workflow's failing task, read from the end of its
    history: only the first failure of a run of them is written there, and it is the last event."""
    answer = await client.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(
            namespace=client.namespace,
            execution=described.raw_description.workflow_execution_info.execution,
            maximum_page_size=20,
        )
    )
    for event in answer.history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failure = event.workflow_task_failed_event_attributes.failure
            return short_error(failure.message or "no error recorded")
    return "no error recorded"


def _first_line(err: BaseException) -> str:
    return short_error(str(err) or type(err).__name__).splitlines()[0]
