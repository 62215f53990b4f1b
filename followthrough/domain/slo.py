"""SLOs and error budgets: what an incident cost, and when the SLO alerts should have fired.

Pure arithmetic over pydantic models, no I/O. The model and formulas follow the SRE Workbook,
ch. 5 "Alerting on SLOs" (multiwindow, multi-burn-rate alerts, Table 5-8) and App. B (error
budget policy). With b = 1 - objective and P the SLO period:

    burn rate          = error_ratio / b
    budget consumed    = burn * duration / P                 (time-based: traffic assumed flat)
                       = bad / (b * total_in_period)         (event-based, preferred)
                       = f * duration * w / (b * P)          (estimated; w = incident / avg traffic)
    alert fires after  max(k*b*L, k*b*S) / error_ratio + for   (never when error_ratio < k*b)
    budget at fire     = k * L / P
    time to exhaustion = P * remaining / burn

Budget amounts are fractions of the period's whole budget (0.375 is 37.5 %).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Severity = Literal["page", "ticket"]
BudgetingMethod = Literal["Occurrences", "Timeslices", "RatioTimeslices"]
SloSource = Literal["sloth", "openslo", "pyrra", "manual"]

WINDOW_PLACEHOLDER = "{{window}}"

# Budget consumed at or above which an incident's cost matters on its own (rule 3 of the model:
# the fastest page window is designed to fire after 2 % of the budget).
SIGNIFICANT_BUDGET = 0.02
# Budget consumed by one incident that calls for a postmortem with a P0 item (Workbook App. B).
POSTMORTEM_BUDGET = 0.20


class AlertWindow(BaseModel):
    """One multiwindow burn-rate alert: fires when both windows burn faster than burn_rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity
    long: timedelta
    short: timedelta
    burn_rate: float = Field(gt=0)
    for_: timedelta = timedelta(0)

    @model_validator(mode="after")
    def _windows_make_sense(self) -> AlertWindow:
        if self.short <= timedelta(0) or self.long <= timedelta(0):
            raise ValueError("alert windows must be longer than zero")
        if self.short > self.long:
            raise ValueError("the short window must not be longer than the long window")
        if self.for_ < timedelta(0):
            raise ValueError("for_ must not be negative")
        return self

    @property
    def label(self) -> str:
        return f"{self.severity} {_short(self.long)}/{_short(self.short)} at {self.burn_rate:g}x"


