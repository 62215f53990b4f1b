"""The Prometheus fixture works: a real Prometheus scrapes our target, evaluates our rules,
reports malformed PromQL itself, and serves backfilled history older than the server.

Run with -n 0 -s to see the measured start-up timings (see tests/servers/prometheus.py's docstring).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.servers.metrics_target import MetricsTarget
from tests.servers.prometheus import (
    JOB,
    Prometheus,
    PrometheusError,
    openmetrics_family,
    result_values,
)

WAIT = 30.0

RULES = """
groups:
  - name: checkout-slo
    rules:
      - record: service:http_error_ratio:rate5s
        expr: |
          sum by (service) (rate(http_requests_total{code="500"}[5s]))
          /
          sum by (service) (rate(http_requests_total[5s]))
      - alert: CheckoutErrorRatioHigh
        expr: service:http_error_ratio:rate5s{service="checkout"} > 0.1
        labels:
          severity: page
        annotations:
          summary: "checkout error ratio {{ $value }}"
"""


def _rules_by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    groups = data["groups"]
    assert isinstance(groups, list)
    return {rule["name"]: rule for group in groups for rule in group["rules"]}


async def test_scrape_instant_query_rate_and_rules(tmp_path: Path) -> None:
    with MetricsTarget(service="checkout") as target:
        target.add(ok=7, errors=2)  # already there at the first scrape
        async with Prometheus(tmp_path, scrape_targets=[target.address], rules_yaml=RULES) as prom:
            ready = prom.since_start()

            # Rules: both listed with the right type; evaluated ("ok") within a second or so.
            rules = await prom.wait_rules_evaluated(timeout=WAIT)
            rules_ok = prom.since_start()
            by_name = _rules_by_name(rules)
            assert set(by_name) == {"service:http_error_ratio:rate5s", "CheckoutErrorRatioHigh"}
            assert by_name["service:http_error_ratio:rate5s"]["type"] == "recording"
            alert = by_name["CheckoutErrorRatioHigh"]
            assert alert["type"] == "alerting"
            assert alert["labels"] == {"severity": "page"}
            assert alert["state"] == "inactive"
            assert [g["file"] for g in rules["groups"]] == [str(prom.rules_path)]
            assert (await prom.rules(type="alert"))["groups"][0]["rules"][0]["name"] == (
                "CheckoutErrorRatioHigh"
            )

            # The target is scraped: up == 1 and the counters are there, as the target has them.
            await prom.wait_for(f'up{{job="{JOB}"}} == 1', timeout=WAIT, interval=0.05)
            first_sample = prom.since_start()
            targets = await prom.targets()
            assert [t["health"] for t in targets["activeTargets"]] == ["up"]
            assert targets["activeTargets"][0]["scrapeUrl"] == target.url

            data = await prom.wait_for(
                'http_requests_total{service="checkout"}',
                lambda result: len(result) == 2,
                timeout=WAIT,
            )
            assert data["resultType"] == "vector"
            values = {dict(labels)["code"]: value for labels, value in result_values(data).items()}
            assert values == {"200": 7.0, "500": 2.0}
            series = data["result"][0]["metric"]
            assert series["job"] == JOB and series["instance"] == target.address

            # rate() needs two samples in its window: one scrape later.
            await prom.wait_for("rate(http_requests_total[5s])", timeout=WAIT, interval=0.05)
            first_rate = prom.since_start()

            # The error ratio goes up: the recording rule follows and the alert fires ...
            target.add(ok=10, errors=90)
            await prom.wait_for(
                'service:http_error_ratio:rate5s{service="checkout"} > 0.5', timeout=WAIT
            )
            await prom.wait_for(
                'ALERTS{alertname="CheckoutErrorRatioHigh", alertstate="firing"}', timeout=WAIT
            )
            firing = _rules_by_name(await prom.rules())["CheckoutErrorRatioHigh"]
            assert firing["state"] == "firing"
            assert firing["alerts"][0]["labels"]["service"] == "checkout"

            # ... and down again once only good requests come in (the 5s window moves on).
            target.add(ok=1000)
            await prom.wait_for(
                'service:http_error_ratio:rate5s{service="checkout"} < 0.1', timeout=WAIT
            )

    print(
        f"\nPrometheus timings from spawn: ready {ready:.2f}s, rules ok {rules_ok:.2f}s, "
        f"first sample {first_sample:.2f}s, first rate() {first_rate:.2f}s"
    )


async def test_malformed_promql_is_reported_by_prometheus(tmp_path: Path) -> None:
    async with Prometheus(tmp_path) as prom:
        with pytest.raises(PrometheusError) as caught:
            await prom.query("sum(rate(http_requests_total[5m])")
        assert caught.value.status_code == 400
        assert caught.value.error_type == "bad_data"
        assert 'invalid parameter "query"' in caught.value.error

        with pytest.raises(PrometheusError) as ranged:
            await prom.query_range("rate(x[5m]) by (", time.time() - 60, time.time(), "15s")
        assert (ranged.value.status_code, ranged.value.error_type) == (400, "bad_data")

        # The raw answer, untouched, as a check that reports Prometheus's words would see it.
        response = await prom.get("/api/v1/query", query="up{")
        assert response.status_code == 400
        body = response.json()
        assert body["status"] == "error"
        assert body["errorType"] == "bad_data"
        assert body["error"].startswith('invalid parameter "query": 1:')

        # wait_for does not poll a query that can never succeed.
        started = time.monotonic()
        with pytest.raises(PrometheusError):
            await prom.wait_for("up{", timeout=WAIT)
        assert time.monotonic() - started < 5


async def test_reload_rejects_a_bad_rule_file_and_keeps_the_old_rules(tmp_path: Path) -> None:
    async with Prometheus(tmp_path, rules_yaml=RULES) as prom:
        await prom.wait_rules_evaluated(timeout=WAIT)
        bad = RULES.replace("> 0.1", "> > 0.1")
        with pytest.raises(PrometheusError) as caught:
            await prom.reload(rules_yaml=bad)
        assert caught.value.status_code == 500
        assert "failed to reload config" in caught.value.error
        assert "could not parse expression" in caught.value.error
        assert set(_rules_by_name(await prom.rules())) == {
            "service:http_error_ratio:rate5s",
            "CheckoutErrorRatioHigh",
        }


async def test_backfilled_history_older_than_the_server(tmp_path: Path) -> None:
    """Seven days of synthetic SLI history, with a one-hour incident two days ago."""
    step = 60.0
    end = time.time() - 10 * 60  # all of it older than the 5m lookback: history only
    start = end - 7 * 86400
    incident_start = end - 2 * 86400
    incident_end = incident_start + 3600
    ok: list[tuple[float, float]] = []
    errors: list[tuple[float, float]] = []
    good = bad = 0.0
    moment = start
    while moment <= end:
        incident = incident_start < moment <= incident_end
        good += 90 if incident else 100
        bad += 10 if incident else 0
        ok.append((moment, good))
        errors.append((moment, bad))
        moment += step
    history = openmetrics_family(
        "sli_requests_total",
        "counter",
        [
            ({"service": "checkout", "code": "200"}, ok),
            ({"service": "checkout", "code": "500"}, errors),
        ],
        help_text="Synthetic SLI history.",
    )

    prom = Prometheus(tmp_path)
    began = time.monotonic()
    blocks = prom.backfill(history)
    backfill_took = time.monotonic() - began
    assert "BLOCK ULID" in blocks
    async with prom:
        with pytest.raises(RuntimeError, match="before Prometheus starts"):
            prom.backfill(history)

        # A 7-day range query over history entirely older than the server.
        data = await prom.query_range(
            'sum(sli_requests_total{service="checkout"})', start, end, "1h"
        )
        assert data["resultType"] == "matrix"
        points = data["result"][0]["values"]
        assert len(points) == 7 * 24 + 1
        assert float(points[0][0]) == pytest.approx(start)
        assert float(points[-1][1]) == pytest.approx(good + bad)

        # "Must hold for 7 days": the 7-day error ratio, evaluated at the end of the history.
        seven_days = await prom.query(
            'sum(increase(sli_requests_total{code="500"}[7d]))'
            " / sum(increase(sli_requests_total[7d]))",
            at=end,
        )
        ratio = float(seven_days["result"][0]["value"][1])
        assert ratio == pytest.approx(600 / (7 * 86400 / step * 100), rel=0.02)

        # The incident's error budget burnt over its impact window: 10% errors for an hour.
        window = await prom.query(
            'sum(increase(sli_requests_total{code="500"}[1h]))'
            " / sum(increase(sli_requests_total[1h]))",
            at=incident_end,
        )
        assert float(window["result"][0]["value"][1]) == pytest.approx(0.1, rel=0.02)

        # Now, the history is older than the lookback: an instant query finds nothing.
        assert (await prom.query("sli_requests_total"))["result"] == []

    print(f"\nbackfill of 7 days x 2 series at 1/min: {backfill_took:.2f}s")
