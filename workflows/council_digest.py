"""CouncilDigestWorkflow: the reliability council's weekly list, or its monthly numbers, each run
by a Temporal Schedule."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import SEND_COUNCIL_DIGEST
    from followthrough.domain.notice import DigestRequest, OutboxStatus
    from workflows import NOTICE_RETRY


@workflow.defn
class CouncilDigestWorkflow:
    @workflow.run
    async def run(self, request: DigestRequest) -> OutboxStatus:
        as_of = request.at or workflow.now()
        # Only the activity's input changes with the period, never the commands: histories
        # recorded before monthly digests existed replay unchanged (tests/test_replay.py).
        status: OutboxStatus = await workflow.execute_activity(
            SEND_COUNCIL_DIGEST,
            request.model_copy(update={"at": as_of}),
            result_type=OutboxStatus,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=NOTICE_RETRY,
        )
        return status
