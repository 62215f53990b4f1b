"""Reliability metrics for the Metrics page, the quarterly report and the monthly digest.

Data in (facts the store reads from lean columns), data out (one ReliabilityMetrics); no I/O.
These are the product's definitions:

- Durations per incident; one is missing when either end is missing, never invented:
  time to detect = detected - started; time to acknowledge = acknowledged - detected;
  time to mitigate = mitigated - started; time to resolve = resolved - started;
  time to communicate = communicated - started, floored at zero (people may announce an incident
  before its recorded start).
- median: the middle value, or the mean of the two middle values for an even count.
  p90: nearest rank, sorted[ceil(0.9 * n) - 1]. No values: None.
- Which milestones: a postmortem's figures are its incident's milestones until its draft is
  approved, then its reviewed timeline's (domain/response.py); the facts come in already chosen.
- Coverage: every figure says how many incidents it stands on, "31 of 40 incidents": of the
  period's (or the severity's) incidents, those that had both ends of the duration.
- Per severity: count, median and p90 of each duration; severities in the caller's order (the
  policy's, worst first), then any others seen in the data, sorted.
- Trend: per local month of resolution, every month of the period (empty ones too), the incident
  count and per severity each duration's median.
- Follow-up, over the action items of the period's incidents: completion rate = verified / all;
  on-time rate = verified by the due date (local date) / decided, where decided = verified plus
  unresolved and already past due (local date of as_of after the due date); risk-accepted items
  and items not yet due are not decided; median time to verify = verified_at - opened_at.
  A verified item missing its verified_at counts as verified, but in no timing figure.
- Repeat incidents: every contributing-factor tag carried by two or more of the period's incidents.
- Error budget consumed: per SLO, the sum of budget_consumed over the period's incidents, in
  shares of that SLO's whole budget for one SLO period (what 100 % means is said beside it). Per
  service, its SLOs' figures side by side: budgets of different SLOs are never added up.
- Customer SLO breach share: incidents with an SLO burn rate above 1 (the SLI was worse than its
  objective while users were hurt) / all incidents.
- Follow-ups all verified within four weeks: of the incidents with action items, qualified = every
  item verified, the last no later than resolved + 28 days; eligible = qualified plus those whose
  28 days are over by as_of (incidents still inside their four weeks are not held against anyone).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property
from typing import Any, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from followthrough.domain.calendar import BusinessCalendar
from followthrough.domain.changes import ChangeMetrics
from followthrough.domain.limits import BURN_MAX
from followthrough.domain.postmortem import (
    APPROVED_STATES,
    RESOLVED_STATES,
    ActionItemState,
    PostmortemState,
)

Duration = Literal["detect", "acknowledge", "mitigate", "resolve", "communicate"]

# Every duration, in display order, with the label tables, charts and emails use.
DURATIONS: dict[Duration, str] = {
    "detect": "Time to detect",
    "acknowledge": "Time to acknowledge",
    "mitigate": "Time to mitigate",
    "resolve": "Time to resolve",
    "communicate": "Time to communicate",
}

FOUR_WEEKS = timedelta(days=28)
NO_VALUE = "—"  # what every formatter shows for a figure with no data


# --- Input facts -------------------------------------------------------------------------------


class SloBurn(BaseModel):
    """One SLO an incident's SLO review assessed."""

    model_config = ConfigDict(frozen=True)

    slo: str  # SLO id
    service: str
    budget_consumed: float  # fraction of the period's error budget, e.g. 0.375
    burn_rate: float  # error ratio / (1 - objective) over the impact window
    # What the budget is, to say what 100 % means; records stored before they were kept lack them.
    name: str = ""
    objective: float | None = None  # e.g. 0.999
    period_days: float | None = None  # the SLO period, e.g. 30

    @field_validator("budget_consumed", "burn_rate", mode="before")
    @classmethod
    def _plausible(cls, value: Any) -> float:
        """A record stored before the edge bounded its numbers (NaN, infinity, 1e308) must not
        break the pages and reports that sum it: read as 0, or at most BURN_MAX."""
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return 0.0
        return min(max(float(value), 0.0), BURN_MAX)

    @field_validator("objective", mode="before")
    @classmethod
    def _an_objective(cls, value: Any) -> float | None:
        """Anything but a number strictly between 0 and 1 is read as unknown."""
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            return None
        return float(value)

    @field_validator("period_days", mode="before")
    @classmethod
    def _a_period(cls, value: Any) -> float | None:
        """Anything but a number of days from a minute to ten years is read as unknown."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if 1 / 1440 <= value <= 3660 else None

    @field_validator("name", mode="before")
    @classmethod
    def _a_name(cls, value: Any) -> str:
        return value[:200] if isinstance(value, str) else ""


class IncidentFacts(BaseModel):
    """One postmortem's incident."""

    model_config = ConfigDict(frozen=True)

    postmortem_id: str
    incident_id: str
    title: str
    severity: str
    team: str | None
    state: str  # the postmortem's state (a PostmortemState value)
    services: list[str] = Field(default_factory=list)
    started_at: AwareDatetime | None = None
    detected_at: AwareDatetime | None = None
    acknowledged_at: AwareDatetime | None = None
    mitigated_at: AwareDatetime | None = None
    communicated_at: AwareDatetime | None = None
    resolved_at: AwareDatetime
    factor_tags: list[str] = Field(default_factory=list)  # approved postmortems only
    slo_burns: list[SloBurn] = Field(default_factory=list)
    caused_by_change: str | None = None  # the draft's: a deploy id, "none", or not said

    @cached_property
    def durations(self) -> dict[Duration, timedelta | None]:
        """Worked out once: every table and trend asks for them (ten times per incident)."""
        return incident_durations(self)


