"""Render a notice into a multipart email: a subject, a plain-text body and an HTML body.

Everything the reader needs to act is in the message: the incident, the postmortem, the item and
its acceptance criterion, the due date, how overdue it is, what was sent before, and how to act.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from followthrough.domain.access import LinkAction, OneClickLink, link_nonce, sign_link
from followthrough.domain.metrics import (
    DURATIONS,
    Period,
    ReliabilityMetrics,
    figures_basis,
    format_percent,
    headline,
    response_coverage,
    timing_cells,
)
from followthrough.domain.notice import (
    HANDOFF_KINDS,
    Digest,
    Notice,
    NoticeKind,
    OutboxMessage,
    OutboxStatus,
)
from followthrough.domain.postmortem import ActionItem, Postmortem
from followthrough.domain.stuck import StuckWork
from followthrough.hrefs import safe_url

TEMPLATES = Path(__file__).resolve().parent / "templates"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    auto_reload=False,  # they ship with the code: no file check before each of many renders
)
_environment.filters["safe_url"] = safe_url  # only http(s) URLs become links


@dataclass(frozen=True)
class Links:
    """Where a reader goes to act."""

    temporal_ui: str  # e.g. http://127.0.0.1:8233
    namespace: str = "default"
    public_url: str | None = None  # the HTTP API, for one-click links; None: no such links
    link_secret: str | None = None
    link_ttl: timedelta = timedelta(days=7)

    def reliability(self, month: str) -> str | None:
        """The dashboard's Metrics page for a month ('2026-10'); None without a public URL."""
        if self.public_url is None:
            return None
        return f"{self.public_url.rstrip('/')}/reliability?{urlencode({'month': month})}"

    def page(self, path: str) -> str | None:
        """A dashboard page ('/operations'); None without a public URL."""
        return f"{self.public_url.rstrip('/')}{path}" if self.public_url else None

    def where_to_act(self, notice: Notice) -> str | None:
        """The page a notice's reader acts on: the draft's editor for whoever writes it, the
        review page for a reviewer, else the postmortem's page (sign-in decides who may act)."""
        return self.postmortem(notice.postmortem_id, _ACTED_ON.get(notice.kind, ""))

    def postmortem(self, postmortem_id: str, tail: str = "") -> str | None:
        """The postmortem's page (or one of its pages: `tail`, e.g. "/draft")."""
        return self.page(f"/postmortems/{quote(postmortem_id, safe='')}{tail}")

    def workflow(self, workflow_id: str) -> str:
        return f"{self.temporal_ui.rstrip('/')}/namespaces/{self.namespace}/workflows/{workflow_id}"

    def one_click(self, notice: Notice, item: ActionItem) -> dict[str, str]:
        """Signed links for the item's owner: acknowledge (until they have), ask for more time.

        Derived from the notice alone, so a retried rendering makes the very same links.
        """
        if self.public_url is None or self.link_secret is None or item.resolved:
            return {}
        actions = [LinkAction.REQUEST_EXTENSION]
        if item.acknowledged_at is None:
            actions.insert(0, LinkAction.ACKNOWLEDGE)
        links = {}
        for action in actions:
            link = OneClickLink(
                action=action,
                action_item_id=item.id,
                person=item.owner,
                expires_at=notice.at + self.link_ttl,
                nonce=link_nonce(notice.dedupe_key, action),
            )
            token = sign_link(link, self.link_secret)
            links[action.value] = f"{self.public_url.rstrip('/')}/act/{token}"
        return links


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


