"""The reliability council's quarterly report: one self-contained HTML file and its Markdown twin.

Both carry the same numbers: the quarter's headline figures and a few sentences read from them
(compared with the quarter before), incident response per severity, the charts of the Metrics
page, the recurring themes that reached the council in the quarter, the worst overdue action
items as of the report's moment and the risks the council accepted in the quarter.

Self-contained means it opens offline and can be mailed: inline CSS and inline SVG in the HTML,
no scripts, nothing fetched; the Markdown embeds its charts as data: URIs. The only links are
those in the data (an incident's own web page) and, when given a public URL, the dashboard's.
Everything people typed is escaped: by Jinja in the HTML, by markdown_escape in the Markdown.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pydantic import AwareDatetime, BaseModel, ConfigDict

from followthrough.domain.escalation import days_overdue
from followthrough.domain.metrics import (
    DURATIONS,
    ItemFacts,
    Period,
    ReliabilityMetrics,
    figures_basis,
    format_duration,
    format_percent,
    headline,
    period_of,
    recent_quarters,
    response_coverage,
    timing_cells,
)
from followthrough.domain.narrative import CouncilNarrative
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItemState
from followthrough.domain.restricted import RESTRICTED_ITEM_TITLE, RESTRICTED_TITLE
from followthrough.hrefs import markdown_escape, safe_url
from followthrough.progress import ProgressReport, no_progress
from followthrough.reporting.metrics_view import measure, metric_charts
from followthrough.storage import Store
from followthrough.storage.restricted import stand_in_id

TEMPLATES = Path(__file__).resolve().parent / "report_templates"
WORST_OVERDUE = 10  # how many overdue action items the report lists

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


# --- The report's data -------------------------------------------------------------------------


class ReportPostmortem(BaseModel):
    """A postmortem as the report names it: its incident, severity and title, and links."""

    model_config = ConfigDict(frozen=True)

    id: str
    incident_id: str
    severity: str
    title: str
    incident_url: str | None = None  # the incident's own page, when it is a plain web address
    dashboard_url: str | None = None  # its dashboard page, when the report has a public URL


class ThemeReached(BaseModel):
    """A recurring theme that reached the council in the quarter."""

    model_config = ConfigDict(frozen=True)

    tag: str
    reached_at: AwareDatetime
    reached_by: str
    window_start: AwareDatetime
    window_end: AwareDatetime
    postmortems: list[ReportPostmortem]


class OverdueItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    item: ItemFacts
    days_overdue: int  # business days
    postmortem: ReportPostmortem


class RiskAcceptanceMade(BaseModel):
    model_config = ConfigDict(frozen=True)

    item_id: str
    title: str
    priority: str
    owner: str
    team: str
    by: str
    reason: str
    at: AwareDatetime
    postmortem: ReportPostmortem


class Comparison(BaseModel):
    """The quarter before, for "up from 58%"."""

    model_config = ConfigDict(frozen=True)

    label: str
    metrics: ReliabilityMetrics


class QuarterlyReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    quarter: str  # e.g. 2026Q4
    period: Period
    as_of: AwareDatetime
    metrics: ReliabilityMetrics
    previous: Comparison | None
    headline: list[tuple[str, str]]
    narrative: list[str]  # sentences read from the numbers
    council: CouncilNarrative  # the council's own words on the quarter (version 0: none yet)
    themes: list[ThemeReached]
    overdue: list[OverdueItem]  # worst first
    risk_acceptances: list[RiskAcceptanceMade]  # oldest first
    html: str
    markdown: str

    def file_name(self, extension: str) -> str:
        return f"followthrough-{self.quarter}.{extension}"


# --- Building it -------------------------------------------------------------------------------


def quarterly_report(
    store: Store,
    policy: Policy,
    quarter: str,
    as_of: datetime,
    progress: ProgressReport = no_progress,
    *,
    public_url: str | None = None,
) -> QuarterlyReport:
    """The report for a quarter ('2026Q4') as of a moment; ValueError names a bad quarter.

    Incidents resolved in the quarter are measured; overdue items are those open as of `as_of`
    (whatever their quarter); risk acceptances and themes are those made in the quarter.
    """
    period = quarter_period(quarter, policy, as_of)
    metrics = measure(
        store,
        policy,
        period,
        as_of,
        progress=progress,
        reading="reading the quarter's incidents and action items",
    )
    previous = _previous_quarter(store, policy, period, as_of, progress)

    steps = "reading themes, overdue items and risk acceptances"
    progress(steps, 0, 3)
    postmortems = _PostmortemNames(store, public_url)
    themes = _themes_reached(store, period, postmortems)
    progress(steps, 1, 3)
    overdue = _worst_overdue(store, policy, as_of, postmortems)
    progress(steps, 2, 3)
    accepted = _risk_acceptances(store, period, postmortems)
    progress(steps, 3, 3)
    council = store.narratives.read(period.label)

    progress("drawing charts")
    charts = metric_charts(metrics)

    progress("writing the report", 0, 2)
    report = QuarterlyReport(
        quarter=period.label,
        period=period,
        as_of=as_of,
        metrics=metrics,
        previous=previous,
        headline=headline(metrics),
        narrative=narrative(metrics, period.label, previous),
        council=council,
        themes=themes,
        overdue=overdue,
        risk_acceptances=accepted,
        html="",
        markdown="",
    )
    context = {**dict(report), **_template_helpers(policy, period, previous)}
    page = _environment.get_template("quarterly.html.j2").render(context, charts=charts)
    progress("writing the report", 1, 2)
    images = {name: markdown_image(svg) for name, svg in charts.items()}
    text = _environment.get_template("quarterly.md.j2").render(context, charts=images)
    progress("writing the report", 2, 2)
    return report.model_copy(update={"html": page, "markdown": text})


def quarter_period(quarter: str, policy: Policy, as_of: datetime) -> Period:
    """The quarter's Period; ValueError names what is wrong with `quarter` or `as_of`."""
    if not quarter.strip():
        raise ValueError("no quarter given; write the year and 1-4, e.g. '2026Q4'")
    calendar = policy.calendar
    return period_of(calendar.local_date(as_of), calendar, quarter=quarter)


