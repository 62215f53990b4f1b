"""measure_incident against a real Prometheus (tests/servers/prometheus.py) holding 31 days of an
SLI.

The history is the reference's worked example (../shared/reference/slo-error-budget.md) as
counters: `http_requests_total{service="checkout", code="200"|"500"}`, one sample a minute,
1,000 rps on average (a daily cycle of +-20 %) with 0.05 % errors, so a 99.9 % SLO has used half
its budget; and a 45-minute incident at 1,200 rps with 30 % errors, which costs 37.5 % of the
30-day budget.

Every moment that matters (the incident's start and end, the hourly points of the period's
subqueries, the points of the fixed-window subqueries) falls on a sample, and so does the start
of every rate() window the queries use. rate() then has nothing to extrapolate at the window's
edges (a first sample exactly at the window's start, the last exactly at its end): it is the
exact difference of two samples over the window. The tests therefore compute what Prometheus
must answer from the synthetic samples themselves (`SyntheticSli`, tests/servers/sli.py) and compare
within 1e-6; and, apart from that, compare with the worked example's round numbers within
the tolerances the data's shape explains (the daily cycle, the incident's extra traffic).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import structlog

from followthrough.domain.slo import budget_consumed_events
from followthrough.integrations.slo_measurement import MeasurementFailed, measure_incident
from tests.processes import free_port
from tests.servers.prometheus import Prometheus
from tests.servers.sli import (
    AVERAGE_RPS,
    BACKGROUND_ERRORS,
    CHECKOUT,
    DAY,
    ERRORS,
    HOUR,
    INCIDENT,
    INCIDENT_ERRORS,
    STEP,
    TOTAL,
    SyntheticSli,
    sli_history,
)

FIXED_WINDOW = 300  # the fixed-window variant's [5m]
FIXED = CHECKOUT.model_copy(
    update={
        "error_query": ERRORS.replace("{{window}}", "5m"),
        "total_query": TOTAL.replace("{{window}}", "5m"),
    }
)


@dataclass
class World:
    prom: Prometheus
    sli: SyntheticSli
    start: datetime  # the incident
    end: datetime

    @property
    def url(self) -> str:
        return self.prom.base_url


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    # A fixed recent anchor: the history ends two hours before now, on a whole minute; the
    # incident ends an hour before that.
    end = int(time.time()) // STEP * STEP - 2 * HOUR
    incident_end = end - HOUR
    incident_start = incident_end - INCIDENT
    text, sli = sli_history(end, incident_start, incident_end)
    prom = Prometheus(tmp_path_factory.mktemp("prometheus"))
    # 2 series x 44,641 samples: promtool reads the whole input once per block it makes, so
    # week-long blocks (0.6 s here) rather than day-long ones (4.4 s).
    prom.backfill(text, max_block_duration="168h")
    async with prom:
        yield World(prom, sli, _at(incident_start), _at(incident_end))


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


@pytest.fixture
def logs() -> Iterator[list[structlog.typing.EventDict]]:
    with structlog.testing.capture_logs() as captured:
        yield captured


async def test_the_worked_example(world: World, logs: list[structlog.typing.EventDict]) -> None:
    measured = await measure_incident(CHECKOUT, world.url, world.start, world.end)
    sli, start, end, period = world.sli, _seconds(world.start), _seconds(world.end), 30 * DAY

    assert measured.queries == (
        'sum(rate(http_requests_total{service="checkout",code=~"5.."}[2700s]))',
        'sum(rate(http_requests_total{service="checkout"}[2700s]))',
        'avg_over_time((sum(rate(http_requests_total{service="checkout"}[1h])))[2592000s:1h])',
        'avg_over_time((sum(rate(http_requests_total{service="checkout",code=~"5.."}[1h])))'
        "[2592000s:1h])",
        'avg_over_time((sum(rate(http_requests_total{service="checkout"}[1h])))[2592000s:1h])',
    )

    # What Prometheus must answer about these samples: exact differences of samples.
    bad = sli.errors[end] - sli.errors[start]
    total = sli.totals[end] - sli.totals[start]
    in_period = sli.average(sli.totals, end, period, HOUR, HOUR) * period
    before = sli.average(sli.errors, start, period, HOUR, HOUR) / sli.average(
        sli.totals, start, period, HOUR, HOUR
    )
    consumed = budget_consumed_events(
        measured.bad_events, measured.total_events_in_period, CHECKOUT
    )
    expected_consumed = budget_consumed_events(bad, in_period, CHECKOUT)
    print(
        f"\nmeasured: bad {measured.bad_events:,.0f} (expected {bad:,.0f}), total "
        f"{measured.total_events:,.0f} ({total:,.0f}), error ratio {measured.error_ratio:.6f} "
        f"({bad / total:.6f}), in period {measured.total_events_in_period:,.0f} "
        f"({in_period:,.0f}), budget consumed {consumed:.4%} ({expected_consumed:.4%}), "
        f"error ratio before {measured.error_ratio_before:.6f} ({before:.6f})"
    )
    assert measured.bad_events == pytest.approx(bad, rel=1e-6)
    assert measured.total_events == pytest.approx(total, rel=1e-6)
    assert measured.total_events_in_period == pytest.approx(in_period, rel=1e-6)
    assert measured.error_ratio_before == pytest.approx(before, rel=1e-6)

    # The worked example's round numbers. The window holds exactly the incident's requests:
    # 972,000 bad of 3,240,000. The period's events are 1,000 rps for 30 days (the daily cycle
    # averages out over whole days; the period's hourly points start on whichever hour) plus
    # the incident's extra traffic: within 0.1 %, which moves 37.5 % by under 0.05 points.
    assert measured.error_ratio == pytest.approx(INCIDENT_ERRORS, rel=1e-6)
    assert measured.bad_events == pytest.approx(0.3 * 1200 * 2700, rel=0.02)
    assert measured.total_events_in_period == pytest.approx(AVERAGE_RPS * period, rel=0.02)
    assert consumed == pytest.approx(expected_consumed, rel=1e-6)
    assert consumed == pytest.approx(0.375, abs=0.01)
    assert measured.error_ratio_before == pytest.approx(BACKGROUND_ERRORS, rel=1e-6)
    assert measured.duration == timedelta(seconds=INCIDENT)

    [event] = [e for e in logs if e["event"] == "slo incident measured"]
    assert event["slo_id"] == "checkout-availability"
    assert event["bad_events"] == measured.bad_events
    assert event["budget_consumed"] == pytest.approx(consumed)


async def test_fixed_window_queries_are_averaged_with_subqueries(world: World) -> None:
    measured = await measure_incident(FIXED, world.url, world.start, world.end)
    sli, start, end, period = world.sli, _seconds(world.start), _seconds(world.end), 30 * DAY

    errors = 'sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m]))'
    total = 'sum(rate(http_requests_total{service="checkout"}[5m]))'
    assert measured.queries == (
        f"avg_over_time(({errors})[2700s:60s])",
        f"avg_over_time(({total})[2700s:60s])",
        f"avg_over_time(({total})[2592000s:1h])",
        f"avg_over_time(({errors})[2592000s:1h])",
        f"avg_over_time(({total})[2592000s:1h])",
    )
    bad = sli.average(sli.errors, end, INCIDENT, STEP, FIXED_WINDOW) * INCIDENT
    in_period = sli.average(sli.totals, end, period, HOUR, FIXED_WINDOW) * period
    exact_bad = sli.errors[end] - sli.errors[start]
    print(
        f"\nfixed [5m]: bad {measured.bad_events:,.0f} (expected {bad:,.0f}; the window holds "
        f"{exact_bad:,.0f}), error ratio {measured.error_ratio:.4f}, in period "
        f"{measured.total_events_in_period:,.0f} ({in_period:,.0f})"
    )
    assert measured.bad_events == pytest.approx(bad, rel=1e-6)
    assert measured.total_events_in_period == pytest.approx(in_period, rel=1e-6)

    # About the same as with {{window}}, but lagging: each point looks back 5 minutes, so the
    # first points of the window still see the time before the incident (and the incident's
    # last minutes are never looked back on from after it). The shortfall is under
    # 5m / 45m = 11 %. Here: 46 points, 41 of them wholly in the incident and 4 ramping up.
    lag = FIXED_WINDOW / INCIDENT
    assert (1 - lag) * exact_bad < measured.bad_events < exact_bad
    assert measured.error_ratio == pytest.approx(INCIDENT_ERRORS, rel=lag)
    # The period's hourly points each see only their last 5 minutes of the daily cycle:
    # still 1,000 rps on average, within 0.1 %.
    assert measured.total_events_in_period == pytest.approx(AVERAGE_RPS * period, rel=0.02)
    assert measured.error_ratio_before == pytest.approx(BACKGROUND_ERRORS, rel=1e-6)


async def test_a_period_longer_than_the_data_is_averaged_not_summed(world: World) -> None:
    # 60 days of period, 31 of data: the average traffic where there is data, times 60 days.
    # Summing instead would count 29 days of no traffic and double the budget consumed.
    slo = CHECKOUT.model_copy(update={"period": timedelta(days=60)})
    measured = await measure_incident(slo, world.url, world.start, world.end)
    period = 60 * DAY
    # The hourly point whose hour starts before the data is extrapolated by rate() from less
    # than an hour of samples; one of about 740 points: well within 1 %.
    expected = world.sli.average(world.sli.totals, _seconds(world.end), period, HOUR, HOUR)
    assert measured.total_events_in_period == pytest.approx(expected * period, rel=0.01)
    assert measured.total_events_in_period == pytest.approx(AVERAGE_RPS * period, rel=0.02)


async def test_a_query_that_returns_two_series_fails(world: World) -> None:
    by_code = 'sum by (code) (rate(http_requests_total{service="checkout"}[{{window}}]))'
    slo = CHECKOUT.model_copy(update={"total_query": by_code})
    with pytest.raises(MeasurementFailed) as failed:
        await measure_incident(slo, world.url, world.start, world.end)
    rendered = by_code.replace("{{window}}", "2700s")
    assert failed.value.query == rendered
    assert failed.value.reason.startswith("the query returned 2 series, not one")
    assert str(failed.value).endswith(f"(query: {rendered})")


async def test_unreachable_prometheus_fails_quickly() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    began = time.monotonic()
    with pytest.raises(MeasurementFailed) as failed:
        await measure_incident(CHECKOUT, url, _at(1_700_000_000), _at(1_700_002_700))
    assert time.monotonic() - began < 2
    assert failed.value.reason == f"could not reach Prometheus at {url}: connection refused"
    assert failed.value.query == ERRORS.replace("{{window}}", "2700s")


async def test_malformed_promql_fails_with_prometheus_own_words(world: World) -> None:
    broken = 'sum(rate(http_requests_total{service="checkout"}[{{window}}])'
    slo = CHECKOUT.model_copy(update={"error_query": broken})
    with pytest.raises(MeasurementFailed) as failed:
        await measure_incident(slo, world.url, world.start, world.end)
    print(f"\nmalformed: {failed.value}")
    assert failed.value.reason.startswith(
        'Prometheus answered 400 bad_data: invalid parameter "query": 1:'
    )
    assert "parse error" in failed.value.reason
    assert failed.value.query == broken.replace("{{window}}", "2700s")


async def test_no_traffic_data_fails(world: World) -> None:
    slo = CHECKOUT.model_copy(
        update={
            "error_query": ERRORS.replace("checkout", "nowhere"),
            "total_query": TOTAL.replace("checkout", "nowhere"),
        }
    )
    with pytest.raises(MeasurementFailed) as failed:
        await measure_incident(slo, world.url, world.start, world.end)
    # No errors recorded is fine (0); no traffic is not.
    assert failed.value.query == TOTAL.replace("checkout", "nowhere").replace("{{window}}", "2700s")
    assert failed.value.reason == (
        f"no traffic data between {world.start.isoformat()} and {world.end.isoformat()}: "
        "the query returned no series"
    )


async def test_what_no_prometheus_can_answer_is_a_value_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    start = _at(1_700_000_000)
    no_queries = "SLO 'checkout-availability' has no SLI queries: total_query empty"
    with pytest.raises(ValueError, match=no_queries):
        await measure_incident(CHECKOUT.model_copy(update={"total_query": ""}), url, start, start)
    with pytest.raises(ValueError, match="must be before end"):
        await measure_incident(CHECKOUT, url, start, start)
    with pytest.raises(ValueError, match="timezone"):
        naive = start.replace(tzinfo=None)
        await measure_incident(CHECKOUT, url, naive, naive + timedelta(hours=1))
