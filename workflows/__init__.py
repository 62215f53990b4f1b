"""Orchestration only: deterministic workflow code, no I/O.

The custom search attributes live here so the worker, the starter and the embedded Temporal
server agree on them (the task queue's name is followthrough.temporal.TASK_QUEUE).
"""

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributePair
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import SEND_NOTICE
    from followthrough.domain.limits import HISTORY_BYTES_BEFORE_CONTINUING
    from followthrough.domain.notice import Notice
    from followthrough.domain.postmortem import ActionItemChange, AuditEvent, PostmortemChange
    from followthrough.domain.problems import Refusal

# An action item tells its postmortem it is resolved (verified or risk accepted) by this signal.
ITEM_RESOLVED = "item_resolved"
# A ticket reached a done status (a Jira webhook or the reconciliation): a done claim.
TICKET_DONE = "ticket_done"
# Jira down for an hour must delay tickets, not lose them: retry with backoff, without a deadline.
# That never stalls a follow-up: ticket work runs in the background (InFlight) or on a schedule,
# and what Jira refuses for good (a 4xx) is non-retryable (activities/tickets.py) and stops at once.
TICKET_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))

# Storage writes are small; a slow database gets retried rather than waited on.
RECORD_TIMEOUT = timedelta(seconds=10)
# A ladder step's record and notice (escalate_item) beat while they work: a worker killed in the
# middle is noticed after this, not after the notice's whole timeout.
ESCALATION_HEARTBEAT = timedelta(seconds=10)
# SMTP down for hours must delay mail, not lose it: retry with backoff, every 10 minutes at most,
# for about two days; then the activity keeps it in the outbox as failed, with the reason. What
# fails for good (it cannot be rendered, the server refuses it) fails at once: non-retryable.
NOTICE_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=10), maximum_attempts=300)
NOTICE_TIMEOUT = timedelta(seconds=60)

POSTMORTEM_STATE = SearchAttributeKey.for_keyword("PostmortemState")
POSTMORTEM_SEVERITY = SearchAttributeKey.for_keyword("PostmortemSeverity")
OWNING_TEAM = SearchAttributeKey.for_keyword("OwningTeam")
ACTION_ITEM_STATE = SearchAttributeKey.for_keyword("ActionItemState")

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[str], ...] = (
    POSTMORTEM_STATE,
    POSTMORTEM_SEVERITY,
    OWNING_TEAM,
    ACTION_ITEM_STATE,
)


def postmortem_attributes(
    state: str, severity: str, team: str | None
) -> list[SearchAttributePair[str]]:
    """What a postmortem is found by: set at its start (the client), kept up to date by it."""
    pairs = [
        SearchAttributePair(POSTMORTEM_STATE, state),
        SearchAttributePair(POSTMORTEM_SEVERITY, severity),
    ]
    if team:
        pairs.append(SearchAttributePair(OWNING_TEAM, team))
    return pairs


def refuse(refusal: Refusal | None) -> None:
    """Reject an update from its validator: the caller gets the message and nothing changes.

    The error's type is the refusal's kind, so the HTTP API can answer 403, 409 or 422.
    """
    if refusal is not None:
        raise ApplicationError(str(refusal), type=refusal.kind.value, non_retryable=True)


async def judge_when_opened(
    opened: Callable[[], bool], validate: Callable[[Any], None], request: Any
) -> None:
    """In an update handler: wait until the opening is recorded, then let the validator judge again.

    Validators of updates that arrive in one batch all see the same state, so the handler
    re-checks right before it changes anything and has the final say.
    """
    await workflow.wait_condition(opened)
    validate(request)


def audit_event(
    workflow_id: str, postmortem_id: str, seq: int, actor: str, action: str, detail: str
) -> AuditEvent:
    return AuditEvent(
        workflow_id=workflow_id,
        postmortem_id=postmortem_id,
        seq=seq,
        at=workflow.now(),
        actor=actor,
        action=action,
        detail=detail,
    )


async def record(
    activity: str, change: PostmortemChange | ActionItemChange, *, local: bool = False
) -> None:
    """Append the audit event and store the snapshot.

    The caller takes the sequence number before the activity runs, so a retried or replayed write
    lands on the same (workflow id, seq) row and is not written twice. `local` runs it in the
    worker's workflow task (a local activity): no activity task on the server and no second
    workflow task for what follows; for a step taken right after a workflow task began (the
    opening), not one that waits on people.
    """
    event = change.event
    workflow.logger.info("%s by %s", event.action, event.actor, extra={"seq": event.seq})
    try:
        if local:
            await workflow.execute_local_activity(
                activity, change, start_to_close_timeout=RECORD_TIMEOUT
            )
        else:
            await workflow.execute_activity(activity, change, start_to_close_timeout=RECORD_TIMEOUT)
    except ActivityError as err:
        # Only a write the database refuses for good ends here (a database that is down is
        # retried). The follow-up goes on: the next write stores the whole snapshot again.
        workflow.logger.error("%s not recorded: %s", event.action, err.cause)


async def send_notice(notice: Notice) -> None:
    """Have the activity render, record and deliver the notice (once per dedupe key).

    A message that cannot be rendered, that the mail server refuses for good (a bad address) or
    that was given up on is logged and kept in the outbox as failed; it must not fail the
    follow-up it is about. Callers run it in the background (InFlight), never awaiting it inline.
    """
    try:
        await workflow.execute_activity(
            SEND_NOTICE,
            notice,
            start_to_close_timeout=NOTICE_TIMEOUT,
            retry_policy=NOTICE_RETRY,
        )
    except ActivityError as err:
        workflow.logger.error("notice %s not delivered: %s", notice.dedupe_key, err.cause)


class InFlight:
    """Side effects that run in the background (notices, ticket updates), so a person's action is
    answered at once even while the mail server or Jira is down for hours; the workflow waits for
    them all before it completes."""

    def __init__(self, handoffs: bool | None = None) -> None:
        self._running: list[asyncio.Task[None]] = []
        # Hand-off notices: decided once, on first use, unless the start says (no marker).
        self._handoffs = handoffs

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        self._running.append(asyncio.create_task(work))

    def hand_off(self, notice: Notice | None) -> None:
        """Tell whoever the work landed on, in the background. Histories from before hand-off
        notices sent none: the patch keeps them replaying as they ran."""
        if notice is None:
            return
        if self._handoffs is None:
            self._handoffs = workflow.patched("handoff-notices")
        if self._handoffs:
            self.start(send_notice(notice))

    async def all_done(self) -> None:
        await asyncio.gather(*self._running)

    def idle(self) -> bool:
        """Nothing running: a run may continue as new without leaving work behind."""
        return all(task.done() for task in self._running)


# Long-lived workflows continue as new at safe points (histories from before never did).
CONTINUE_AS_NEW_PATCH = "soak-continue-as-new"


def history_is_long(events: int) -> bool:
    """Past `events` or HISTORY_BYTES_BEFORE_CONTINUING, or Temporal suggests continuing as new."""
    info = workflow.info()
    return (
        info.is_continue_as_new_suggested()
        or info.get_current_history_length() > events
        or info.get_current_history_size() > HISTORY_BYTES_BEFORE_CONTINUING
    )


async def reached(at: datetime, changed: Callable[[], bool]) -> bool:
    """Wait on a durable timer until `at`; False if `changed` became true first."""
    wait = at - workflow.now()
    if wait <= timedelta(0):
        return True
    try:
        await workflow.wait_condition(changed, timeout=wait)
    except TimeoutError:
        return True
    return False
