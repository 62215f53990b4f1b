"""The check activity: run one attempt at an action item's acceptance criterion, with evidence.

A failing or unreachable target is a result (passed=False, with the reason), not an error: the
workflow records it and reopens the item. Only a broken checker raises, and is retried.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities import RUN_CHECK
from followthrough.checks import CheckConfig, run_check
from followthrough.domain.checks import CheckRequest, CheckResult
from followthrough.logging import get_logger

log = get_logger(__name__)


class CheckActivities:
    def __init__(self, config: CheckConfig) -> None:
        self.config = config

    @activity.defn(name=RUN_CHECK)
    async def run_check(self, request: CheckRequest) -> CheckResult:
        # The world as it is now, not when the attempt was scheduled: a check that waited in
        # the queue (a worker was down) must not ask Prometheus about the past.
        now = datetime.now(UTC)
        info = activity.info()
        result = await run_check(request.criterion, self.config, now)
        log.info(
            "check ran",
            workflow_id=info.workflow_id,
            action_item_id=request.action_item_id,
            attempt=request.attempt,
            activity_attempt=info.attempt,
            kind=request.criterion.kind,
            passed=result.passed,
            reason=result.reason,
        )
        return result
