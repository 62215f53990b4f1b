"""Orchestration only: deterministic workflow code, no I/O.

The one task queue and the custom search attributes live here so the worker, the starter and the
embedded Temporal server agree on them.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from followthrough.domain.postmortem import ActionItemChange, AuditEvent, PostmortemChange

TASK_QUEUE = "followthrough"

# Storage writes are small; a slow database gets retried rather than waited on.
RECORD_TIMEOUT = timedelta(seconds=10)

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


def refuse(refusal: str | None) -> None:
    """Reject an update from its validator: the caller gets the message and nothing changes."""
    if refusal is not None:
        raise ApplicationError(refusal, type="Refused", non_retryable=True)


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


async def record(activity: str, change: PostmortemChange | ActionItemChange) -> None:
    """Append the audit event and store the snapshot.

    The caller takes the sequence number before the activity runs, so a retried or replayed write
    lands on the same (workflow id, seq) row and is not written twice.
    """
    event = change.event
    workflow.logger.info("%s by %s", event.action, event.actor, extra={"seq": event.seq})
    await workflow.execute_activity(activity, change, start_to_close_timeout=RECORD_TIMEOUT)