def _previous_quarter(
    store: Store, policy: Policy, period: Period, as_of: datetime, progress: ProgressReport
) -> Comparison | None:
    calendar = policy.calendar
    label = recent_quarters(calendar.local_date(period.start), 2)[1]
    try:
        before = period_of(calendar.local_date(as_of), calendar, quarter=label)
    except ValueError:  # before the year 1: nothing to compare with
        return None
    progress(f"measuring {label} to compare")
    return Comparison(label=label, metrics=measure(store, policy, before, as_of))


class _PostmortemNames:
    """Postmortems as the report names them, each read once."""

    def __init__(self, store: Store, public_url: str | None) -> None:
        self.store = store
        self.public_url = public_url.rstrip("/") if public_url else None
        self.known: dict[str, ReportPostmortem] = {}

    def __call__(self, postmortem_id: str) -> ReportPostmortem:
        if postmortem_id not in self.known:
            self.known[postmortem_id] = self._read(postmortem_id)
        return self.known[postmortem_id]

    def _read(self, postmortem_id: str) -> ReportPostmortem:
        dashboard = (
            f"{self.public_url}/postmortems/{quote(postmortem_id, safe='')}"
            if self.public_url
            else None
        )
        pm = self.store.records.postmortem(postmortem_id)
        if postmortem_id.startswith("restricted-") or (pm is not None and pm.restricted_to):
            # counted, not shown: no title, id or link (facts.items(counted=True) gives stand-ins)
            stand_in = stand_in_id(postmortem_id) if pm is not None else postmortem_id
            severity = pm.severity if pm is not None else ""
            return ReportPostmortem(
                id=stand_in, incident_id=stand_in, severity=severity, title=RESTRICTED_TITLE
            )
        if pm is None:  # a theme can count a postmortem the record does not hold (yet)
            return ReportPostmortem(
                id=postmortem_id, incident_id=postmortem_id, severity="", title=""
            )
        return ReportPostmortem(
            id=pm.id,
            incident_id=pm.incident.id,
            severity=pm.severity,
            title=pm.incident.title,
            incident_url=safe_url(pm.incident.url),
            dashboard_url=safe_url(dashboard),
        )


