"""A synthetic SLI for the SLO tests: the reference's worked example as Prometheus counters.

`http_requests_total{service="checkout", code="200"|"500"}`, one sample a minute for 31 days,
1,000 rps on average (a daily cycle of +-20 %) with 0.05 % errors (so a 99.9 % SLO has used half
its budget), and a 45-minute incident at 1,200 rps with 30 % errors, which costs 37.5 % of the
30-day budget. `sli_history()` gives the OpenMetrics text to backfill
(tests/servers/prometheus.py) and the samples, from which a test computes what Prometheus must
answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from followthrough.domain.slo import Slo
from tests.servers.prometheus import openmetrics_family

STEP = 60  # seconds between samples
DAY = 86400
HOUR = 3600
HISTORY = 31 * DAY
PERIOD = timedelta(days=30)
AVERAGE_RPS = 1000.0
BACKGROUND_ERRORS = 0.0005
INCIDENT = 45 * 60
INCIDENT_RPS = 1200.0
INCIDENT_ERRORS = 0.30

ERRORS = 'sum(rate(http_requests_total{service="checkout",code=~"5.."}[{{window}}]))'
TOTAL = 'sum(rate(http_requests_total{service="checkout"}[{{window}}]))'
CHECKOUT = Slo(
    id="checkout-availability",
    name="Checkout availability",
    service="checkout",
    objective=0.999,
    period=PERIOD,
    error_query=ERRORS,
    total_query=TOTAL,
)


def _rps(moment: int) -> float:
    """Background traffic: 1,000 rps on average over every whole day."""
    return AVERAGE_RPS * (1 + 0.2 * math.sin(2 * math.pi * moment / DAY))


@dataclass
class SyntheticSli:
    """The synthetic counters, and what Prometheus must answer about them."""

    errors: dict[int, float]  # unix second -> code="500" counter
    totals: dict[int, float]  # unix second -> both counters' sum
    start: int  # the first sample
    end: int  # the last sample

    def rate(self, counter: dict[int, float], at: int, window: int) -> float | None:
        """rate(counter[window]) at `at` when both ends are samples (nothing to extrapolate);
        None where the window holds no data."""
        if at - window < self.start or at > self.end:
            return None
        return (counter[at] - counter[at - window]) / window

    def average(
        self, counter: dict[int, float], at: int, span: int, step: int, window: int
    ) -> float:
        """avg_over_time((rate(counter[window]))[span:step]) at `at`: the points are the
        multiples of step in [at - span, at], and only those with a value count."""
        first = math.ceil((at - span) / step) * step
        values = [self.rate(counter, p, window) for p in range(first, at + 1, step)]
        present = [v for v in values if v is not None]
        return sum(present) / len(present)


def sli_history(
    end: int, incident_start: int, incident_end: int, background_errors: float = BACKGROUND_ERRORS
) -> tuple[str, SyntheticSli]:
    ok = 0.0
    failed = 0.0
    ok_samples: list[tuple[float, float]] = []
    failed_samples: list[tuple[float, float]] = []
    errors: dict[int, float] = {}
    totals: dict[int, float] = {}
    start = end - HISTORY
    for moment in range(start, end + 1, STEP):
        incident = incident_start < moment <= incident_end  # the minute ending at `moment`
        requests = (INCIDENT_RPS if incident else _rps(moment)) * STEP
        bad = requests * (INCIDENT_ERRORS if incident else background_errors)
        ok += requests - bad
        failed += bad
        ok_samples.append((moment, ok))
        failed_samples.append((moment, failed))
        errors[moment] = failed
        totals[moment] = ok + failed
    text = openmetrics_family(
        "http_requests_total",
        "counter",
        [
            ({"service": "checkout", "code": "200"}, ok_samples),
            ({"service": "checkout", "code": "500"}, failed_samples),
        ],
    )
    return text, SyntheticSli(errors, totals, start, end)
