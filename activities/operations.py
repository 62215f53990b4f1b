"""The stuck-work sweep's activity: find what is stuck, and tell the operators of each once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import activity

from activities import PRUNE_ALERT_EVENTS, REPORT_STUCK_WORK
from followthrough.domain.alert_quality import AlertPruning
from followthrough.domain.limits import ALERTS_PRUNED_PER_RUN
from followthrough.domain.notice import NoticeKind, OutboxMessage, OutboxStatus
from followthrough.domain.policy import Policy, PolicySource, current
from followthrough.domain.stuck import STUCK_WORK_ID, StuckWork, StuckWorkSweep
from followthrough.logging import get_logger
from followthrough.notices.delivery import Mailer, PermanentDeliveryError
from followthrough.notices.render import render_stuck_work
from followthrough.storage import Store
from followthrough.temporal.operations import find_stuck_work

log = get_logger(__name__)

# Batches of ALERTS_PRUNED_PER_RUN one pruning run forgets at most.
ALERT_PRUNING_BATCHES = 10


class OperationsActivities:
    def __init__(self, store: Store, mailer: Mailer, policy: PolicySource) -> None:
        self.store = store
        self.mailer = mailer
        self.source = policy

    @property
    def policy(self) -> Policy:
        """Today's directory: who the operators are now."""
        return current(self.source)

    @activity.defn(name=REPORT_STUCK_WORK)
    async def report_stuck_work(self, sweep: StuckWorkSweep) -> list[str]:
        """Email the operators about each stuck workflow they have not heard of; the outbox keys
        of the emails sent. Each is recorded before it is sent, under its workflow and problem,
        so however often the sweep runs (or this activity is retried) it goes out once."""
        report = await find_stuck_work(activity.client(), sweep.task_queue)
        at = sweep.at or activity.info().current_attempt_scheduled_time
        recipients = [self.policy.email_of(person) for person in self.policy.operator_names]
        sent = []
        for stuck in report.stuck:
            claimed = await asyncio.to_thread(self._claim, stuck, recipients, at)
            if claimed.status is not OutboxStatus.PENDING:
                continue  # told before (or refused for good before)
            try:
                status = await self.mailer.deliver(claimed)
            except PermanentDeliveryError as err:
                # The mail server will refuse it again: kept as failed, with why, and not retried.
                log.error("stuck work report refused", dedupe_key=stuck.dedupe_key, error=str(err))
                await asyncio.to_thread(self.store.outbox.fail, claimed, str(err))
                continue
            await asyncio.to_thread(self.store.outbox.mark, stuck.dedupe_key, status, at)
            log.warning(
                "stuck work reported",
                workflow_id=stuck.workflow_id,
                problem=stuck.problem,
                error=stuck.error.splitlines()[0] if stuck.error else "",
            )
            sent.append(stuck.dedupe_key)
        return sent

    @activity.defn(name=PRUNE_ALERT_EVENTS)
    async def prune_alert_events(self, pruning: AlertPruning) -> int:
        """Forget alert events past the policy's `alerts.retention_days`, a few small batches
        per run (each its own transaction), so a year's backlog never holds a long lock; how
        many. The stuck-work sweep runs it every few minutes: what is left waits for the next."""
        before = pruning.at - timedelta(days=self.policy.alerts.retention_days)
        gone = 0
        for _ in range(ALERT_PRUNING_BATCHES):
            batch = await asyncio.to_thread(self.store.alerts.prune, before, ALERTS_PRUNED_PER_RUN)
            gone += batch
            if batch < ALERTS_PRUNED_PER_RUN:
                break
        if gone:
            log.info("alert events pruned", count=gone, before=before.isoformat())
        return gone

    def _claim(self, stuck: StuckWork, recipients: list[str], at: datetime) -> OutboxMessage:
        email = render_stuck_work(stuck, self.mailer.links)
        return self.store.outbox.claim(
            OutboxMessage(
                dedupe_key=stuck.dedupe_key,
                kind=NoticeKind.STUCK_WORK,
                postmortem_id=STUCK_WORK_ID,
                action_item_id=None,
                recipients=recipients,
                subject=email.subject,
                text=email.text,
                html=email.html,
                status=OutboxStatus.PENDING,
                created_at=at,
                sent_at=None,
            )
        )
