"""Storage activities: write the record of what a workflow did, idempotently (and the reads a
workflow needs: which open items own some tickets, which recurring themes an approval reached)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import (
    IMPACT_FACTS,
    NOTE_THEMES,
    OPEN_ITEMS_FOR_TICKETS,
    RECORD_ACTION_ITEM,
    RECORD_POSTMORTEM,
)
from followthrough.domain.impact import ImpactFacts, ImpactFactsRequest
from followthrough.domain.postmortem import ActionItemChange, PostmortemChange
from followthrough.domain.themes import FactorTags, Theme
from followthrough.logging import get_logger
from followthrough.storage import Store

log = get_logger(__name__)


@contextmanager
def refused_for_good() -> Iterator[None]:
    """A write the database refuses for what it holds (too long, a NUL byte, a broken constraint)
    is refused the same way on every retry: non-retryable. A lost connection is retried."""
    try:
        yield
    except (OperationalError, InterfaceError):
        raise
    except (DBAPIError, ValueError) as err:
        reason = str(err).splitlines()[0]
        log.error("record refused", error=reason)
        raise ApplicationError(reason, type="RecordRefused", non_retryable=True) from err


class RecordActivities:
    """Sync activities (run in the worker's thread pool) over one Store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @activity.defn(name=RECORD_POSTMORTEM)
    def record_postmortem(self, change: PostmortemChange) -> None:
        with refused_for_good():
            written = self.store.records.record_postmortem(change)
        self._log(change.event.workflow_id, change.event.seq, change.event.action, written)

    @activity.defn(name=RECORD_ACTION_ITEM)
    def record_action_item(self, change: ActionItemChange) -> None:
        with refused_for_good():
            written = self.store.records.record_action_item(change)
        self._log(change.event.workflow_id, change.event.seq, change.event.action, written)

    @activity.defn(name=OPEN_ITEMS_FOR_TICKETS)
    def open_items_for_tickets(self, keys: list[str]) -> dict[str, str]:
        """Ticket key -> action item id, for open items whose ticket is one of `keys`."""
        return self.store.records.items_with_tickets(keys, state="open")

    @activity.defn(name=NOTE_THEMES)
    def note_themes(self, note: FactorTags) -> list[Theme]:
        """Record an approved postmortem's factor tags; the recurring themes it newly reached
        (the same ones again on a retry)."""
        themes = self.store.themes.note_factor_tags(note)
        log.info(
            "factor tags recorded",
            postmortem_id=note.postmortem_id,
            tags=note.tags,
            themes=[t.key for t in themes],
            attempt=activity.info().attempt,
        )
        return themes

    @activity.defn(name=IMPACT_FACTS)
    def impact_facts(self, request: ImpactFactsRequest) -> ImpactFacts | None:
        """What the postmortem's items' impact scores stand on now (None: not recorded)."""
        window = timedelta(days=request.window_days)
        facts = self.store.facts.postmortem_impact(request.postmortem_id, window=window)
        log.info(
            "impact facts read",
            postmortem_id=request.postmortem_id,
            found=facts is not None,
            attempt=activity.info().attempt,
        )
        return facts

    def _log(self, workflow_id: str, seq: int, action: str, written: bool) -> None:
        log.info(
            "recorded" if written else "already recorded",
            workflow_id=workflow_id,
            seq=seq,
            action=action,
            attempt=activity.info().attempt,
        )
