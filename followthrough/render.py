"""Plain-text views for the CLI: data in, text out."""

from __future__ import annotations

from datetime import datetime

from followthrough.domain.criteria import Manual
from followthrough.domain.draft import merged_timeline, prefilled_timeline
from followthrough.domain.incident import is_demo_record
from followthrough.domain.notice import OutboxMessage
from followthrough.domain.postmortem import (
    SYSTEM_ACTOR,
    ActionItem,
    AuditAction,
    AuditEvent,
    Postmortem,
)
from followthrough.domain.themes import Theme


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "-"


def postmortem_line(pm: Postmortem) -> str:
    return (
        f"{pm.id:<40} {pm.state.value:<18} {pm.severity:<5} {pm.team or '-':<10} "
        f"{pm.owner:<10} {pm.incident.title}"
    )


def action_item_line(item: ActionItem) -> str:
    spec = item.spec
    return (
        f"{item.id:<48} {item.state.value:<13} {spec.priority.value:<3} {item.due.isoformat()} "
        f"{item.owner:<10} {spec.title}"
    )


def postmortem_detail(pm: Postmortem, items: list[ActionItem], trail: list[AuditEvent]) -> str:
    incident = pm.incident
    approvals = sorted(pm.approvals())
    lines = [
        f"{pm.id}  [{pm.state.value}]"
        + ("  demo record: seeded, no workflow behind it" if is_demo_record(pm.id) else ""),
        f"  {incident.title}",
        f"  severity {pm.severity} ({'required' if pm.required else 'optional'}) · "
        f"team {pm.team or '-'} · owner {pm.owner}",
        f"  opened {when(pm.opened_at)} · draft due {when(pm.draft_due)}"
        + (f" · closed {when(pm.closed_at)}" if pm.closed_at else ""),
        f"  approvals {len(approvals)}/{pm.approvals_required}"
        + (f" ({', '.join(approvals)})" if approvals else "")
        + (f" on draft version {pm.draft_version}" if pm.draft_version else ""),
        "",
        "Incident",
        f"  {incident.source} {incident.id} · services {', '.join(incident.services) or '-'}"
        f" · commander {incident.commander or '-'}",
    ]
    if incident.summary:
        lines.append(f"  {incident.summary}")
    if incident.url:
        lines.append(f"  {incident.url}")

    timeline = merged_timeline(incident, pm.draft) if pm.draft else prefilled_timeline(incident)
    lines += ["", "Timeline"]
    lines += [f"  {when(e.at)}  {e.kind:<12} {e.description}" for e in timeline]

    draft = pm.draft
    if draft is None:
        lines += ["", "No draft submitted yet."]
    else:
        lines += ["", "Impact", f"  {draft.impact.strip()}"]
        lines += ["", "Contributing factors"]
        lines += [
            f"  - {f.description}" + (f"  [{', '.join(f.tags)}]" if f.tags else "")
            for f in draft.contributing_factors
        ]
        lines += ["", "Detection gaps", *(f"  - {g}" for g in draft.detection_gaps)]
        lines += ["", "Recovery steps", *(f"  - {s}" for s in draft.recovery_steps)]
        if pm.slo_review:
            lines += ["", "Error budgets", *_slo_lines(pm)]
        lines += ["", "Action items"]
        if items:
            for item in items:
                lines += _item_block(item)
        else:
            lines += [
                f"  (proposed) {a.priority or '-'} {a.title} · owner {a.owner or '-'} · due "
                f"{a.due.isoformat() if a.due else '-'}"
                for a in draft.action_items
            ]
    reviews = [
        f"  {when(r.at)}  {r.reviewer} {r.verdict.value} v{r.draft_version}"
        + (f": {r.comment}" if r.comment else "")
        for r in pm.reviews
    ]
    if reviews:
        lines += ["", "Reviews", *reviews]
    closing = [e for e in trail if e.action == AuditAction.POSTMORTEM_CLOSED]
    if closing:  # its evidence lines get a section of their own, not the audit table's tail
        lines += ["", "Closing record", *(f"  {line}" for line in closing[-1].detail.splitlines())]
    lines += ["", "Audit trail"]
    lines += [audit_line(event) for event in trail]
    return "\n".join(lines)