class ItemFacts(BaseModel):
    """One action item."""

    model_config = ConfigDict(frozen=True)

    id: str
    postmortem_id: str
    title: str
    team: str
    owner: str
    priority: str
    state: ActionItemState
    due: date
    opened_at: AwareDatetime
    verified_at: AwareDatetime | None
    ticket: str | None = None  # its Jira key, e.g. PAY-123


class Burned(Protocol):
    """An incident as the error budget figures see it (IncidentFacts or BurnedIncident)."""

    @property
    def postmortem_id(self) -> str: ...
    @property
    def resolved_at(self) -> datetime: ...
    @property
    def slo_burns(self) -> list[SloBurn]: ...


class BurnedIncident(BaseModel):
    """An incident that consumed error budget: what the budget figures need of it."""

    model_config = ConfigDict(frozen=True)

    postmortem_id: str
    resolved_at: AwareDatetime
    slo_burns: list[SloBurn]


class TaggedIncident(BaseModel):
    """One incident carrying one contributing-factor tag."""

    model_config = ConfigDict(frozen=True)

    tag: str
    postmortem_id: str
    resolved_at: AwareDatetime


class IncidentCount(BaseModel):
    """How many of the period's incidents resolved in one local month had one severity and
    postmortem state; and of them, how many had both ends of each duration."""

    model_config = ConfigDict(frozen=True)

    month: str  # YYYY-MM
    severity: str
    state: str
    incidents: int
    measured: dict[Duration, int]


class FollowUpCounts(BaseModel):
    """The action items of the period's incidents, counted as `follow_up` and
    `follow_ups_within_four_weeks` count them."""

    model_config = ConfigDict(frozen=True)

    total: int
    verified: int
    risk_accepted: int
    verified_with_time: int  # verified, with its verified_at
    on_time: int
    past_due: int  # unresolved, and the local date of as_of after the due date
    time_to_verify: Ranked
    qualified: int  # incidents whose items were all verified within four weeks
    eligible: int


class PeriodSums(BaseModel):
    """A period's figures as the store adds them up in the database (storage/figures.py), so a
    year of incidents and items need not be read one by one; `reliability_metrics_of` turns them
    into the same ReliabilityMetrics `reliability_metrics` works out from every incident."""

    model_config = ConfigDict(frozen=True)

    counts: list[IncidentCount]
    by_severity: dict[tuple[Duration, str], Ranked]  # (duration, severity)
    by_month: dict[tuple[Duration, str, str], Ranked]  # (duration, severity, month)
    follow_up: FollowUpCounts
    tagged: list[TaggedIncident]  # only the tags carried by two or more incidents are needed
    burned: list[BurnedIncident]


# --- Output ------------------------------------------------------------------------------------


class DurationStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    count: int  # incidents that had both ends of this duration
    median: timedelta | None
    p90: timedelta | None


class DurationCoverage(BaseModel):
    """How many of the period's incidents one duration stands on (all severities)."""

    model_config = ConfigDict(frozen=True)

    duration: Duration
    count: int  # incidents that had both ends of it
    incidents: int


class SeverityTimings(BaseModel):
    """One severity class: how many incidents, and how long each phase took."""

    model_config = ConfigDict(frozen=True)

    severity: str
    incidents: int
    detect: DurationStats
    acknowledge: DurationStats
    mitigate: DurationStats
    resolve: DurationStats
    communicate: DurationStats

    def of(self, duration: Duration) -> DurationStats:
        stats: DurationStats = getattr(self, duration)
        return stats


class SeverityMedians(BaseModel):
    """One severity in one month of the trend: each duration's median (None: no data)."""

    model_config = ConfigDict(frozen=True)

    severity: str
    incidents: int
    detect: timedelta | None
    acknowledge: timedelta | None
    mitigate: timedelta | None
    resolve: timedelta | None
    communicate: timedelta | None

    def of(self, duration: Duration) -> timedelta | None:
        median: timedelta | None = getattr(self, duration)
        return median


