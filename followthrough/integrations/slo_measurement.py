"""What an incident cost an SLO's error budget, measured through Prometheus's HTTP API.

measure_incident(slo, prometheus_url, start, end) asks five instant queries (`/api/v1/query`)
and returns a BudgetMeasurement: the numbers of event-based budget consumption,
bad / (b * total_in_period). With d = end - start and P = slo.period, both in whole seconds:

1. bad events in the impact window: the error query over d, at `end`, times d;
2. total events in the impact window: the total query the same way;
3. total events in the SLO period ending at `end`: the average of the total query over P,
   at `end`, times P;
4. and 5. the error ratio before the incident: the average of the error query and of the
   total query over the period ending at `start`; their quotient.

The SLI queries are per-second rates of events that already `sum(...)` to one series, as
Sloth's are. "Over a span" depends on the query:

- With WINDOW_PLACEHOLDER ("{{window}}") the query is rendered with the span as its window:
  `sum(rate(x[{{window}}]))` over 45 minutes is `sum(rate(x[2700s]))`. rate() over exactly the
  span averages it, so the value times d is the span's events.
- Without it (a fixed inner window such as `[5m]`) the query is averaged over the span with a
  subquery: `avg_over_time((<q>)[2700s:60s])`, a point every max(1, min(60, d // 10)) seconds.
  Each point still looks back its own fixed window, so the average lags the span by about that
  window: roughly window / d of the span's events are counted from before `start` instead of
  the last ones before `end`. Prefer queries with the placeholder.

The period's averages are always subqueries with a one-hour step over the rendered hourly
query (or over the query itself when it has no placeholder), e.g.
`avg_over_time((sum(rate(x[1h])))[2592000s:1h])`: the mean of 720 hourly rates.
avg_over_time averages only the points where the query has a value, so when Prometheus keeps
less than P of history (a short retention, a new service), the result is the average traffic
where data exists, times P. Summing the data instead (increase, or one rate, over P) would
count the missing days as zero traffic, shrink the denominator and overstate the budget
consumed. The points are on whole hours: up to an hour before `end` (or `start`) is not in
the period's average, which moves it by at most 1/720.

Everything that goes wrong becomes MeasurementFailed, with Prometheus's own words where it
gave them and the query it was asked; a measurement that comes back is complete.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from followthrough.domain.slo import (
    WINDOW_PLACEHOLDER,
    BudgetMeasurement,
    Slo,
    budget_consumed_events,
)
from followthrough.integrations.prometheus import prometheus_get
from followthrough.logging import get_logger

PERIOD_STEP = "1h"  # the period's averages: one point (and one rate window) per hour
MAX_IMPACT_STEP = 60  # seconds between the points of an impact-window subquery, at most


class MeasurementFailed(Exception):
    """Prometheus could not give a number for one of the queries: `reason` says why."""

    def __init__(self, reason: str, query: str) -> None:
        super().__init__(reason, query)
        self.reason = reason
        self.query = query

    def __str__(self) -> str:
        return f"{self.reason} (query: {self.query})"


async def measure_incident(
    slo: Slo,
    prometheus_url: str,
    start: datetime,
    end: datetime,
    *,
    timeout: float = 5.0,
) -> BudgetMeasurement:
    """Ask Prometheus what the impact window [start, end] cost `slo` (see the module docstring).

    ValueError for what no Prometheus can answer (an SLO without queries, start not before end,
    times without a timezone); MeasurementFailed for what this one did not.
    """
    missing = [
        name
        for name, query in (("error_query", slo.error_query), ("total_query", slo.total_query))
        if not query.strip()
    ]
    if missing:
        raise ValueError(f"SLO '{slo.id}' has no SLI queries: {' and '.join(missing)} empty")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must carry a timezone")
    if start >= end:
        raise ValueError(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
    duration = max(1, round((end - start).total_seconds()))
    period = round(slo.period.total_seconds())
    asker = _Asker(prometheus_url.rstrip("/"), timeout)

    impact_error = _over_span(slo.error_query, duration)
    impact_total = _over_span(slo.total_query, duration)
    bad_rate = await asker.value(impact_error, end) or 0.0  # no series: no errors recorded
    total_rate = await asker.traffic(impact_total, start, end)

    period_total = _over_period(slo.total_query, period)
    period_rate = await asker.traffic(period_total, end - slo.period, end)

    before_error = _over_period(slo.error_query, period)
    before_total = _over_period(slo.total_query, period)
    error_rate_before = await asker.value(before_error, start) or 0.0
    total_rate_before = await asker.value(before_total, start)
    error_ratio_before = (
        error_rate_before / total_rate_before if total_rate_before else None  # no traffic
    )

    measurement = BudgetMeasurement(
        slo_id=slo.id,
        start=start,
        end=end,
        bad_events=bad_rate * duration,
        total_events=total_rate * duration,
        total_events_in_period=period_rate * period,
        error_ratio_before=error_ratio_before,
        queries=tuple(asker.asked),
    )
    _log(slo, measurement)
    return measurement


async def measure_budget_remaining(
    slo: Slo, prometheus_url: str, at: datetime, *, timeout: float = 5.0
) -> float:
    """The share of `slo`'s error budget left at `at`, over the period ending then: 1 minus the
    period's bad events over the budget's share of its events (negative: overspent). The same
    queries as measure_incident's: the error query over the whole period, the period's average
    traffic. ValueError and MeasurementFailed as there."""
    if not slo.error_query.strip() or not slo.total_query.strip():
        raise ValueError(f"SLO '{slo.id}' has no SLI queries")
    if at.tzinfo is None:
        raise ValueError("at must carry a timezone")
    period = round(slo.period.total_seconds())
    asker = _Asker(prometheus_url.rstrip("/"), timeout)
    bad_rate = await asker.value(_over_span(slo.error_query, period), at) or 0.0
    total_rate = await asker.traffic(_over_period(slo.total_query, period), at - slo.period, at)
    if total_rate <= 0:
        raise MeasurementFailed("no traffic in the period", _over_period(slo.total_query, period))
    remaining = 1 - budget_consumed_events(bad_rate * period, total_rate * period, slo)
    get_logger(__name__).info(
        "slo budget measured", slo_id=slo.id, at=at.isoformat(), remaining=remaining
    )
    return remaining


def _over_span(query: str, seconds: int) -> str:
    """The query's per-second rate averaged over the `seconds` before the evaluation time."""
    query = query.strip()
    if WINDOW_PLACEHOLDER in query:
        return query.replace(WINDOW_PLACEHOLDER, f"{seconds}s")
    step = max(1, min(MAX_IMPACT_STEP, seconds // 10))
    return f"avg_over_time(({query})[{seconds}s:{step}s])"


def _over_period(query: str, seconds: int) -> str:
    """The average of the query's hourly rates over the `seconds` before the evaluation time,
    where it has data."""
    hourly = query.strip().replace(WINDOW_PLACEHOLDER, PERIOD_STEP)
    return f"avg_over_time(({hourly})[{seconds}s:{PERIOD_STEP}])"


class _Asker:
    """Instant queries to one Prometheus, each remembered in `asked`."""

    def __init__(self, base: str, timeout: float) -> None:
        self.base = base
        self.timeout = timeout
        self.asked: list[str] = []

    async def value(self, query: str, at: datetime) -> float | None:
        """The query's one number at `at`; None when it returns no series."""
        self.asked.append(query)
        params = {"query": query, "time": f"{at.timestamp():.3f}"}
        answer = await prometheus_get(self.base, "/api/v1/query", params, self.timeout)
        if not answer.ok:
            raise MeasurementFailed(answer.reason, query)
        values = _numbers(answer.data, query)
        if not values:
            return None
        if len(values) > 1:
            raise MeasurementFailed(
                f"the query returned {len(values)} series, not one: an SLI query must "
                "aggregate to a single series (e.g. sum(...))",
                query,
            )
        value = values[0]
        if not math.isfinite(value):
            raise MeasurementFailed(f"Prometheus answered {value} at {at.isoformat()}", query)
        if value < 0:
            raise MeasurementFailed(
                f"Prometheus answered a negative rate ({value:g}) at {at.isoformat()}", query
            )
        return value

    async def traffic(self, query: str, since: datetime, at: datetime) -> float:
        """The total query's number at `at`, which must have data since `since`."""
        value = await self.value(query, at)
        if value is None:
            raise MeasurementFailed(
                f"no traffic data between {since.isoformat()} and {at.isoformat()}: "
                "the query returned no series",
                query,
            )
        return value


def _numbers(data: Any, query: str) -> list[float]:
    """The values of an instant query's answer: one per series (a scalar is one value)."""
    kind = data.get("resultType")
    try:
        if kind == "vector":
            return [float(series["value"][1]) for series in data["result"]]
        if kind == "scalar":
            return [float(data["result"][1])]
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise MeasurementFailed(f"unexpected answer from Prometheus ({err!r})", query) from err
    raise MeasurementFailed(f"the query returns a {kind}, not a number per series", query)


def _log(slo: Slo, measured: BudgetMeasurement) -> None:
    consumed = (
        budget_consumed_events(measured.bad_events, measured.total_events_in_period, slo)
        if measured.total_events_in_period > 0
        else None
    )
    get_logger(__name__).info(
        "slo incident measured",
        slo_id=slo.id,
        start=measured.start.isoformat(),
        end=measured.end.isoformat(),
        bad_events=measured.bad_events,
        total_events=measured.total_events,
        error_ratio=measured.error_ratio,
        total_events_in_period=measured.total_events_in_period,
        budget_consumed=consumed,
        error_ratio_before=measured.error_ratio_before,
    )