def _themes_reached(
    store: Store, period: Period, postmortems: _PostmortemNames
) -> list[ThemeReached]:
    return [
        ThemeReached(
            tag=theme.tag,
            reached_at=theme.reached_at,
            reached_by=postmortems(theme.reached_by).id,  # a stand-in when restricted
            window_start=theme.window_start,
            window_end=theme.window_end,
            postmortems=[postmortems(pm_id) for pm_id in theme.postmortem_ids],
        )
        for theme in store.themes.all()
        if period.start <= theme.reached_at < period.end
    ]


def _worst_overdue(
    store: Store, policy: Policy, as_of: datetime, postmortems: _PostmortemNames
) -> list[OverdueItem]:
    """The open items most business days past due as of `as_of`, in the states recorded now.

    Business days overdue only grow as the due date gets earlier, so the earliest-due items the
    store returns first are the worst; those not yet a business day late (due on a weekend just
    past) are not overdue in the ladder's sense and are left out.
    """
    calendar = policy.calendar
    today = calendar.local_date(as_of)
    found = store.facts.items(overdue_on=today, limit=WORST_OVERDUE, counted=True)
    overdue = [
        OverdueItem(
            item=item,
            days_overdue=days_overdue(item.due, today, calendar),
            postmortem=postmortems(item.postmortem_id),
        )
        for item in found
    ]
    worst_first = sorted(overdue, key=lambda o: (-o.days_overdue, o.item.due, o.item.id))
    return [o for o in worst_first if o.days_overdue > 0]


def _risk_acceptances(
    store: Store, period: Period, postmortems: _PostmortemNames
) -> list[RiskAcceptanceMade]:
    made = []
    for item in store.records.action_items(state=ActionItemState.RISK_ACCEPTED.value):
        acceptance = item.risk_acceptance
        if acceptance is None or not period.start <= acceptance.at < period.end:
            continue
        named = postmortems(item.postmortem_id)
        hidden = named.title == RESTRICTED_TITLE  # counted, not shown
        number = item.id.rpartition("-item-")[2]
        made.append(
            RiskAcceptanceMade(
                item_id=f"{named.id}-item-{number}" if hidden else item.id,
                title=RESTRICTED_ITEM_TITLE if hidden else item.spec.title,
                priority=item.spec.priority.value,
                owner=item.owner,
                team=item.team,
                by=acceptance.by,
                reason="(not shown: a restricted postmortem)" if hidden else acceptance.reason,
                at=acceptance.at,
                postmortem=named,
            )
        )
    return sorted(made, key=lambda r: (r.at, r.item_id))


# --- The sentences -----------------------------------------------------------------------------


def _plural(count: int, word: str, plural: str = "") -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _versus(
    now: float | None,
    previous: Comparison | None,
    rate: Callable[[ReliabilityMetrics], float | None],
) -> str:
    """', up from 58% in 2026Q3' (or down, or the same); '' with nothing to compare."""
    before = rate(previous.metrics) if previous else None
    if now is None or before is None or previous is None:
        return ""
    if format_percent(now) == format_percent(before):
        return f", the same as in {previous.label}"
    direction = "up" if now > before else "down"
    return f", {direction} from {format_percent(before)} in {previous.label}"


