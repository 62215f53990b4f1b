"""The metrics as people see them: the charts the Metrics page, the quarterly report and the
monthly digest share, drawn from one ReliabilityMetrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup

from followthrough.domain.changes import ChangeMetrics, change_metrics
from followthrough.domain.metrics import (
    DURATIONS,
    Period,
    ReliabilityMetrics,
    format_duration,
    format_percent,
    reliability_metrics_of,
    trend_series,
)
from followthrough.domain.policy import Policy
from followthrough.progress import ProgressReport, no_progress
from followthrough.reporting import charts
from followthrough.storage import Store


def _hours(value: float) -> str:
    return format_duration(timedelta(hours=value))


def metric_charts(metrics: ReliabilityMetrics) -> dict[str, Markup]:
    """Every chart, by name; each is inline SVG (no scripts, nothing fetched)."""
    follow = metrics.follow_up
    drawn = {
        f"trend_{duration}": charts.line_chart(
            f"{label}, median by month", *trend_series(metrics, duration), format_value=_hours
        )
        for duration, label in DURATIONS.items()
    }
    drawn.update(
        incidents_by_month=charts.bar_chart(
            "Incidents by month", [(m.month, float(m.incidents)) for m in metrics.trend]
        ),
        completed=charts.percent_ring("Follow-ups completed", follow.completion_rate),
        on_time=charts.percent_ring("Verified on time", follow.on_time_rate),
        within_four_weeks=charts.percent_ring(
            "All verified within 4 weeks", metrics.within_four_weeks.share
        ),
        slo_breaches=charts.percent_ring("Breached a customer SLO", metrics.slo_breaches.share),
        # Per SLO: budgets of different SLOs are different units, so a service gets no total.
        budget_by_slo=charts.bar_chart(
            "Error budget consumed by incidents, per SLO (100% = that SLO's whole budget)",
            [(f"{b.service}: {b.slo}", b.consumed) for b in metrics.budget_by_slo],
            format_value=format_percent,
        ),
        repeat_factors=charts.bar_chart(
            "Repeat incidents by contributing factor",
            [(f.tag, float(f.incidents)) for f in metrics.repeat_factors],
        ),
    )
    return drawn


def measure(
    store: Store,
    policy: Policy,
    period: Period,
    as_of: datetime,
    *,
    progress: ProgressReport = no_progress,
    reading: str = "reading incidents and action items",
) -> ReliabilityMetrics:
    """Every figure for a period, added up in the database from the record's lean columns
    (storage/figures.py): a year of 10,000 postmortems read one by one took seconds."""
    progress(reading, 0, 1)
    sums = store.facts.period_sums(period.start, period.end, as_of=as_of, calendar=policy.calendar)
    progress(reading, 1, 1)
    progress("measuring")
    measured = reliability_metrics_of(
        sums,
        period_start=period.start,
        period_end=period.end,
        as_of=as_of,
        calendar=policy.calendar,
        severities=list(policy.severities),
    )
    return measured.model_copy(update={"changes": _changes(store, policy, period)})


# An incident that a deploy late in the period led to may resolve after the period: those
# resolved this long after it are read too, so the period's last deploys are judged as the rest.
RESOLVED_AFTER = timedelta(days=7)


def _changes(store: Store, policy: Policy, period: Period) -> ChangeMetrics:
    deploys = store.deploys.between(period.start, period.end)
    # Without deploys there are no change figures, whatever the incidents: they are not read.
    seen = (
        store.facts.incident_changes(
            period.start, period.end + policy.changes.window + RESOLVED_AFTER
        )
        if deploys
        else []
    )
    return change_metrics(
        deploys, seen, policy.services, policy.changes, zone=policy.calendar.timezone
    )


@dataclass
class _Measured:
    version: tuple[int, tuple[int, datetime | None]]
    at: datetime
    metrics: ReliabilityMetrics


class MetricsCache:
    """A period's figures, kept until the record changes, for the pages.

    A year of 10,000 postmortems takes seconds to read and measure (bench/README.md,
    "Dashboard"), while the record changes only when some workflow records an audit event. So
    the figures are kept per period and local day, and measured again when the number of audit
    events has changed (they are only ever appended, and every change of a postmortem or an
    action item comes with one), when a deploy was stored, or after `ttl` (the four-week
    eligibility moves with the clock).
    """

    def __init__(self, ttl: timedelta = timedelta(minutes=10), size: int = 32) -> None:
        self.ttl, self.size = ttl, size
        self._kept: dict[tuple[Period, str], _Measured] = {}

    def measure(
        self, store: Store, policy: Policy, period: Period, as_of: datetime
    ) -> ReliabilityMetrics:
        key = (period, policy.calendar.local_date(as_of).isoformat())
        # A deploy changes the change metrics without any audit event.
        version = (store.records.version(), store.deploys.version())
        kept = self._kept.get(key)
        if kept and kept.version == version and timedelta(0) <= as_of - kept.at < self.ttl:
            return kept.metrics
        metrics = measure(store, policy, period, as_of)
        if len(self._kept) >= self.size:
            self._kept.pop(next(iter(self._kept)))  # the oldest entry
        self._kept[key] = _Measured(version=version, at=as_of, metrics=metrics)
        return metrics

    def clear(self) -> None:
        self._kept.clear()
