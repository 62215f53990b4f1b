"""StuckWorkWorkflow: a Temporal Schedule runs it every few minutes to find workflows that stopped
moving and tell the operators (activities/operations.py does the looking and the telling), and
then to forget alert events past the policy's retention, in small batches."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import PRUNE_ALERT_EVENTS, REPORT_STUCK_WORK
    from followthrough.domain.alert_quality import AlertPruning
    from followthrough.domain.stuck import StuckWorkSweep

# The next run of the schedule is minutes away: a sweep that fails a few times gives way to it
# rather than piling up (and never becomes stuck work itself).
SWEEP_RETRY = RetryPolicy(maximum_attempts=3)


@workflow.defn
class StuckWorkWorkflow:
    @workflow.run
    async def run(self, sweep: StuckWorkSweep) -> list[str]:
        """The outbox keys of the operators' emails this run sent."""
        sent: list[str] = await workflow.execute_activity(
            REPORT_STUCK_WORK,
            sweep.model_copy(update={"at": sweep.at or workflow.now()}),
            result_type=list[str],
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=SWEEP_RETRY,
        )
        if workflow.patched("alerts-prune"):
            await self.prune_alert_events()
        return sent

    async def prune_alert_events(self) -> None:
        try:
            await workflow.execute_activity(
                PRUNE_ALERT_EVENTS,
                AlertPruning(at=workflow.now()),
                result_type=int,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=SWEEP_RETRY,
            )
        except ActivityError:
            # Retention is not urgent: the next run (minutes away) prunes what this one left.
            workflow.logger.warning("alert events not pruned this run")
