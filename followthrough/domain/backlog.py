"""The reliability backlog: open action items across postmortems, ranked by user impact.

Ranked by score, highest first; ties by severity (worst first, the policy's order), then the
sooner due date, then the item's id, so the order is total and a page's cursor is stable. The top
`impact.sprint_suggestions` items of each team are suggested for this sprint.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from followthrough.domain.impact import (
    FailureClass,
    ImpactFacts,
    ImpactPolicy,
    ImpactScore,
    TicketPriority,
    impact_score,
    priority_for,
)


class OpenItem(BaseModel):
    """An open action item as the backlog reads it from the record."""

    model_config = ConfigDict(frozen=True)

    id: str
    postmortem_id: str
    postmortem_title: str
    title: str
    owner: str
    team: str
    due: date
    priority: str  # the author's
    state: str
    services: list[str] = Field(default_factory=list)
    facts: ImpactFacts


class RankedItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    rank: int = Field(ge=1)
    item: OpenItem
    impact: ImpactScore
    suggested_priority: TicketPriority
    this_sprint: bool  # among its team's top items


class BacklogPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[RankedItem]
    next_cursor: str | None = Field(
        default=None, description="pass as `cursor` for the next page; none: the last page"
    )
    total: int = Field(description="open items matching the filters")
    truncated: bool = Field(
        default=False, description="more open items exist than one backlog ranks; the rest unread"
    )


SortKey = tuple[float, int, str, str]


def _key(score: float, item: OpenItem, severities: list[str]) -> SortKey:
    severity = item.facts.severity
    severity_rank = severities.index(severity) if severity in severities else len(severities)
    return (-score, severity_rank, item.due.isoformat(), item.id)


def _sort_key(ranked: RankedItem, severities: list[str]) -> SortKey:
    return _key(ranked.impact.score, ranked.item, severities)


def rank_backlog(
    items: list[OpenItem],
    policy: ImpactPolicy,
    failure_classes: dict[str, FailureClass],
    severities: list[str],
) -> list[RankedItem]:
    """Every item scored and ranked; each team's top `sprint_suggestions` marked for this sprint."""
    scored = [(impact_score(item.facts, policy, failure_classes), item) for item in items]
    scored.sort(key=lambda pair: _key(pair[0].score, pair[1], severities))
    per_team: dict[str, int] = {}
    ranked = []
    for position, (score, item) in enumerate(scored, start=1):
        taken = per_team.get(item.team, 0)
        per_team[item.team] = taken + 1
        ranked.append(
            RankedItem(
                rank=position,
                item=item,
                impact=score,
                suggested_priority=priority_for(score.score, policy),
                this_sprint=taken < policy.sprint_suggestions,
            )
        )
    return ranked


class InvalidCursor(ValueError):
    """A cursor this backlog did not hand out."""


def encode_cursor(ranked: RankedItem, severities: list[str]) -> str:
    raw = json.dumps(list(_sort_key(ranked, severities)), separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> SortKey:
    """The sort key a cursor stands after; InvalidCursor naming the field otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        score, severity, due, item_id = json.loads(raw)
        if not (
            isinstance(score, int | float)
            and isinstance(severity, int)
            and isinstance(due, str)
            and isinstance(item_id, str)
        ):
            raise ValueError
        date.fromisoformat(due)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidCursor("cursor: not one this backlog handed out; start without it") from None
    return (float(score), severity, due, item_id)


def of_team_or_service(
    ranked: list[RankedItem], team: str | None, service: str | None
) -> list[RankedItem]:
    """The items of `team` (its own) and of `service` (their incident's), when given."""
    return [
        r
        for r in ranked
        if (not team or r.item.team == team) and (not service or service in r.item.services)
    ]


def backlog_page(
    ranked: list[RankedItem],
    severities: list[str],
    *,
    team: str | None = None,
    service: str | None = None,
    cursor: str | None = None,
    limit: int,
    truncated: bool = False,
) -> BacklogPage:
    """One page of the ranked backlog, of a team's or a service's items if given, after `cursor`."""
    chosen = of_team_or_service(ranked, team, service)
    after = decode_cursor(cursor) if cursor else None
    rest = [r for r in chosen if after is None or _sort_key(r, severities) > after]
    page = rest[:limit]
    more = len(rest) > limit
    return BacklogPage(
        items=page,
        next_cursor=encode_cursor(page[-1], severities) if more and page else None,
        total=len(chosen),
        truncated=truncated,
    )


CSV_COLUMNS = (
    "rank",
    "score",
    "suggested_priority",
    "this_sprint",
    "item",
    "title",
    "postmortem",
    "owner",
    "team",
    "due",
    "priority",
    "state",
    "reasons",
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """The cell as a spreadsheet shows it, never runs it: a formula's first character is
    preceded by an apostrophe (OWASP's advice for CSV injection)."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def backlog_rows(ranked: list[RankedItem]) -> list[list[str]]:
    """The backlog as CSV rows, the header first, every text cell made spreadsheet-safe."""
    rows = [list(CSV_COLUMNS)]
    for found in ranked:
        item = found.item
        reasons = "; ".join(f"{c.label}: {c.figure}" for c in found.impact.top_reasons(3))
        cells = [
            str(found.rank),
            f"{found.impact.score:g}",
            found.suggested_priority,
            "yes" if found.this_sprint else "no",
            item.id,
            item.title,
            item.postmortem_title,
            item.owner,
            item.team,
            item.due.isoformat(),
            item.priority,
            item.state,
            reasons,
        ]
        rows.append([spreadsheet_safe(cell) for cell in cells])
    return rows