# Line breaks and other control characters (C0, DEL, C1, and the Unicode line separators).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """Text fit for a header: control characters (a title's line break) become one space.

    A header value with a line break is refused by the email library (and would otherwise let a
    title add headers of its own), so whatever a stored title holds, the subject is one line.
    """
    return " ".join(_CONTROL.sub(" ", text).split())


def render_notice(
    notice: Notice,
    pm: Postmortem,
    item: ActionItem | None,
    earlier: list[OutboxMessage],
    links: Links,
) -> RenderedEmail:
    context = {
        "notice": notice,
        "pm": pm,
        "incident": pm.incident,
        "item": item,
        "spec": item.spec if item else None,
        "earlier": earlier,
        "links": links,
        "one_click": links.one_click(notice, item) if item and _to_owner(notice, item) else {},
        "subject": one_line(subject_of(notice, pm, item)),
        "a": next((a for a in pm.slo_review if a.slo.id == notice.slo_id), None),
        "page": links.where_to_act(notice),
        # an audience's summary links the published page, else the printable document
        "read_at": safe_url(notice.page_url) or links.postmortem(notice.postmortem_id, "/document"),
    }
    name = _TEMPLATE.get(notice.kind, "item_event")
    return RenderedEmail(
        subject=str(context["subject"]),
        text=_environment.get_template(f"{name}.txt.j2").render(context),
        html=_environment.get_template(f"{name}.html.j2").render(context),
    )


def outbox_message(notice: Notice, postmortem_id: str, email: RenderedEmail) -> OutboxMessage:
    """The rendered notice as the outbox records it before it is sent (pending)."""
    return OutboxMessage(
        dedupe_key=notice.dedupe_key,
        kind=notice.kind,
        postmortem_id=postmortem_id,
        action_item_id=notice.action_item_id,
        recipients=[r.email for r in notice.to],
        subject=email.subject,
        text=email.text,
        html=email.html,
        status=OutboxStatus.PENDING,
        created_at=notice.at,
        sent_at=None,
    )


def _to_owner(notice: Notice, item: ActionItem) -> bool:
    return [r.name for r in notice.to] == [item.owner]


# The postmortem's page where a notice's reader acts on it, when not the postmortem's own page.
_ACTED_ON = {
    NoticeKind.POSTMORTEM_OPENED: "/draft",
    NoticeKind.CHANGES_REQUESTED: "/draft",
    NoticeKind.DRAFT_SUBMITTED: "/review",
}

_TEMPLATE = {
    NoticeKind.ITEM_STEP: "item_step",
    NoticeKind.POSTMORTEM_OVERDUE: "postmortem_overdue",
    NoticeKind.BUDGET_EXHAUSTED: "budget_exhausted",
    NoticeKind.SEVERITY_UNMAPPED: "severity_unmapped",
    NoticeKind.AUDIENCE_SUMMARY: "audience_summary",
    **dict.fromkeys(HANDOFF_KINDS, "handoff"),
}


def subject_of(notice: Notice, pm: Postmortem, item: ActionItem | None) -> str:
    incident = pm.incident
    tag = f"[{incident.id} {pm.severity}]"
    if notice.kind is NoticeKind.ITEM_STEP and item is not None:
        title = item.spec.title
        due = item.due.strftime("%a %d %b")
        if notice.notify == "council":
            return (
                f"{tag} Council escalation: {item.spec.priority} '{title}' is "
                f"{_days(notice.days_overdue)} overdue"
            )
        if notice.notify == "manager":
            return (
                f"{tag} Overdue {_days(notice.days_overdue)}: {item.owner}'s action item "
                f"'{title}' ({item.team})"
            )
        if notice.days_overdue > 0:
            return f"{tag} Overdue {_days(notice.days_overdue)}: '{title}'"
        if notice.due is not None and notice.step != "reminder":
            return f"{tag} Due today: '{title}'"
        return f"{tag} Reminder: '{title}' is due {due}"
    subjects = {
        NoticeKind.EXTENSION_REQUESTED: f"{tag} Extension requested for '{_title(item)}'",
        NoticeKind.EXTENSION_DECIDED: f"{tag} Extension {notice.step or 'decided'}: "
        f"'{_title(item)}'",
        NoticeKind.REASSIGNED: f"{tag} You now own '{_title(item)}'",
        NoticeKind.WIP_QUEUED: f"{tag} Queued at the WIP cap: '{_title(item)}'",
        NoticeKind.RISK_ACCEPTED: f"{tag} Risk accepted: '{_title(item)}'",
        NoticeKind.CHECK_FAILED: f"{tag} Check failed, reopened: '{_title(item)}'",
        NoticeKind.REGRESSED: f"{tag} Regressed after verification: '{_title(item)}'",
        NoticeKind.POSTMORTEM_OVERDUE: f"{tag} Overdue {notice.step or 'postmortem'}: "
        f"'{incident.title}' ({_days(notice.days_overdue)} late)",
        NoticeKind.BUDGET_EXHAUSTED: f"{tag} Error budget exhausted: {notice.slo_id}; release "
        "freeze recommended",
        NoticeKind.SEVERITY_UNMAPPED: f"{tag} Policy gap: {_gap(notice)}",
        NoticeKind.POSTMORTEM_OPENED: f"{tag} Yours to write: the postmortem for "
        f"'{incident.title}'",
        NoticeKind.OPT_IN_OFFERED: f"{tag} Optional postmortem for '{incident.title}': opt in?",
        NoticeKind.DRAFT_SUBMITTED: f"{tag} Review the postmortem draft for '{incident.title}'",
        NoticeKind.CHANGES_REQUESTED: f"{tag} Changes requested on your draft for "
        f"'{incident.title}'",
        NoticeKind.POSTMORTEM_APPROVED: f"{tag} Approved: the postmortem for '{incident.title}'",
        NoticeKind.AUDIENCE_SUMMARY: f"{tag} Postmortem: {incident.title}",
        NoticeKind.ITEM_ASSIGNED: f"{tag} Yours to do: '{_title(item)}'",
        NoticeKind.REASSIGNED_AWAY: f"{tag} No longer yours: '{_title(item)}'",
        NoticeKind.DONE_CLAIMED: f"{tag} Claimed done, yours to verify: '{_title(item)}'",
        NoticeKind.ITEM_VERIFIED: f"{tag} Verified: '{_title(item)}'",
        NoticeKind.CLAIM_REJECTED: f"{tag} Done claim rejected, reopened: '{_title(item)}'",
    }
    return subjects.get(notice.kind, f"{tag} {incident.title}")


def _gap(notice: Notice) -> str:
    gap = notice.unmapped_severity
    return gap.note if gap is not None else "a severity the policy does not map"


def _title(item: ActionItem | None) -> str:
    return item.spec.title if item else "-"


def _days(n: int) -> str:
    return f"{n} business day" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class ThemeItem:
    """An action item of a theme's postmortem that is not yet verified."""

    id: str
    title: str
    owner: str
    team: str
    due: date
    state: str


