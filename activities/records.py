"""Storage activities: write the record of what a workflow did, idempotently."""

from __future__ import annotations

from temporalio import activity

from activities import RECORD_ACTION_ITEM, RECORD_POSTMORTEM
from followthrough.domain.postmortem import ActionItemChange, PostmortemChange
from followthrough.logging import get_logger
from followthrough.storage import Store

log = get_logger(__name__)


class RecordActivities:
    """Sync activities (run in the worker's thread pool) over one Store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @activity.defn(name=RECORD_POSTMORTEM)
    def record_postmortem(self, change: PostmortemChange) -> None:
        written = self.store.record_postmortem(change)
        self._log(change.event.workflow_id, change.event.seq, change.event.action, written)

    @activity.defn(name=RECORD_ACTION_ITEM)
    def record_action_item(self, change: ActionItemChange) -> None:
        written = self.store.record_action_item(change)
        self._log(change.event.workflow_id, change.event.seq, change.event.action, written)

    def _log(self, workflow_id: str, seq: int, action: str, written: bool) -> None:
        log.info(
            "recorded" if written else "already recorded",
            workflow_id=workflow_id,
            seq=seq,
            action=action,
            attempt=activity.info().attempt,
        )
