"""The council digest: built from the record, as of a moment. Data in, data out."""

from __future__ import annotations

from datetime import datetime, timedelta

from followthrough.domain.escalation import days_overdue
from followthrough.domain.notice import Digest, DigestEntry
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItem, ActionItemState, Postmortem


def build_digest(
    at: datetime, items: list[ActionItem], postmortems: dict[str, Postmortem], policy: Policy
) -> Digest:
    """Escalated (reached the council and still open), overdue (not yet at the council), and risk
    accepted in the past week, worst first; plus the week's headline numbers. The items of a
    restricted postmortem are counted in the numbers, never listed (the council is not its
    group)."""
    calendar = policy.calendar
    today = calendar.local_date(at)
    year, week, _ = today.isocalendar()
    week_ago = at - timedelta(days=7)
    digest = Digest(at=at, week=f"{year}-W{week:02d}")
    for item in items:
        pm = postmortems.get(item.postmortem_id)
        incident = f"{pm.incident.id} {pm.severity}: {pm.incident.title}" if pm else "-"
        overdue = days_overdue(item.due, today, calendar)
        council = any(e.notify == "council" and e.plan == item.plan for e in item.escalations)
        entry = DigestEntry(
            item_id=item.id,
            title=item.spec.title,
            priority=item.spec.priority.value,
            owner=item.owner,
            team=item.team,
            due=item.due,
            days_overdue=overdue,
            incident=incident,
            escalated_to_council=council,
        )
        if pm is not None and pm.restricted_to is not None:
            if item.state is ActionItemState.VERIFIED:
                recent = item.verified_at is not None and item.verified_at >= week_ago
                digest.verified_this_week += recent
            elif item.state is not ActionItemState.RISK_ACCEPTED:
                digest.open_items += 1
            continue
        if item.state is ActionItemState.RISK_ACCEPTED:
            acceptance = item.risk_acceptance
            if acceptance is not None and acceptance.at >= week_ago:
                digest.risk_accepted.append(
                    entry.model_copy(update={"note": f"{acceptance.by}: {acceptance.reason}"})
                )
            continue
        if item.state is ActionItemState.VERIFIED:
            if item.verified_at is not None and item.verified_at >= week_ago:
                digest.verified_this_week += 1
            continue
        digest.open_items += 1
        if council:
            digest.escalated.append(entry)
        elif overdue > 0 and item.state is not ActionItemState.QUEUED:
            digest.overdue.append(entry)
    worst_first = lambda e: (-e.days_overdue, e.priority, e.item_id)  # noqa: E731
    digest.escalated.sort(key=worst_first)
    digest.overdue.sort(key=worst_first)
    return digest