def _slo_lines(pm: Postmortem) -> list[str]:
    lines = []
    for a in pm.slo_review:
        i, slo = a.impact, a.slo
        lines += [
            f"  {slo.id} ({slo.service}, {slo.objective * 100:g}% over {slo.period.days} days) · "
            f"{a.method}",
            f"    burn rate {i.burn_rate:.1f}x over {i.duration.total_seconds() / 60:.0f} min · "
            f"consumed {i.budget_consumed:.1%} · remaining {i.budget_remaining_before:.1%} -> "
            f"{i.budget_remaining_after:.1%}",
        ]
        lines += [f"    {f.kind}: {f.evidence}" for f in a.findings]
        lines += [f"    note: {note}" for note in a.notes]
        if a.freeze_recommended:
            lines.append(f"    release freeze recommended for {slo.service} (council told)")
    return lines


def _one_line(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _item_block(item: ActionItem) -> list[str]:
    spec = item.spec
    criterion = spec.acceptance_criterion
    block = [
        f"  {item.id}  [{item.state.value}]",
        f"    {spec.priority.value} {spec.title} · owner {item.owner} ({item.team}) · "
        f"due {item.due.isoformat()}",
        f"    accepted when: {criterion.summary()}"
        + (
            f" (verifier: {criterion.verifier})"
            if isinstance(criterion, Manual) and criterion.verifier
            else ""
        ),
    ]
    if spec.slo_change:
        block.append(f"    changes the {spec.slo_change.change} of SLO {spec.slo_change.slo}")
    for at, what, text in item_history(item):
        block.append(f"    {when(at)} {what}" + (f": {text}" if text else ""))
    return block


def item_history(item: ActionItem) -> list[tuple[datetime, str, str]]:
    """Claims, people's verdicts and check evidence, oldest first: (when, what, details)."""
    history = [(c.at, f"done claimed by {c.by}", c.evidence) for c in item.claims]
    history += [
        (d.at, f"{'verified' if d.verified else 'rejected'} by {d.by}", d.note)
        for d in item.decisions
        if d.by != SYSTEM_ACTOR  # a check's verdict is shown with its evidence below
    ]
    history += [
        (
            c.result.at,
            f"{c.purpose} check {c.attempt} {'passed' if c.result.passed else 'FAILED'}",
            f"{c.result.reason}\n      asked:  {c.result.asked}"
            + (f"\n      answer: {_one_line(c.result.answer)}" if c.result.answer else ""),
        )
        for c in item.checks
    ]
    return sorted(history, key=lambda entry: entry[0])


def action_item_detail(item: ActionItem, trail: list[AuditEvent]) -> str:
    lines = [*_item_block(item), f"    postmortem {item.postmortem_id}"]
    if item.spec.proposed_change:
        lines += [
            "",
            "Proposed change",
            *(f"  {line}" for line in item.spec.proposed_change.splitlines()),
        ]
    lines += ["", "Audit trail"]
    lines += [audit_line(e) for e in trail if e.workflow_id == item.id]
    return "\n".join(lines)


def audit_line(event: AuditEvent) -> str:
    subject = event.workflow_id.removeprefix(event.postmortem_id).lstrip("-") or "postmortem"
    at = event.at.strftime("%Y-%m-%d %H:%M:%S")
    detail = event.detail.splitlines()[0] if event.detail else ""  # one row per event
    more = " ..." if "\n" in event.detail.strip() else ""
    return f"  {at}  {event.actor:<13} {event.action:<22} {subject:<10} {detail}{more}"


def theme_detail(theme: Theme) -> str:
    lines = [
        f"{theme.tag}: {len(theme.postmortem_ids)} postmortems whose incidents resolved "
        f"{theme.resolved_between}; the council was told "
        f"{when(theme.reached_at)} (reached by {theme.reached_by})"
    ]
    return "\n".join([*lines, *(f"    {pm_id}" for pm_id in theme.postmortem_ids)])


def outbox_line(message: OutboxMessage) -> str:
    return (
        f"{message.created_at.strftime('%Y-%m-%d %H:%M')}  {message.status.value:<7} "
        f"{', '.join(message.recipients):<34} {message.subject}\n    {message.dedupe_key}"
    )


def outbox_detail(message: OutboxMessage) -> str:
    return "\n".join(
        [
            f"Key:     {message.dedupe_key}",
            f"Status:  {message.status.value}"
            + (f" at {when(message.sent_at)}" if message.sent_at else ""),
            f"To:      {', '.join(message.recipients)}",
            f"Subject: {message.subject}",
            "",
            message.text,
        ]
    )
