"""Orchestration only: deterministic workflow code, no I/O.

The one task queue and the custom search attributes live here so the worker, the starter and the
embedded Temporal server agree on them.
"""

from datetime import timedelta

from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

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