class MonthTrend(BaseModel):
    model_config = ConfigDict(frozen=True)

    month: str  # YYYY-MM, the calendar's local month of resolution
    incidents: int
    by_severity: list[SeverityMedians]  # every severity, in the same order every month


class FollowUp(BaseModel):
    """The action items of the period's incidents."""

    model_config = ConfigDict(frozen=True)

    total: int
    verified: int
    risk_accepted: int
    open: int  # everything not verified and not risk accepted
    completion_rate: float | None  # verified / total
    on_time: int  # verified no later than the due date (local)
    decided: int  # verified, or unresolved and past due
    on_time_rate: float | None  # on_time / decided
    median_time_to_verify: timedelta | None


class FollowUpsWithinFourWeeks(BaseModel):
    """Postmortems whose follow-ups were all verified within four weeks of resolution."""

    model_config = ConfigDict(frozen=True)

    qualified: int
    eligible: int
    share: float | None  # qualified / eligible


class RepeatFactor(BaseModel):
    """A contributing-factor tag shared by several of the period's incidents."""

    model_config = ConfigDict(frozen=True)

    tag: str
    incidents: int
    postmortem_ids: list[str]  # oldest incident first


class BudgetBySlo(BaseModel):
    """One SLO's error budget consumed by the period's incidents."""

    model_config = ConfigDict(frozen=True)

    slo: str
    service: str
    consumed: float  # summed over the incidents, in shares of this SLO's whole budget
    incidents: int
    meaning: str = ""  # what 100 % is, e.g. "100% = the whole 30-day budget of 99.9% ..."


class BudgetByService(BaseModel):
    """A service's SLOs side by side: each in its own budget's units, so never added up."""

    model_config = ConfigDict(frozen=True)

    service: str
    slos: list[BudgetBySlo]  # the most consumed first
    incidents: int  # incidents that cost any of its SLOs budget


class SloBreaches(BaseModel):
    """Incidents where users were hurt beyond an SLO's objective (a burn rate above 1)."""

    model_config = ConfigDict(frozen=True)

    breached: int
    incidents: int
    share: float | None


class StateCount(BaseModel):
    model_config = ConfigDict(frozen=True)

    state: str
    postmortems: int


class ReliabilityMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    period_start: AwareDatetime
    period_end: AwareDatetime  # exclusive
    as_of: AwareDatetime
    timezone: str  # the calendar's, which months and due dates are read in
    incidents: int
    reviewed: int  # incidents whose figures come from an approved, reviewed timeline
    coverage: list[DurationCoverage]  # each duration, in DURATIONS order
    severities: list[SeverityTimings]  # the per-severity incident counts too
    postmortems_by_state: list[StateCount]  # states that occur, in lifecycle order
    trend: list[MonthTrend]
    follow_up: FollowUp
    within_four_weeks: FollowUpsWithinFourWeeks
    repeat_factors: list[RepeatFactor]
    budget_by_service: list[BudgetByService]
    budget_by_slo: list[BudgetBySlo]
    slo_breaches: SloBreaches
    # Deployment frequency, change failure rate, rollbacks and time to restore per service,
    # team and month (domain/changes.py); None where no deploys were read.
    changes: ChangeMetrics | None = None


# --- Statistics --------------------------------------------------------------------------------


def median_ranks(count: int) -> tuple[int, int]:
    """The ranks (1-based, smallest first) the median of `count` values stands on: the middle
    one twice for an odd count, the two middle ones for an even count."""
    return (count + 1) // 2, count // 2 + 1


