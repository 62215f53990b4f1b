"""Talking to Temporal: connect, register search attributes, run the worker, start and act.

Entry points (CLI, worker.py, starter.py, tests) all come through here so there is one way to
connect, one way to start a postmortem and one way to turn a person's action into an update.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleSpec,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities.checks import CheckActivities
from activities.jira import JiraActivities
from activities.notices import NoticeActivities
from activities.operations import OperationsActivities
from activities.records import RecordActivities
from activities.slos import SloActivities
from activities.slots import release_slot, request_slot
from followthrough.checks.config import CheckConfig
from followthrough.domain.bounds import update_problems
from followthrough.domain.incident import Incident, is_demo_record
from followthrough.domain.notice import DigestRequest
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import PostmortemStart
from followthrough.domain.problems import Problems, RefusalKind
from followthrough.domain.stuck import StuckWorkSweep
from followthrough.jira import JiraConfig
from followthrough.logging import ActivityLogContext, get_logger
from followthrough.notices.delivery import Mailer
from followthrough.storage import Store
from workflows import SEARCH_ATTRIBUTES, TASK_QUEUE
from workflows.action_item import ActionItemWorkflow
from workflows.council_digest import CouncilDigestWorkflow
from workflows.postmortem import PostmortemWorkflow
from workflows.stuck_work import StuckWorkWorkflow
from workflows.team_slots import TeamSlotsWorkflow
from workflows.ticket_reconciliation import TicketReconciliationWorkflow

if TYPE_CHECKING:
    from followthrough.observability import Telemetry

DEFAULT_ADDRESS = "127.0.0.1:7233"
log = get_logger(__name__)
Result = TypeVar("Result", bound=BaseModel)


async def connect(address: str | None = None, telemetry: Telemetry | None = None) -> Client:
    """Connect with Temporal's own environment configuration (TEMPORAL_ADDRESS and friends).

    Long-running processes pass their telemetry (metrics runtime, tracing interceptor); workers
    built from the client inherit both.
    """
    config = ClientConfig.load_client_connect_config()
    if address:
        config["target_host"] = address
    config.setdefault("target_host", DEFAULT_ADDRESS)
    return await Client.connect(
        **config,
        data_converter=pydantic_data_converter,
        runtime=telemetry.runtime if telemetry else None,
        interceptors=telemetry.interceptors if telemetry else (),
    )


async def register_search_attributes(client: Client) -> None:
    """For servers that were not started with them (the embedded default passes them as flags)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES
            },
        )
    )


def build_worker(
    client: Client,
    store: Store,
    executor: concurrent.futures.ThreadPoolExecutor,
    mailer: Mailer,
    policy: Policy,
    *,
    task_queue: str = TASK_QUEUE,
    checks: CheckConfig | None = None,
    jira: JiraConfig | None = None,
    public_url: str | None = None,
    sticky_queue_timeout: timedelta = timedelta(seconds=10),
) -> Worker:
    """A worker for every workflow and activity; without `jira`, items use the built-in tracker."""
    records = RecordActivities(store)
    notices = NoticeActivities(store, mailer, policy)
    # Checks call out only where the policy's outbound section allows.
    checks = dataclasses.replace(checks or CheckConfig(), outbound=policy.outbound)
    checker = CheckActivities(checks)
    slos = SloActivities(store, checks)
    tickets = JiraActivities(jira, public_url)
    operations = OperationsActivities(store, mailer, policy)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[
            PostmortemWorkflow,
            ActionItemWorkflow,
            TeamSlotsWorkflow,
            CouncilDigestWorkflow,
            TicketReconciliationWorkflow,
            StuckWorkWorkflow,
        ],
        activities=[
            records.record_postmortem,
            records.record_action_item,
            notices.send_notice,
            notices.send_council_digest,
            request_slot,
            release_slot,
            checker.run_check,
            records.open_items_for_tickets,
            records.note_themes,
            slos.slo_evidence,
            tickets.open_ticket,
            tickets.comment_ticket,
            tickets.update_ticket_due,
            tickets.find_done_tickets,
            operations.report_stuck_work,
        ],
        activity_executor=executor,
        interceptors=[ActivityLogContext()],
        # On Ctrl-C or SIGTERM, let in-flight storage writes finish before stopping.
        graceful_shutdown_timeout=timedelta(seconds=10),
        # A killed worker's workflows wait this long for it before another worker takes them.
        sticky_queue_schedule_to_start_timeout=sticky_queue_timeout,
    )


class StartResult(BaseModel):
    workflow_id: str
    outcome: str  # "started", "already open", or "already closed"