def _short(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


DEFAULT_WINDOWS: tuple[AlertWindow, ...] = (
    AlertWindow(
        severity="page", long=timedelta(hours=1), short=timedelta(minutes=5), burn_rate=14.4
    ),
    AlertWindow(severity="page", long=timedelta(hours=6), short=timedelta(minutes=30), burn_rate=6),
    AlertWindow(severity="ticket", long=timedelta(days=1), short=timedelta(hours=2), burn_rate=3),
    AlertWindow(severity="ticket", long=timedelta(days=3), short=timedelta(hours=6), burn_rate=1),
)


class Slo(BaseModel):
    """A service level objective over a period, with the burn-rate alerts that guard it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    service: str = Field(min_length=1)
    objective: float = Field(gt=0, lt=1, description="e.g. 0.999")
    period: timedelta = Field(description="e.g. 28 or 30 days")
    rolling: bool = True
    budgeting_method: BudgetingMethod = "Occurrences"
    error_query: str = Field(default="", description=f"PromQL; may contain {WINDOW_PLACEHOLDER}")
    total_query: str = Field(default="", description=f"PromQL; may contain {WINDOW_PLACEHOLDER}")
    windows: tuple[AlertWindow, ...] = DEFAULT_WINDOWS
    source: SloSource = "manual"

    @model_validator(mode="after")
    def _positive_period(self) -> Slo:
        if self.period <= timedelta(0):
            raise ValueError("period must be longer than zero")
        return self

    @property
    def error_budget(self) -> float:
        """The fraction of events (or time) allowed to be bad: 1 - objective."""
        return 1 - self.objective


def _ratio(span: timedelta, of: timedelta) -> float:
    return span.total_seconds() / of.total_seconds()


def burn_rate(error_ratio: float, slo: Slo) -> float:
    """How many times faster than sustainable the budget burns (1 = exactly used up by P)."""
    return error_ratio / slo.error_budget


def budget_consumed_time_based(error_ratio: float, duration: timedelta, slo: Slo) -> float:
    """Budget consumed by error_ratio sustained for duration, traffic assumed flat."""
    return burn_rate(error_ratio, slo) * _ratio(duration, slo.period)


def budget_consumed_events(bad: float, total_in_period: float, slo: Slo) -> float:
    """Budget consumed by bad events, against all events expected in the period."""
    if total_in_period <= 0:
        raise ValueError("total_in_period must be more than zero")
    return bad / (slo.error_budget * total_in_period)


def budget_consumed_estimated(
    fraction_affected: float, duration: timedelta, traffic_weight: float, slo: Slo
) -> float:
    """Budget consumed, estimated: traffic_weight = incident traffic / average traffic."""
    return fraction_affected * traffic_weight * _ratio(duration, slo.period) / slo.error_budget


def alert_fires_after(error_ratio: float, window: AlertWindow, slo: Slo) -> timedelta | None:
    """Time from impact start until window fires at a steady error_ratio; None if it never can."""
    threshold = window.burn_rate * slo.error_budget
    if error_ratio <= 0 or error_ratio < threshold:
        return None
    longest = max(window.long, window.short)
    return longest * (threshold / error_ratio) + window.for_


def budget_at_fire(window: AlertWindow, slo: Slo) -> float:
    """Budget the window lets burn before it fires (k * L / P; 2 % for 14.4x over 1h of 30d)."""
    return window.burn_rate * _ratio(window.long, slo.period)


def time_to_exhaustion(remaining_fraction: float, burn: float, slo: Slo) -> timedelta | None:
    """How long the remaining budget lasts at this burn rate; None when it is not burning."""
    if remaining_fraction <= 0:
        return timedelta(0)
    if burn <= 0:
        return None
    return slo.period * (remaining_fraction / burn)


def max_burn_rate(slo: Slo) -> float:
    """The burn rate when every event fails: 1 / b."""
    return 1 / slo.error_budget


def page_threshold_reachable(window: AlertWindow, slo: Slo) -> bool:
    """Can the window fire at all? Only if a total outage (burn 1/b) reaches its burn rate."""
    return alert_fires_after(1.0, window, slo) is not None


class BudgetMeasurement(BaseModel):
    """What Prometheus says an incident's impact window cost one SLO.

    Events are in the SLI queries' own units (a rate times seconds is a count); only ratios of
    them matter. total_events_in_period is the average traffic over the SLO period ending at
    `end`, where Prometheus has data, times the period: the denominator of event-based budget.
    """

    model_config = ConfigDict(frozen=True)

    slo_id: str
    start: AwareDatetime
    end: AwareDatetime
    bad_events: float = Field(ge=0)
    total_events: float = Field(ge=0)
    total_events_in_period: float = Field(ge=0)
    error_ratio_before: float | None = Field(
        default=None, description="bad / total over the period before `start`; None: no traffic"
    )
    queries: tuple[str, ...] = Field(default=(), description="the PromQL asked, for the evidence")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def error_ratio(self) -> float:
        return self.bad_events / self.total_events if self.total_events > 0 else 0.0


class ExpectedDetection(BaseModel):
    """When one alert window would fire for this incident, and whether within the impact."""

    model_config = ConfigDict(frozen=True)

    window: AlertWindow
    fires_after: timedelta | None
    during_impact: bool


class IncidentImpact(BaseModel):
    """What an incident cost one SLO, and when its alerts should have fired."""

    model_config = ConfigDict(frozen=True)

    slo_id: str
    basis: Literal["events", "time", "estimated"]
    duration: timedelta
    error_ratio: float
    burn_rate: float
    budget_consumed: float
    budget_remaining_before: float
    budget_remaining_after: float
    expected_detection: tuple[ExpectedDetection, ...]
    actual_detection: timedelta | None
    burned_before_detection: float | None

    @property
    def expected_page_detection(self) -> timedelta | None:
        """The earliest a page window fires during the impact, if any does."""
        times = [
            e.fires_after
            for e in self.expected_detection
            if e.window.severity == "page" and e.during_impact and e.fires_after is not None
        ]
        return min(times, default=None)

    @property
    def any_alert_expected(self) -> bool:
        return any(e.during_impact for e in self.expected_detection)


def expected_detection(
    error_ratio: float, duration: timedelta, slo: Slo
) -> tuple[ExpectedDetection, ...]:
    found = []
    for window in slo.windows:
        after = alert_fires_after(error_ratio, window, slo)
        during = after is not None and after <= duration
        found.append(ExpectedDetection(window=window, fires_after=after, during_impact=during))
    return tuple(found)


def incident_impact(
    slo: Slo,
    *,
    duration: timedelta,
    error_ratio: float,
    budget_remaining_before: float = 1.0,
    bad_events: float | None = None,
    total_events_in_period: float | None = None,
    traffic_weight: float | None = None,
    actual_detection: timedelta | None = None,
) -> IncidentImpact:
    """The impact of error_ratio sustained for duration.

    Budget consumed is event-based when bad_events and total_events_in_period are given,
    estimated when traffic_weight is given, time-based otherwise. Detection timings are
    measured from impact start.
    """
    if not 0 <= error_ratio <= 1:
        raise ValueError("error_ratio must be between 0 and 1")
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    basis: Literal["events", "time", "estimated"]
    if bad_events is not None and total_events_in_period is not None:
        basis, consumed = "events", budget_consumed_events(bad_events, total_events_in_period, slo)
    elif traffic_weight is not None:
        basis = "estimated"
        consumed = budget_consumed_estimated(error_ratio, duration, traffic_weight, slo)
    else:
        basis, consumed = "time", budget_consumed_time_based(error_ratio, duration, slo)
    burned_before = None
    if actual_detection is not None:
        burned_before = budget_consumed_time_based(
            error_ratio, min(actual_detection, duration), slo
        )
    return IncidentImpact(
        slo_id=slo.id,
        basis=basis,
        duration=duration,
        error_ratio=error_ratio,
        burn_rate=burn_rate(error_ratio, slo),
        budget_consumed=consumed,
        budget_remaining_before=budget_remaining_before,
        budget_remaining_after=budget_remaining_before - consumed,
        expected_detection=expected_detection(error_ratio, duration, slo),
        actual_detection=actual_detection,
        burned_before_detection=burned_before,
    )


FindingKind = Literal[
    "late_detection",
    "missed_detection",
    "no_slo_alert",
    "page_unreachable",
    "postmortem_required",
    "budget_exhausted",
    "sli_misses_user_pain",
    "paged_too_early",
]
# Findings that ask for the SLO's alerting to change (an action item with change: alerting).
ALERTING_FINDINGS = frozenset({"late_detection", "missed_detection", "no_slo_alert"})


class SloFinding(BaseModel):
    """Something an incident showed about an SLO; becomes a postmortem action item."""

    model_config = ConfigDict(frozen=True)

    slo_id: str
    kind: FindingKind
    evidence: str
    recommended_action: str


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:.1f} min"


def detection_findings(
    impact: IncidentImpact, slo: Slo, slack: timedelta = timedelta(minutes=5)
) -> list[SloFinding]:
    """Alert-recall findings: detected later than the SLO pages promise, or not at all."""
    findings: list[SloFinding] = []
    expected = impact.expected_page_detection
    consumed = f"{impact.budget_consumed:.1%} of the budget"
    if expected is not None and impact.actual_detection is not None:
        if impact.actual_detection > expected + slack:
            findings.append(
                SloFinding(
                    slo_id=slo.id,
                    kind="late_detection",
                    evidence=(
                        f"detected after {_minutes(impact.actual_detection)}; the SLO page "
                        f"would have fired after {_minutes(expected)} (slack {_minutes(slack)})"
                    ),
                    recommended_action="page on the SLO burn-rate alert, or find why it did not",
                )
            )
    elif expected is not None:
        findings.append(
            SloFinding(
                slo_id=slo.id,
                kind="missed_detection",
                evidence=f"no detection recorded; the SLO page would have fired after "
                f"{_minutes(expected)}",
                recommended_action="deploy the SLO burn-rate alerts and route them to a pager",
            )
        )
    if not impact.any_alert_expected and impact.budget_consumed >= SIGNIFICANT_BUDGET:
        findings.append(
            SloFinding(
                slo_id=slo.id,
                kind="no_slo_alert",
                evidence=f"no SLO alert would have fired during the impact, which cost {consumed}",
                recommended_action="add a faster or more sensitive burn-rate window",
            )
        )
    for window in slo.windows:
        if window.severity == "page" and not page_threshold_reachable(window, slo):
            findings.append(
                SloFinding(
                    slo_id=slo.id,
                    kind="page_unreachable",
                    evidence=(
                        f"{window.label} can never fire: a total outage burns at most "
                        f"{max_burn_rate(slo):g}x"
                    ),
                    recommended_action="retune the page windows for this objective",
                )
            )
    return findings


def budget_findings(
    impact: IncidentImpact, slo: Slo, postmortem_budget: float = POSTMORTEM_BUDGET
) -> list[SloFinding]:
    """Error budget policy findings: a costly incident, an exhausted budget."""
    findings: list[SloFinding] = []
    if impact.budget_consumed >= postmortem_budget:
        findings.append(
            SloFinding(
                slo_id=slo.id,
                kind="postmortem_required",
                evidence=(
                    f"the incident consumed {impact.budget_consumed:.1%} of the budget "
                    f"(policy: {postmortem_budget:.0%} or more needs a P0 action item)"
                ),
                recommended_action="postmortem with at least one P0 action item",
            )
        )
    after = impact.budget_remaining_after
    if after < 0:
        findings.append(
            SloFinding(
                slo_id=slo.id,
                kind="budget_exhausted",
                evidence=f"budget remaining after the incident: {after:.1%}",
                recommended_action="freeze releases except P0 and security fixes until back in SLO",
            )
        )
    return findings


def paging_findings(
    impact: IncidentImpact, slo: Slo, pages: list[str], negligible: float
) -> list[SloFinding]:
    """Pages for an incident that hardly burned the budget: paged too early, or on noise."""
    if not pages or impact.budget_consumed >= negligible:
        return []
    names = ", ".join(sorted(set(pages))[:5])
    return [
        SloFinding(
            slo_id=slo.id,
            kind="paged_too_early",
            evidence=(
                f"{len(pages)} page(s) ({names}) for an incident that consumed only "
                f"{impact.budget_consumed:.2%} of the budget (under {negligible:.2%}): paged "
                "too early, or on noise"
            ),
            recommended_action="page on the SLO's multiwindow burn-rate alerts instead, and "
            "retire or demote the alerts that paged",
        )
    ]


def sli_findings(impact: IncidentImpact, slo: Slo, negligible: float) -> list[SloFinding]:
    """A high-severity incident that hardly burned the budget: the SLI misses user pain.

    Call it only for incidents the policy counts as high severity.
    """
    if impact.budget_consumed >= negligible:
        return []
    return [
        SloFinding(
            slo_id=slo.id,
            kind="sli_misses_user_pain",
            evidence=(
                f"a high-severity incident consumed only {impact.budget_consumed:.2%} of the "
                f"budget (under {negligible:.2%})"
            ),
            recommended_action="review the SLI: it does not see what users suffered",
        )
    ]


class SloReviewPolicy(BaseModel):
    """What a postmortem's SLO review demands (the policy's `slo_review`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    postmortem_budget: float = Field(
        default=POSTMORTEM_BUDGET, gt=0, le=1, description="consumed >= this needs a P0 item"
    )
    negligible_budget: float = Field(
        default=0.001, ge=0, lt=1, description="a high-severity incident under this: SLI review"
    )
    detection_slack_minutes: float = Field(
        default=5, ge=0, description="detected this much after the SLO page would have: late"
    )
    high_severities: list[str] | None = Field(
        default=None, description="severities that must show in the SLI; default: the worst two"
    )