@dataclass(frozen=True)
class ThemeIncident:
    pm: Postmortem
    open_items: list[ThemeItem]


def render_theme(
    notice: Notice,
    incidents: list[ThemeIncident],
    teams: list[str],
    links: Links,
    *,
    restricted: int = 0,
) -> RenderedEmail:
    """The council's email about a recurring contributing factor; `restricted` postmortems of
    it are counted, not listed."""
    theme = notice.theme
    assert theme is not None
    counted = len(incidents) + restricted
    subject = one_line(
        f"[theme {theme.tag}] Recurring contributing factor: '{theme.tag}' in "
        f"{counted} postmortems since {theme.window_start.date().isoformat()}"
    )
    context = {
        "counted": counted,
        "restricted": restricted,
        "notice": notice,
        "theme": theme,
        "incidents": incidents,
        "teams": teams,
        "links": links,
        "subject": subject,
    }
    return RenderedEmail(
        subject=subject,
        text=_environment.get_template("recurring_theme.txt.j2").render(context),
        html=_environment.get_template("recurring_theme.html.j2").render(context),
    )


def render_digest(digest: Digest) -> RenderedEmail:
    context = {"digest": digest, "subject": one_line(digest.subject)}
    return RenderedEmail(
        subject=one_line(digest.subject),
        text=_environment.get_template("council_digest.txt.j2").render(context),
        html=_environment.get_template("council_digest.html.j2").render(context),
    )