def p90_rank(count: int) -> int:
    """The 90th percentile's rank by nearest rank: ceil(0.9 n), in integers (0.9 * n in floats
    can miss)."""
    return -(-9 * count // 10)


def _median_of(low: timedelta, high: timedelta) -> timedelta:
    return low if low == high else (low + high) / 2


def median(values: Sequence[timedelta]) -> timedelta | None:
    """The middle value; the mean of the two middle ones for an even count; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    low, high = median_ranks(len(ordered))
    return _median_of(ordered[low - 1], ordered[high - 1])


def p90(values: Sequence[timedelta]) -> timedelta | None:
    """The 90th percentile by nearest rank: sorted[ceil(0.9 n) - 1]; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[p90_rank(len(ordered)) - 1]


class Ranked(BaseModel):
    """Some durations as the database ranked them: how many, and the values at the ranks the
    median and the p90 stand on (1-based, smallest first; others may be left out)."""

    model_config = ConfigDict(frozen=True)

    count: int = 0
    at_rank: dict[int, timedelta] = Field(default_factory=dict)

    def median(self) -> timedelta | None:
        if not self.count:
            return None
        low, high = median_ranks(self.count)
        return _median_of(self.at_rank[low], self.at_rank[high])

    def p90(self) -> timedelta | None:
        return self.at_rank[p90_rank(self.count)] if self.count else None

    def stats(self) -> DurationStats:
        return DurationStats(count=self.count, median=self.median(), p90=self.p90())


def duration_stats(values: Sequence[timedelta]) -> DurationStats:
    return DurationStats(count=len(values), median=median(values), p90=p90(values))


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _between(start: datetime | None, end: datetime | None) -> timedelta | None:
    return None if start is None or end is None else end - start


# Each duration's milestones, from and to; the store's SQL reads the same (storage/figures.py).
DURATION_ENDS: dict[Duration, tuple[str, str]] = {
    "detect": ("started", "detected"),
    "acknowledge": ("detected", "acknowledged"),
    "mitigate": ("started", "mitigated"),
    "resolve": ("started", "resolved"),
    "communicate": ("started", "communicated"),
}
# People may announce an incident before its recorded start: these are floored at zero.
FLOORED_AT_ZERO: frozenset[Duration] = frozenset({"communicate"})


def incident_durations(incident: IncidentFacts) -> dict[Duration, timedelta | None]:
    """Each duration of one incident; None where a milestone is missing."""
    found: dict[Duration, timedelta | None] = {}
    for duration, (start, end) in DURATION_ENDS.items():
        value = _between(getattr(incident, f"{start}_at"), getattr(incident, f"{end}_at"))
        if value is not None and duration in FLOORED_AT_ZERO:
            value = max(value, timedelta(0))
        found[duration] = value
    return found


def _measured(incidents: Iterable[IncidentFacts], duration: Duration) -> list[timedelta]:
    found = (i.durations[duration] for i in incidents)
    return [d for d in found if d is not None]


# --- Calendar periods --------------------------------------------------------------------------


_QUARTER = re.compile(r"(\d{4})Q([1-4])")


def _local_midnight(day: date, calendar: BusinessCalendar) -> datetime:
    return calendar.midnight(day)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _bounds(
    first: tuple[int, int], after: tuple[int, int], calendar: BusinessCalendar, what: str
) -> tuple[datetime, datetime]:
    try:
        start = _local_midnight(date(first[0], first[1], 1), calendar)
        end = _local_midnight(date(after[0], after[1], 1), calendar)
    except (ValueError, OverflowError):
        raise ValueError(f"{what} is outside the years a date can hold (1 to 9999)") from None
    return start, end


def quarter_bounds(quarter: str, calendar: BusinessCalendar) -> tuple[datetime, datetime]:
    """Local midnight of the quarter's first day, and of the next quarter's (UTC), e.g. 2026Q4."""
    match = _QUARTER.fullmatch(quarter.strip().upper())
    if match is None:
        raise ValueError(
            f"quarter '{quarter}' is not a quarter; write the year and 1-4, e.g. '2026Q4'"
        )
    year, number = int(match[1]), int(match[2])
    first_month = 3 * (number - 1) + 1
    after = (year + 1, 1) if number == 4 else (year, first_month + 3)
    return _bounds((year, first_month), after, calendar, f"quarter '{quarter}'")


def month_bounds(year: int, month: int, calendar: BusinessCalendar) -> tuple[datetime, datetime]:
    """Local midnight of the month's first day, and of the next month's (UTC)."""
    if not 1 <= month <= 12:
        raise ValueError(f"month {month} is not a month; give 1 to 12")
    return _bounds((year, month), _next_month(year, month), calendar, f"month {year}-{month}")


class Period(BaseModel):
    """A stretch of time the metrics cover: [start, end), named for people."""

    model_config = ConfigDict(frozen=True)

    label: str
    start: AwareDatetime
    end: AwareDatetime


def period_of(
    today: date, calendar: BusinessCalendar, *, quarter: str = "", month: str = ""
) -> Period:
    """A quarter ('2026Q4'), a month ('2026-10'), or else the twelve months up to this one."""
    if quarter and month:
        raise ValueError("choose a quarter or a month, not both")
    if quarter:
        start, end = quarter_bounds(quarter, calendar)
        return Period(label=quarter.strip().upper(), start=start, end=end)
    if month:
        found = re.fullmatch(r"(\d{4})-(\d{2})", month.strip())
        if found is None:
            raise ValueError(f"month '{month}' is not a month; write it as e.g. '2026-10'")
        start, end = month_bounds(int(found[1]), int(found[2]), calendar)
        return Period(label=month.strip(), start=start, end=end)
    year, number = today.year, today.month - 11
    if number < 1:
        year, number = year - 1, number + 12
    start, _ = month_bounds(year, number, calendar)
    _, end = month_bounds(today.year, today.month, calendar)
    return Period(label="the last 12 months", start=start, end=end)


def recent_quarters(today: date, count: int) -> list[str]:
    """The quarter `today` is in and the ones before it, newest first: ['2026Q4', '2026Q3']."""
    year, number = today.year, (today.month - 1) // 3 + 1
    quarters = []
    for _ in range(count):
        quarters.append(f"{year}Q{number}")
        year, number = (year - 1, 4) if number == 1 else (year, number - 1)
    return quarters


def _month_label(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _months_of_period(start: datetime, end: datetime, calendar: BusinessCalendar) -> list[str]:
    """Every local month from the period's first to its last, empty ones included."""
    if end <= start:
        return []
    first = calendar.local_date(start)
    last = calendar.local_date(end - timedelta(microseconds=1))  # the end is exclusive
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = _next_month(year, month)
    return months


# --- The figures -------------------------------------------------------------------------------


def format_coverage(count: int, incidents: int) -> str:
    """How many incidents a figure stands on: '31 of 40 incidents', '1 of 1 incident'."""
    return f"{count} of {incidents} incident{'' if incidents == 1 else 's'}"


def coverage(incidents: list[IncidentFacts]) -> list[DurationCoverage]:
    return [
        DurationCoverage(duration=d, count=len(_measured(incidents, d)), incidents=len(incidents))
        for d in DURATIONS
    ]


def reviewed(incidents: list[IncidentFacts]) -> int:
    approved = {state.value for state in APPROVED_STATES}
    return sum(1 for i in incidents if i.state in approved)


def _ordered_severities(wanted: list[str], seen: Iterable[str]) -> list[str]:
    """The caller's order (duplicates dropped), then severities only the data has, sorted."""
    ordered = list(dict.fromkeys(wanted))
    extra = sorted(set(seen) - set(ordered))
    return ordered + extra


def _by_severity(incidents: list[IncidentFacts]) -> dict[str, list[IncidentFacts]]:
    groups: dict[str, list[IncidentFacts]] = defaultdict(list)
    for incident in incidents:
        groups[incident.severity].append(incident)
    return groups


def severity_timings(severity: str, incidents: list[IncidentFacts]) -> SeverityTimings:
    return SeverityTimings(
        severity=severity,
        incidents=len(incidents),
        **{d: duration_stats(_measured(incidents, d)) for d in DURATIONS},
    )


def _severity_medians(severity: str, incidents: list[IncidentFacts]) -> SeverityMedians:
    return SeverityMedians(
        severity=severity,
        incidents=len(incidents),
        **{d: median(_measured(incidents, d)) for d in DURATIONS},
    )


def monthly_trend(
    incidents: list[IncidentFacts],
    months: list[str],
    severities: list[str],
    calendar: BusinessCalendar,
) -> list[MonthTrend]:
    in_month: dict[str, list[IncidentFacts]] = defaultdict(list)
    for incident in incidents:
        in_month[_month_label(calendar.local_date(incident.resolved_at))].append(incident)
    trend = []
    for month in months:
        groups = _by_severity(in_month[month])
        trend.append(
            MonthTrend(
                month=month,
                incidents=len(in_month[month]),
                by_severity=[_severity_medians(s, groups[s]) for s in severities],
            )
        )
    return trend


def _states_in_lifecycle_order(counts: dict[str, int]) -> list[StateCount]:
    known = [s.value for s in PostmortemState]
    order = [s for s in known if s in counts] + sorted(set(counts) - set(known))
    return [StateCount(state=s, postmortems=counts[s]) for s in order]


def _count_states(incidents: list[IncidentFacts]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for incident in incidents:
        counts[incident.state] += 1
    return counts


def follow_up(items: list[ItemFacts], as_of: datetime, calendar: BusinessCalendar) -> FollowUp:
    today = calendar.local_date(as_of)
    verified = [i for i in items if i.state is ActionItemState.VERIFIED]
    risk_accepted = sum(1 for i in items if i.state is ActionItemState.RISK_ACCEPTED)
    unresolved = len(items) - len(verified) - risk_accepted
    past_due = sum(1 for i in items if i.state not in RESOLVED_STATES and today > i.due)
    # A verified item without its time (the workflow always stamps one) is left out of the
    # timing figures rather than guessed on time or late.
    verified_at = [(i, i.verified_at) for i in verified if i.verified_at is not None]
    on_time = sum(1 for i, at in verified_at if calendar.local_date(at) <= i.due)
    decided = len(verified_at) + past_due
    to_verify = [at - i.opened_at for i, at in verified_at]
    return FollowUp(
        total=len(items),
        verified=len(verified),
        risk_accepted=risk_accepted,
        open=unresolved,
        completion_rate=_rate(len(verified), len(items)),
        on_time=on_time,
        decided=decided,
        on_time_rate=_rate(on_time, decided),
        median_time_to_verify=median(to_verify),
    )


def follow_ups_within_four_weeks(
    incidents: list[IncidentFacts], items: list[ItemFacts], as_of: datetime
) -> FollowUpsWithinFourWeeks:
    items_of: dict[str, list[ItemFacts]] = defaultdict(list)
    for item in items:
        items_of[item.postmortem_id].append(item)
    qualified = eligible = 0
    for incident in incidents:
        its_items = items_of.get(incident.postmortem_id)
        if not its_items:
            continue  # nothing to follow up
        deadline = incident.resolved_at + FOUR_WEEKS
        done = [i.verified_at for i in its_items if i.state is ActionItemState.VERIFIED]
        all_in_time = len(done) == len(its_items) and all(
            at is not None and at <= deadline for at in done
        )
        if all_in_time:
            qualified += 1
            eligible += 1
        elif deadline <= as_of:
            eligible += 1
    return FollowUpsWithinFourWeeks(
        qualified=qualified, eligible=eligible, share=_rate(qualified, eligible)
    )


def repeat_factors(incidents: list[IncidentFacts]) -> list[RepeatFactor]:
    return _repeats(
        TaggedIncident(tag=tag, postmortem_id=i.postmortem_id, resolved_at=i.resolved_at)
        for i in incidents
        for tag in dict.fromkeys(i.factor_tags)  # a tag listed twice is one incident
    )


def _repeats(tagged: Iterable[TaggedIncident]) -> list[RepeatFactor]:
    carriers: dict[str, list[TaggedIncident]] = defaultdict(list)
    for one in tagged:
        carriers[one.tag].append(one)
    repeats = [
        RepeatFactor(
            tag=tag,
            incidents=len(shared),
            postmortem_ids=[
                i.postmortem_id
                for i in sorted(shared, key=lambda i: (i.resolved_at, i.postmortem_id))
            ],
        )
        for tag, shared in carriers.items()
        if len(shared) >= 2
    ]
    return sorted(repeats, key=lambda r: (-r.incidents, r.tag))


def budget_meaning(name: str, objective: float | None, period_days: float | None) -> str:
    """What 100 % of an SLO's error budget is, in people's words.

    "100% = the whole 30-day budget of 99.9% availability: 43 min of failed requests", where
    43 min = (1 - objective) x period: the failures allowed in the period, as that long a total
    outage. Unknown objective or period (records kept before them): said so, not guessed.
    """
    what = name or "this SLO"
    if objective is None or period_days is None:
        return f"100% = the whole error budget of {what} for one SLO period"
    allowed = timedelta(days=period_days) * (1 - objective)
    return (
        f"100% = the whole {_one_decimal(period_days)}-day budget of "
        f"{_objective_percent(objective)} {what}: {format_duration(allowed)} of failed requests"
    )


def _objective_percent(objective: float) -> str:
    # Enough places to tell 99.95% from 99.9%, none wasted on 99%.
    text = f"{_half_up(objective * 100, 4):f}".rstrip("0").removesuffix(".")
    return f"{text}%"


def budget_by_slo(incidents: Sequence[Burned]) -> list[BudgetBySlo]:
    """Per SLO: its budget consumed summed over the incidents, the most consumed first."""
    consumed: dict[str, float] = defaultdict(float)
    hit: dict[str, set[str]] = defaultdict(set)
    first: dict[str, SloBurn] = {}
    newest: dict[str, SloBurn] = {}
    for incident in sorted(incidents, key=lambda i: (i.resolved_at, i.postmortem_id)):
        for burn in incident.slo_burns:
            consumed[burn.slo] += burn.budget_consumed
            hit[burn.slo].add(incident.postmortem_id)
            first.setdefault(burn.slo, burn)  # an SLO id belongs to one service
            if burn.objective is not None and burn.period_days is not None:
                newest[burn.slo] = burn  # the SLO as most recently reviewed says what 100 % is
    rows = []
    for slo, burn in first.items():
        known = newest.get(slo, burn)
        rows.append(
            BudgetBySlo(
                slo=slo,
                service=burn.service,
                consumed=consumed[slo],
                incidents=len(hit[slo]),
                meaning=budget_meaning(known.name, known.objective, known.period_days),
            )
        )
    return sorted(rows, key=lambda r: (-r.consumed, r.slo))


def budget_by_service(
    incidents: Sequence[Burned], per_slo: list[BudgetBySlo] | None = None
) -> list[BudgetByService]:
    """Per service, its SLOs side by side (never summed); the service whose SLO lost the most
    budget first."""
    slos = budget_by_slo(incidents) if per_slo is None else per_slo
    hit: dict[str, set[str]] = defaultdict(set)
    for incident in incidents:
        for burn in incident.slo_burns:
            hit[burn.service].add(incident.postmortem_id)
    of_service: dict[str, list[BudgetBySlo]] = defaultdict(list)
    for row in slos:  # already the most consumed first
        of_service[row.service].append(row)
    rows = [
        BudgetByService(service=s, slos=of_service[s], incidents=len(hit[s])) for s in of_service
    ]
    return sorted(rows, key=lambda r: (-r.slos[0].consumed, r.service))


def slo_breaches(incidents: Sequence[Burned], of: int | None = None) -> SloBreaches:
    """`of`: all the period's incidents, when `incidents` are only those that burned budget."""
    total = len(incidents) if of is None else of
    breached = sum(1 for i in incidents if any(b.burn_rate > 1 for b in i.slo_burns))
    return SloBreaches(breached=breached, incidents=total, share=_rate(breached, total))


def _require_aware(**moments: datetime) -> None:
    for name, moment in moments.items():
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} ({moment.isoformat()}) has no time zone; pass an aware one")


def reliability_metrics(
    incidents: list[IncidentFacts],
    items: list[ItemFacts],
    *,
    period_start: datetime,
    period_end: datetime,
    as_of: datetime,
    calendar: BusinessCalendar,
    severities: list[str],
) -> ReliabilityMetrics:
    """Every figure for incidents resolved in [period_start, period_end) and their action items.

    Incidents outside the period, and items of other incidents, are left out rather than refused.
    """
    _require_aware(period_start=period_start, period_end=period_end, as_of=as_of)
    incidents = [i for i in incidents if period_start <= i.resolved_at < period_end]
    ours = {i.postmortem_id for i in incidents}
    items = [i for i in items if i.postmortem_id in ours]
    ordered = _ordered_severities(severities, (i.severity for i in incidents))
    groups = _by_severity(incidents)
    per_slo = budget_by_slo(incidents)
    return ReliabilityMetrics(
        period_start=period_start,
        period_end=period_end,
        as_of=as_of,
        timezone=calendar.timezone,
        incidents=len(incidents),
        reviewed=reviewed(incidents),
        coverage=coverage(incidents),
        severities=[severity_timings(s, groups[s]) for s in ordered],
        postmortems_by_state=_states_in_lifecycle_order(_count_states(incidents)),
        trend=monthly_trend(
            incidents, _months_of_period(period_start, period_end, calendar), ordered, calendar
        ),
        follow_up=follow_up(items, as_of, calendar),
        within_four_weeks=follow_ups_within_four_weeks(incidents, items, as_of),
        repeat_factors=repeat_factors(incidents),
        budget_by_service=budget_by_service(incidents, per_slo),
        budget_by_slo=per_slo,
        slo_breaches=slo_breaches(incidents),
    )


def reliability_metrics_of(
    sums: PeriodSums,
    *,
    period_start: datetime,
    period_end: datetime,
    as_of: datetime,
    calendar: BusinessCalendar,
    severities: list[str],
) -> ReliabilityMetrics:
    """`reliability_metrics`, from the figures the store added up for the period."""
    _require_aware(period_start=period_start, period_end=period_end, as_of=as_of)
    counts = sums.counts
    total = sum(c.incidents for c in counts)
    ordered = _ordered_severities(severities, (c.severity for c in counts))
    of_severity: dict[str, int] = defaultdict(int)
    of_month: dict[str, int] = defaultdict(int)
    of_both: dict[tuple[str, str], int] = defaultdict(int)
    of_state: dict[str, int] = defaultdict(int)
    measured: dict[Duration, int] = defaultdict(int)
    for c in counts:
        of_severity[c.severity] += c.incidents
        of_month[c.month] += c.incidents
        of_both[(c.month, c.severity)] += c.incidents
        of_state[c.state] += c.incidents
        for duration, n in c.measured.items():
            measured[duration] += n
    none = Ranked()
    approved = {state.value for state in APPROVED_STATES}
    months = _months_of_period(period_start, period_end, calendar)
    items = sums.follow_up
    per_slo = budget_by_slo(sums.burned)
    return ReliabilityMetrics(
        period_start=period_start,
        period_end=period_end,
        as_of=as_of,
        timezone=calendar.timezone,
        incidents=total,
        reviewed=sum(n for state, n in of_state.items() if state in approved),
        coverage=[
            DurationCoverage(duration=d, count=measured[d], incidents=total) for d in DURATIONS
        ],
        severities=[
            SeverityTimings(
                severity=s,
                incidents=of_severity[s],
                **{d: sums.by_severity.get((d, s), none).stats() for d in DURATIONS},
            )
            for s in ordered
        ],
        postmortems_by_state=_states_in_lifecycle_order(of_state),
        trend=[
            MonthTrend(
                month=month,
                incidents=of_month[month],
                by_severity=[
                    SeverityMedians(
                        severity=s,
                        incidents=of_both[(month, s)],
                        **{d: sums.by_month.get((d, s, month), none).median() for d in DURATIONS},
                    )
                    for s in ordered
                ],
            )
            for month in months
        ],
        follow_up=FollowUp(
            total=items.total,
            verified=items.verified,
            risk_accepted=items.risk_accepted,
            open=items.total - items.verified - items.risk_accepted,
            completion_rate=_rate(items.verified, items.total),
            on_time=items.on_time,
            decided=items.verified_with_time + items.past_due,
            on_time_rate=_rate(items.on_time, items.verified_with_time + items.past_due),
            median_time_to_verify=items.time_to_verify.median(),
        ),
        within_four_weeks=FollowUpsWithinFourWeeks(
            qualified=items.qualified,
            eligible=items.eligible,
            share=_rate(items.qualified, items.eligible),
        ),
        repeat_factors=_repeats(sums.tagged),
        budget_by_service=budget_by_service(sums.burned, per_slo),
        budget_by_slo=per_slo,
        slo_breaches=slo_breaches(sums.burned, of=total),
    )


def months_of_period(start: datetime, end: datetime, calendar: BusinessCalendar) -> list[str]:
    """Every local month from the period's first to its last (YYYY-MM), empty ones included."""
    return _months_of_period(start, end, calendar)


def on_time_before(due: date, calendar: BusinessCalendar) -> datetime:
    """An item due on `due` is on time when verified before this moment: the local date of its
    verification no later than the due date (what `follow_up` asks) is the same as this."""
    return calendar.midnight(due + timedelta(days=1))


def trend_series(
    metrics: ReliabilityMetrics, duration: Duration
) -> tuple[list[str], dict[str, list[float | None]]]:
    """One duration's monthly medians per severity, in hours: the months and the series for
    charts.line_chart (format the values with `lambda h: format_duration(timedelta(hours=h))`).

    Every severity gets a series, even an empty one, so its colour is the same in every chart.
    """
    months = [m.month for m in metrics.trend]
    series: dict[str, list[float | None]] = {s.severity: [] for s in metrics.severities}
    for month in metrics.trend:
        for row in month.by_severity:
            value = row.of(duration)
            series[row.severity].append(None if value is None else value.total_seconds() / 3600)
    return months, series


# --- Formatting (the dashboard, the quarterly report and the digest email all use these) -----


def _half_up(value: float, places: int) -> Decimal:
    # Half up, as people round; format() rounds half to even (12.5% would show as 12%).
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _one_decimal(value: float) -> str:
    text = f"{_half_up(value, 1):f}"
    return text.removesuffix(".0")


def format_duration(duration: timedelta | None) -> str:
    """'42 s', '42 min', '3.5 h', '2.1 days'; '—' when there is no value."""
    if duration is None:
        return NO_VALUE
    if duration < timedelta(0):
        return "-" + format_duration(-duration)
    seconds = duration.total_seconds()
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes = _half_up(seconds / 60, 0)
    if minutes < 60:
        return f"{minutes:f} min"
    if _half_up(seconds / 3600, 1) < 24:
        return f"{_one_decimal(seconds / 3600)} h"
    days = _one_decimal(seconds / 86400)
    return f"{days} day" if days == "1" else f"{days} days"


def format_percent(rate: float | None) -> str:
    """A rate in [0, 1] as a whole percentage, '71%'; '—' when there is no value."""
    return NO_VALUE if rate is None else f"{_half_up(rate * 100, 0):f}%"


def headline(metrics: ReliabilityMetrics) -> list[tuple[str, str]]:
    """The narrative headline numbers, (label, value), in the order every report shows them."""
    follow = metrics.follow_up
    four = metrics.within_four_weeks
    within = (
        f"{four.qualified} of {four.eligible} ({format_percent(four.share)})"
        if four.eligible
        else NO_VALUE
    )
    return [
        ("Incidents", str(metrics.incidents)),
        ("Follow-ups completed", format_percent(follow.completion_rate)),
        ("On time", format_percent(follow.on_time_rate)),
        ("Median time to verify", format_duration(follow.median_time_to_verify)),
        ("Follow-ups all verified within 4 weeks", within),
        ("Incidents breaching a customer SLO", format_percent(metrics.slo_breaches.share)),
    ]


def timing_cells(severity: SeverityTimings) -> list[str]:
    """Each duration's 'median / p90 (incidents it stands on)' for one severity, in DURATIONS
    order: '12 min / 40 min (3 of 4)'."""
    cells = []
    for duration in DURATIONS:
        stats = severity.of(duration)
        cells.append(
            f"{format_duration(stats.median)} / {format_duration(stats.p90)} "
            f"({stats.count} of {severity.incidents})"
        )
    return cells


def response_coverage(metrics: ReliabilityMetrics) -> list[tuple[str, str]]:
    """How many incidents each response figure stands on, (label, '31 of 40 incidents')."""
    return [
        (DURATIONS[c.duration], format_coverage(c.count, c.incidents)) for c in metrics.coverage
    ]


def figures_basis(metrics: ReliabilityMetrics) -> str:
    """Where the response figures' milestones come from, in one sentence."""
    if not metrics.incidents:
        return "No incident was resolved in the period."
    return (
        f"The response times of {format_coverage(metrics.reviewed, metrics.incidents)} come from "
        "their approved postmortem's reviewed timeline; the others' postmortems are not yet "
        "approved, so theirs are the incident's own milestones as its source reported them."
    )