def narrative(metrics: ReliabilityMetrics, label: str, previous: Comparison | None) -> list[str]:
    """A few sentences read from the numbers, compared with the quarter before where it has them."""
    sentences = [_incidents_sentence(metrics, label, previous)]
    follow = metrics.follow_up
    if follow.total:
        done = [f"{follow.verified} verified"]
        if follow.risk_accepted:
            done.append(f"{follow.risk_accepted} risk accepted")
        if follow.open:
            done.append(f"{follow.open} still open")
        versus = _versus(follow.completion_rate, previous, lambda m: m.follow_up.completion_rate)
        sentences.append(
            f"Of their {_plural(follow.total, 'action item')}, "
            f"{format_percent(follow.completion_rate)} were completed ({', '.join(done)}){versus}."
        )
    elif metrics.incidents:
        sentences.append("Their postmortems opened no action items.")
    if follow.decided:
        versus = _versus(follow.on_time_rate, previous, lambda m: m.follow_up.on_time_rate)
        sentences.append(
            f"{format_percent(follow.on_time_rate)} were verified by their due date "
            f"({follow.on_time} of the {follow.decided} verified or already past due){versus}."
        )
    if follow.median_time_to_verify is not None:
        sentences.append(
            "The median time from opening an action item to its verification was "
            f"{format_duration(follow.median_time_to_verify)}."
        )
    four = metrics.within_four_weeks
    if four.eligible:
        versus = _versus(four.share, previous, lambda m: m.within_four_weeks.share)
        sentences.append(
            f"{four.qualified} of {_plural(four.eligible, 'postmortem')} "
            f"({format_percent(four.share)}) had every follow-up verified within four weeks of "
            f"the incident{versus}."
        )
    breaches = metrics.slo_breaches
    if breaches.breached:
        sentences.append(
            f"{breaches.breached} of {_plural(breaches.incidents, 'incident')} "
            f"({format_percent(breaches.share)}) breached a customer SLO."
        )
    elif metrics.budget_by_slo:
        sentences.append("No incident breached a customer SLO.")
    if metrics.repeat_factors:
        factors = ", ".join(f"{r.tag} ({r.incidents})" for r in metrics.repeat_factors)
        sentences.append(
            f"{_plural(len(metrics.repeat_factors), 'contributing factor')} came back in more "
            f"than one incident: {factors}."
        )
    return sentences


def _incidents_sentence(
    metrics: ReliabilityMetrics, label: str, previous: Comparison | None
) -> str:
    before = previous.metrics.incidents if previous else None
    since = previous.label if previous else ""
    if not metrics.incidents:
        earlier = f" There were {before} in {since}." if before else ""
        return f"No incidents were resolved in {label}.{earlier}"
    kinds = ", ".join(f"{s.incidents} {s.severity}" for s in metrics.severities if s.incidents)
    versus = ""
    if before is not None:
        if metrics.incidents == before:
            versus = f", as many as in {since}"
        else:
            direction = "up" if metrics.incidents > before else "down"
            versus = f", {direction} from {before} in {since}"
    return f"{_plural(metrics.incidents, 'incident')} resolved in {label} ({kinds}){versus}."


# --- Rendering ---------------------------------------------------------------------------------


def markdown_image(svg: Markup) -> str:
    """An inline SVG chart as a Markdown image with a data: URI, titled like the chart."""
    found = re.search(r"<title>(.*?)</title>", svg, re.DOTALL)
    title = html.unescape(found[1]) if found else "Chart"
    encoded = base64.b64encode(str(svg).encode()).decode("ascii")
    return f"![{markdown_escape(title)}](data:image/svg+xml;base64,{encoded})"


def _markdown_postmortem(pm: ReportPostmortem) -> str:
    incident = markdown_escape(pm.incident_id)
    named = f"[{incident}]({pm.incident_url})" if pm.incident_url else incident
    if pm.severity:
        named += f" {markdown_escape(pm.severity)}"
    if pm.title:
        named += f": {markdown_escape(pm.title)}"
    if pm.dashboard_url:
        named += f" ([postmortem]({pm.dashboard_url}))"
    return named


def _markdown_row(*cells: object) -> str:
    """A table row of cells the template has already escaped (numbers are safe as they are)."""
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


_environment.filters["md"] = markdown_escape
_environment.filters["md_postmortem"] = _markdown_postmortem


def _template_helpers(
    policy: Policy, period: Period, previous: Comparison | None
) -> dict[str, Any]:
    calendar = policy.calendar

    def day(moment: datetime | date) -> str:
        return (calendar.local_date(moment) if isinstance(moment, datetime) else moment).isoformat()

    def local(moment: datetime) -> str:
        return calendar.local_time(moment).strftime("%Y-%m-%d %H:%M")

    before = headline(previous.metrics) if previous else None
    return {
        "first_day": day(period.start),
        "last_day": day(period.end - timedelta(microseconds=1)),  # the end is exclusive
        "previous_headline": dict(before) if before else {},
        "durations": DURATIONS,
        "duration": format_duration,
        "percent": format_percent,
        "timings": timing_cells,
        "coverage": response_coverage,
        "basis": figures_basis,
        "day": day,
        "local": local,
        "row": _markdown_row,
    }