def render_monthly_digest(
    period: Period, metrics: ReliabilityMetrics, links: Links
) -> RenderedEmail:
    """The council's monthly numbers: the month's headline figures and its repeat factors."""
    follow = metrics.follow_up
    figures = [f"{metrics.incidents} incident{'' if metrics.incidents == 1 else 's'}"]
    if follow.completion_rate is not None:
        figures.append(f"{format_percent(follow.completion_rate)} of follow-ups completed")
    if follow.on_time_rate is not None:
        figures.append(f"{format_percent(follow.on_time_rate)} on time")
    subject = f"Reliability council monthly digest, {period.label}: {', '.join(figures)}"
    context = {
        "period": period,
        "metrics": metrics,
        "headline": headline(metrics),
        "coverage": response_coverage(metrics),
        "basis": figures_basis(metrics),
        # (label, 'median / p90 (n of m)') per duration, for one severity.
        "timings": lambda s: list(zip(DURATIONS.values(), timing_cells(s), strict=True)),
        "as_of": metrics.as_of.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "link": links.reliability(period.label),
        "subject": subject,
    }
    return RenderedEmail(
        subject=subject,
        text=_environment.get_template("monthly_digest.txt.j2").render(context),
        html=_environment.get_template("monthly_digest.html.j2").render(context),
    )


def render_stuck_work(stuck: StuckWork, links: Links) -> RenderedEmail:
    """The operators' email about one workflow that stopped moving."""
    subject = one_line(f"[stuck] {stuck.workflow_id}: {stuck.problem} keeps failing")
    context = {
        "stuck": stuck,
        "workflow_link": links.workflow(stuck.workflow_id),
        "operations_link": links.page("/operations"),
        "subject": subject,
    }
    return RenderedEmail(
        subject=subject,
        text=_environment.get_template("stuck_work.txt.j2").render(context),
        html=_environment.get_template("stuck_work.html.j2").render(context),
    )


def render_handoff_digest(person: str, day: date, held: list[OutboxMessage]) -> RenderedEmail:
    """A person's held hand-offs of the day, each as it would have been sent on its own."""
    subject = one_line(
        f"Your Followthrough digest for {day.isoformat()}: {len(held)} "
        f"notice{'' if len(held) == 1 else 's'}"
    )
    context = {"person": person, "messages": held, "subject": subject}
    return RenderedEmail(
        subject=subject,
        text=_environment.get_template("handoff_digest.txt.j2").render(context),
        html=_environment.get_template("handoff_digest.html.j2").render(context),
    )


_DECISION_SUBJECTS = {
    "opened": "Council decision needed: {subject}",
    "decided": "Council decided: {choice} ({subject})",
    "lifted": "Lifted: {choice} of {services} ({subject})",
}


def render_decision(notice: Notice, links: Links) -> RenderedEmail:
    """The council's email of a decision opened, decided or lifted (`notice.step`)."""
    decision = notice.decision
    assert decision is not None and notice.step in _DECISION_SUBJECTS
    request = decision.decided
    subject = one_line(
        "[council] "
        + _DECISION_SUBJECTS[notice.step].format(
            subject=decision.opening.subject,
            choice=request.choice.value.replace("_", " ") if request else "",
            services=", ".join(request.services) if request else "",
        )
    )
    context = {
        "notice": notice,
        "decision": decision,
        "opening": decision.opening,
        "request": request,
        "page": links.page(f"/council/decisions/{quote(decision.id, safe='')}"),
        "subject": subject,
    }
    return RenderedEmail(
        subject=subject,
        text=_environment.get_template("council_decision.txt.j2").render(context),
        html=_environment.get_template("council_decision.html.j2").render(context),
    )
