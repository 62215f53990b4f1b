"""The schedules a worker makes sure exist: the council's digests, people's daily hand-off
digests, ticket reconciliation and the stuck-work sweep, each created once per task queue."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleSpec,
)
from temporalio.service import RPCError, RPCStatusCode

from followthrough.domain.notice import DigestPeriod, DigestRequest
from followthrough.domain.policy import Policy
from followthrough.domain.stuck import StuckWorkSweep
from followthrough.logging import get_logger
from followthrough.temporal import TASK_QUEUE
from workflows.council_digest import CouncilDigestWorkflow
from workflows.stuck_work import StuckWorkWorkflow
from workflows.ticket_reconciliation import TicketReconciliationWorkflow

log = get_logger(__name__)


# Each digest's schedule: its id (the task queue follows), the cron fields after minute and hour,
# and its name in the logs. The ids are those of schedules workers have already created.
_DIGESTS: dict[DigestPeriod, tuple[str, str, str]] = {
    "week": ("council-digest", "* * MON", "weekly council digest"),
    "month": ("council-digest-monthly", "1 * *", "monthly council digest"),
    "day": ("handoff-digest", "* * *", "daily hand-off digest"),
}


async def ensure_digest_schedule(
    client: Client, policy: Policy, period: DigestPeriod, *, task_queue: str = TASK_QUEUE
) -> str | None:
    """A digest at the start of the policy's working day, local time: the council's weekly list
    on Mondays, its numbers for the month before on the 1st, and each day every person who chose
    a daily digest their held hand-offs in one email (all run by the council digest's workflow).

    Created once per task queue; a worker that finds it already there leaves it alone.
    """
    name, days, what = _DIGESTS[period]
    schedule_id = f"{name}-{task_queue}"
    start = policy.calendar.workday_starts
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            CouncilDigestWorkflow.run,
            DigestRequest(period=period),
            id=f"{schedule_id}-run",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(
            cron_expressions=[f"{start.minute} {start.hour} {days}"],
            time_zone_name=policy.calendar.timezone,
        ),
    )
    return await _ensure_schedule(client, schedule_id, schedule, what)


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