async def start_postmortem(
    client: Client, incident: Incident, policy: Policy, *, task_queue: str = TASK_QUEUE
) -> StartResult:
    """Start the postmortem for a resolved incident, or find the one that exists.

    Exactly one of any number of concurrent starts creates the workflow (and answers "started");
    the others find it. REJECT_DUPLICATE means a postmortem that has closed is never reopened by
    a late duplicate delivery.
    """
    workflow_id = incident.postmortem_id
    try:
        await client.start_workflow(
            PostmortemWorkflow.run,
            PostmortemStart(incident=incident, policy=policy),
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        status = await _status(client, workflow_id)
        running = status is WorkflowExecutionStatus.RUNNING
        return StartResult(
            workflow_id=workflow_id, outcome="already open" if running else "already closed"
        )
    return StartResult(workflow_id=workflow_id, outcome="started")


async def _status(client: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    return description.status


_KINDS = {kind.value for kind in RefusalKind}


class ActionRefused(Exception):
    """A person's action was refused; the message says why, and nothing changed."""

    def __init__(self, message: str, kind: RefusalKind = RefusalKind.CONFLICT) -> None:
        super().__init__(message)
        self.kind = kind


async def act(
    client: Client, workflow_id: str, update: str, argument: BaseModel, result_type: type[Result]
) -> Result:
    """Send a person's action to a workflow as an update and return the new state.

    Refused (422) before anything is sent when it is past the limits (domain/limits.py).
    """
    if problems := update_problems(argument):
        raise ActionRefused(Problems(update, problems).message, RefusalKind.INVALID)
    handle = client.get_workflow_handle(workflow_id)
    try:
        result: Any = await handle.execute_update(update, argument, result_type=result_type)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type in _KINDS:
            raise ActionRefused(cause.message, RefusalKind(cause.type)) from None
        raise ActionRefused(str(cause)) from None
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND and is_demo_record(workflow_id):
            raise ActionRefused(
                f"{workflow_id} is a demo record (made by `followthrough seed`); it has no "
                "workflow to act on"
            ) from None
        if err.status is RPCStatusCode.NOT_FOUND:
            raise ActionRefused(f"{workflow_id} does not exist or has already closed") from None
        raise
    return result  # type: ignore[no-any-return]


async def ensure_council_digest_schedule(
    client: Client, policy: Policy, *, task_queue: str = TASK_QUEUE
) -> str | None:
    """The weekly council digest: Mondays at the start of the policy's working day, local time.

    Created once per task queue; a worker that finds it already there leaves it alone.
    """
    schedule_id = f"council-digest-{task_queue}"
    start = policy.calendar.workday_starts
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            CouncilDigestWorkflow.run,
            DigestRequest(),
            id=f"council-digest-{task_queue}-run",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(
            cron_expressions=[f"{start.minute} {start.hour} * * MON"],
            time_zone_name=policy.calendar.timezone,
        ),
    )
    return await _ensure_schedule(client, schedule_id, schedule, "weekly council digest")


async def ensure_monthly_digest_schedule(
    client: Client, policy: Policy, *, task_queue: str = TASK_QUEUE
) -> str | None:
    """The council's monthly numbers: the 1st of each month at the start of the policy's working
    day, local time, for the month before. Created once per task queue, like the weekly one."""
    schedule_id = f"council-digest-monthly-{task_queue}"
    start = policy.calendar.workday_starts
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            CouncilDigestWorkflow.run,
            DigestRequest(period="month"),
            id=f"council-digest-monthly-{task_queue}-run",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(
            cron_expressions=[f"{start.minute} {start.hour} 1 * *"],
            time_zone_name=policy.calendar.timezone,
        ),
    )
    return await _ensure_schedule(client, schedule_id, schedule, "monthly council digest")


async def ensure_ticket_reconciliation_schedule(
    client: Client, window: str, *, task_queue: str = TASK_QUEUE, every_minutes: int = 15
) -> str | None:
    """Every 15 minutes, catch what a missed Jira webhook left behind (created once per queue)."""
    schedule_id = f"ticket-reconciliation-{task_queue}"
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            TicketReconciliationWorkflow.run,
            window,
            id=f"ticket-reconciliation-{task_queue}-run",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=every_minutes))]),
    )
    return await _ensure_schedule(client, schedule_id, schedule, "ticket reconciliation")


async def ensure_stuck_work_schedule(
    client: Client, *, task_queue: str = TASK_QUEUE, every_minutes: int = 5
) -> str | None:
    """Every 5 minutes, find the workflows on this queue that stopped moving and tell the
    operators of each once (created once per queue)."""
    schedule_id = f"stuck-work-{task_queue}"
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            StuckWorkWorkflow.run,
            StuckWorkSweep(task_queue=task_queue),
            id=f"stuck-work-{task_queue}-run",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=every_minutes))]),
    )
    return await _ensure_schedule(client, schedule_id, schedule, "stuck-work sweep")


async def _ensure_schedule(
    client: Client, schedule_id: str, schedule: Schedule, what: str
) -> str | None:
    """Create a schedule once; a worker that finds it already there leaves it alone."""
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        pass
    except RPCError as err:
        if err.status is not RPCStatusCode.UNIMPLEMENTED:
            raise
        # Temporal's time-skipping test server has no schedules; nothing else lacks them.
        log.warning(f"schedules unsupported: no {what}", error=str(err))
        return None
    return schedule_id
