"""The reliability backlog read from the record: open items scored and ranked under the policy.

One read for the API, the CSV, the dashboard page and the ticket's priority, so they agree.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from pydantic import BaseModel, ConfigDict

from followthrough.domain.backlog import RankedItem, backlog_rows, rank_backlog
from followthrough.domain.impact import ImpactScore, TicketPriority, impact_score, priority_for
from followthrough.domain.limits import ACTION_ITEMS, BACKLOG_ITEMS
from followthrough.domain.policy import Policy
from followthrough.domain.restricted import Reader
from followthrough.storage import Store


class RankedBacklog(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[RankedItem]
    truncated: bool  # more open items than BACKLOG_ITEMS: the soonest due were ranked


class ItemImpact(BaseModel):
    """One item's score, explained, and the ticket priority it earns."""

    model_config = ConfigDict(frozen=True)

    impact: ImpactScore
    suggested_priority: TicketPriority
    explanation: str


def read_backlog(store: Store, policy: Policy, reader: Reader | None = None) -> RankedBacklog:
    """`reader`: the items of the postmortems they may read (None: all, for the system)."""
    window = timedelta(days=policy.themes.window_days)
    items, truncated = store.facts.open_items(window=window, most=BACKLOG_ITEMS, reader=reader)
    ranked = rank_backlog(items, policy.impact, policy.failure_classes, list(policy.severities))
    return RankedBacklog(items=ranked, truncated=truncated)


def impacts_of(store: Store, policy: Policy, postmortem_id: str) -> dict[str, ItemImpact]:
    """Each of a postmortem's items' impact now, by item id (resolved ones too)."""
    window = timedelta(days=policy.themes.window_days)
    found, _ = store.facts.open_items(window=window, most=ACTION_ITEMS, postmortem_id=postmortem_id)
    impacts = {}
    for item in found:
        score = impact_score(item.facts, policy.impact, policy.failure_classes)
        impacts[item.id] = ItemImpact(
            impact=score,
            suggested_priority=priority_for(score.score, policy.impact),
            explanation=score.explanation(),
        )
    return impacts


def item_impact(
    store: Store, policy: Policy, item_id: str, postmortem_id: str
) -> ItemImpact | None:
    """The item's impact now (None: no such item in the record)."""
    return impacts_of(store, policy, postmortem_id).get(item_id)


def backlog_csv(ranked: list[RankedItem]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(backlog_rows(ranked))
    return out.getvalue()
