"""Every kind of acceptance-criterion check, run for real against servers on loopback.

http_check against a local HTTP server; prometheus_query and alert_rule_present against a real
Prometheus (Debian's package: tests/servers/prometheus.py) holding seven days of backfilled SLI
history with a one-hour incident, and scraping two live targets; ticket_resolved against
tests/servers/jira_server.py through the `jira` library. No mocks: a failing target is a failed
result whose asked/answer/reason say what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog
from temporalio.testing import ActivityEnvironment

from activities.checks import CheckActivities
from followthrough.checks import CheckConfig, preflight_problems, run_check
from followthrough.checks.prometheus import RANGE_POINTS, range_step
from followthrough.domain.checks import EVIDENCE_LIMIT, CheckRequest, CheckResult
from followthrough.domain.criteria import (
    AlertRulePresent,
    HttpCheck,
    Manual,
    PrometheusQuery,
    TicketResolved,
)
from followthrough.domain.outbound import OutboundPolicy
from followthrough.settings import Settings
from tests.api_support import LOOPBACK_HOSTS
from tests.processes import free_port
from tests.servers.jira_server import JiraServer
from tests.servers.metrics_target import MetricsTarget
from tests.servers.prometheus import Prometheus, openmetrics_family

WAIT = 30.0

# --------------------------------------------------------------------------------------------
# http_check against a local HTTP server
# --------------------------------------------------------------------------------------------

HEALTH = {
    "status": "green",
    "ready": True,
    "count": 2,
    "checks": [{"name": "db", "state": "ok"}, {"name": "cache", "state": "degraded"}],
}


class _Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        routes: dict[str, tuple[int, str, str]] = {
            "/ok": (200, "text/plain", "all good: checkout v42"),
            "/health": (200, "application/json", json.dumps(HEALTH)),
            "/fail": (500, "text/plain", "boom: database unavailable"),
            "/unavailable": (503, "text/html", "<h1>Service Unavailable</h1>"),
            "/login": (200, "text/html", "<form>sign in</form>"),
            "/big": (200, "text/plain", "x" * 50_000 + " needle"),
        }
        if self.path == "/slow":
            time.sleep(3)
        if self.path == "/moved":
            self._send(302, "text/plain", "", {"Location": "/login"})
            return
        if self.path.startswith("/down/"):  # a whole site answering 503, e.g. a proxy
            self._send(503, "text/html", "<h1>Service Unavailable</h1>")
            return
        status, kind, body = routes.get(self.path, (404, "text/plain", "no such page"))
        self._send(status, kind, body)

    def _send(
        self, status: int, kind: str, body: str, headers: dict[str, str] | None = None
    ) -> None:
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _now() -> datetime:
    return datetime.now(UTC)


# The servers here listen on loopback, which checks may call only when it is listed.
LOOPBACK = OutboundPolicy(allowed_hosts=LOOPBACK_HOSTS)


async def _http(**fields: Any) -> CheckResult:
    return await run_check(HttpCheck(**fields), CheckConfig(outbound=LOOPBACK), _now())


async def test_http_status_and_body(site: str) -> None:
    ok = await _http(url=f"{site}/ok", body_contains="checkout v42")
    assert ok.passed
    assert ok.asked == f"GET {site}/ok (timeout 10s, redirects not followed)"
    assert ok.answer.startswith("HTTP/1.1 200 OK\ncontent-type: text/plain; charset=utf-8\n\n")
    assert ok.answer.endswith("all good: checkout v42")
    assert ok.reason == "200 as expected; the body contains 'checkout v42'"
    assert ok.at.tzinfo is not None

    missing = await _http(url=f"{site}/ok", body_contains="v43")
    assert not missing.passed
    assert missing.reason == "200 as expected, but the body does not contain 'v43'"

    # The body is kept trimmed as evidence, but searched in full.
    big = await _http(url=f"{site}/big", body_contains="needle")
    assert big.passed
    assert len(big.answer) <= EVIDENCE_LIMIT and big.answer.endswith("chars)")


async def test_http_json_path(site: str) -> None:
    url = f"{site}/health"
    assert (await _http(url=url, json_path="status", json_equals="green")).passed
    nested = await _http(url=url, json_path="checks[1].state", json_equals="degraded")
    assert nested.passed and nested.reason == '200 as expected; checks[1].state is "degraded"'
    assert (await _http(url=url, json_path="count", json_equals=2.0)).passed  # 2 == 2.0 in JSON

    wrong = await _http(url=url, json_path="checks[0].state", json_equals="degraded")
    assert not wrong.passed
    assert wrong.reason == '200 as expected, but checks[0].state is "ok", not "degraded"'
    assert '"checks"' in wrong.answer

    # true is not 1, and "2" is not 2: JSON's types, not Python's.
    assert not (await _http(url=url, json_path="ready", json_equals=1)).passed
    assert not (await _http(url=url, json_path="count", json_equals="2")).passed

    absent = await _http(url=url, json_path="checks[5].state", json_equals="ok")
    assert not absent.passed
    assert absent.reason.endswith("checks[5].state is not in the JSON: checks has 2 items, no [5]")
    nokey = await _http(url=url, json_path="status.code", json_equals=1)
    assert nokey.reason.endswith("status is a string, no key 'code'")

    not_json = await _http(url=f"{site}/ok", json_path="status", json_equals="green")
    assert not not_json.passed
    assert "the body is not JSON" in not_json.reason


async def test_http_server_errors_and_redirects(site: str) -> None:
    failed = await _http(url=f"{site}/fail")
    assert not failed.passed
    assert failed.reason == "500 where 200 was expected"
    assert failed.answer.startswith("HTTP/1.1 500 Internal Server Error")
    assert "boom: database unavailable" in failed.answer

    unavailable = await _http(url=f"{site}/unavailable", body_contains="x")
    assert unavailable.reason == "503 where 200 was expected"

    # A 500 can be what the criterion expects (e.g. a kill switch answers it).
    assert (await _http(url=f"{site}/fail", expect_status=500, body_contains="boom")).passed

    # Redirects are not followed: a login redirect does not pass as 200 ...
    moved = await _http(url=f"{site}/moved")
    assert not moved.passed
    assert moved.reason == (
        "302 where 200 was expected (a redirect to /login; redirects are not followed)"
    )
    assert "location: /login" in moved.answer
    # ... and a redirect can itself be checked.
    assert (await _http(url=f"{site}/moved", expect_status=302)).passed


async def test_http_timeout_and_connection_refused(site: str) -> None:
    started = time.monotonic()
    slow = await _http(url=f"{site}/slow", timeout_seconds=0.5)
    assert time.monotonic() - started < 2.5
    assert not slow.passed
    assert slow.reason == "no answer within 0.5s (the timeout)"
    assert slow.asked == f"GET {site}/slow (timeout 0.5s, redirects not followed)"
    assert slow.answer == ""

    # https:// to a plain-HTTP server: the TLS handshake fails, and the reason says so.
    tls = await _http(url=site.replace("http://", "https://") + "/ok")
    assert not tls.passed
    assert tls.reason.startswith(f"could not connect to {site.removeprefix('http://')}: ")
    assert "the TLS handshake failed (WRONG_VERSION_NUMBER)" in tls.reason

    port = free_port()  # nothing listens there
    refused = await _http(url=f"http://127.0.0.1:{port}/healthz")
    assert not refused.passed
    assert refused.reason == f"could not connect to 127.0.0.1:{port}: connection refused"


# --------------------------------------------------------------------------------------------
# prometheus_query and alert_rule_present against a real Prometheus
# --------------------------------------------------------------------------------------------

CHECKOUT = (
    'sum(rate(sli_requests_total{service="checkout", code="500"}[5m]))'
    ' / sum(rate(sli_requests_total{service="checkout"}[5m]))'
)
SEARCH = CHECKOUT.replace("checkout", "search")
BY_SERVICE = (
    'sum by (service) (rate(sli_requests_total{code="500"}[5m]))'
    " / sum by (service) (rate(sli_requests_total[5m]))"
)
LIVE = (
    'sum by (service) (increase(http_requests_total{code="500"}[1m]))'
    " / sum by (service) (increase(http_requests_total[1m]))"
)
RULES = f"""
groups:
  - name: checkout-slo
    rules:
      - alert: CheckoutErrorRatioHigh
        expr: {CHECKOUT} > 0.02
        for: 5m
        labels:
          severity: page
          team: payments
      - alert: SearchErrorRatioHigh
        expr: {SEARCH} > 0.05
        labels:
          severity: ticket
  - name: broken
    rules:
      - alert: BrokenJoin
        expr: sli_requests_total + on() sli_requests_total
        labels:
          severity: page
"""
STEP = 60.0  # one sample a minute in the history


@dataclass
class World:
    prom: Prometheus
    end: float  # the last backfilled sample (just before Prometheus started)
    incident_start: float  # search served 10% errors for an hour, two days ago
    incident_end: float
    live: tuple[MetricsTarget, MetricsTarget]  # scraped: services "payments" and "ledger"

    @property
    def config(self) -> CheckConfig:
        return CheckConfig(prometheus_url=self.prom.base_url)


def _history(end: float) -> tuple[str, float, float]:
    """Seven days and a quarter of an hour of SLI counters for checkout and search: 0.5% errors,
    except one hour two days ago when search answered 10% errors."""
    start = end - 7 * 86400 - 15 * 60
    incident_start = end - 2 * 86400
    incident_end = incident_start + 3600
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    totals: dict[tuple[str, str], float] = {}
    moment = start
    while moment <= end:
        for service in ("checkout", "search"):
            incident = service == "search" and incident_start < moment <= incident_end
            for code, amount in (("200", 180 if incident else 199), ("500", 20 if incident else 1)):
                key = (service, code)
                totals[key] = totals.get(key, 0.0) + amount
                series.setdefault(key, []).append((moment, totals[key]))
        moment += STEP
    text = openmetrics_family(
        "sli_requests_total",
        "counter",
        [({"service": s, "code": c}, samples) for (s, c), samples in series.items()],
    )
    return text, incident_start, incident_end


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    with MetricsTarget(service="payments") as payments, MetricsTarget(service="ledger") as ledger:
        prom = Prometheus(
            tmp_path_factory.mktemp("prometheus"),
            scrape_targets=[payments.address, ledger.address],
            rules_yaml=RULES,
        )
        end = time.time() - 5
        history, incident_start, incident_end = _history(end)
        prom.backfill(history)
        async with prom:
            yield World(prom, end, incident_start, incident_end, (payments, ledger))


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


async def _query(world: World, now: datetime | None = None, **fields: Any) -> CheckResult:
    criterion = PrometheusQuery(**{"op": "<", "threshold": 0.02, **fields})
    return await run_check(criterion, world.config, now or _now())


async def test_instant_query_below_and_above_the_threshold(world: World) -> None:
    now = _now()
    ok = await _query(world, now, query=CHECKOUT)
    assert ok.passed, ok.reason
    assert ok.asked == (
        f"{CHECKOUT} < 0.02: instant query to {world.prom.base_url}/api/v1/query at {_iso(now)}"
    )
    assert ok.reason == f"0.005 is < 0.02 at {_iso(now)}"
    assert ok.answer == "{} 0.005"

    # The same query asked about a moment in the incident: search was at 10%.
    during = _at(world.incident_start + 1800)
    high = await _query(world, during, query=SEARCH)
    assert not high.passed
    assert high.reason == f"0.1 is not < 0.02 at {_iso(during)}"
    assert high.answer == "{} 0.1"

    # NaN (0/0: a ratio without traffic) satisfies no comparison, and the reason says why.
    no_traffic = (
        'sum(rate(sli_requests_total{service="checkout", code="500"}[5m])) * 0'
        ' / (sum(rate(sli_requests_total{service="checkout"}[5m])) * 0)'
    )  # 0 errors / 0 requests
    nan = await _query(world, now, query=no_traffic)
    assert not nan.passed
    assert nan.reason == (
        f"NaN is not < 0.02 at {_iso(now)} (NaN satisfies no comparison: 0/0, e.g. a ratio "
        "with no traffic, is NaN)"
    )

    # A scalar result is one value.
    scalar = await _query(world, now, query=f"scalar({CHECKOUT})", op="<=", threshold=0.005)
    assert scalar.passed and scalar.reason == f"0.005 is <= 0.005 at {_iso(now)}"


async def test_several_series_must_all_satisfy(world: World) -> None:
    now = _now()
    calm = await _query(world, now, query=BY_SERVICE)
    assert calm.passed
    assert calm.reason == f"all 2 series are < 0.02 at {_iso(now)}"
    assert calm.answer == '{service="checkout"} 0.005\n{service="search"} 0.005'

    during = _at(world.incident_start + 1800)
    incident = await _query(world, during, query=BY_SERVICE)
    assert not incident.passed
    assert incident.reason == (
        f'1 of 2 series are not < 0.02 at {_iso(during)}: {{service="search"}} 0.1'
    )


async def test_no_series_and_a_range_vector_fail_with_reasons(world: World) -> None:
    empty = await _query(world, query='sli_requests_total{service="nope"}')
    assert not empty.passed
    assert empty.reason.startswith("the query returned no series at ")
    assert empty.answer == "(empty result)"

    matrix = await _query(world, query="sli_requests_total[5m]")
    assert not matrix.passed
    assert matrix.reason.startswith("the query returns a range vector (matrix)")


async def test_hold_for_every_point_of_a_week(world: World) -> None:
    now = _now()
    step = range_step(timedelta(days=7))
    assert step == 300 and 7 * 86400 // step == RANGE_POINTS

    held = await _query(world, now, query=CHECKOUT, hold_for="7d")
    assert held.passed, held.reason
    start = now - timedelta(days=7)
    assert held.asked == (
        f"{CHECKOUT} < 0.02 at every point of the last 7d: range query to "
        f"{world.prom.base_url}/api/v1/query_range from {_iso(start)} to {_iso(now)}, step 300s"
    )
    assert held.reason == (
        "every point was < 0.02: 2017 points in the last 7d, step 300s (highest 0.005)"
    )
    assert held.answer.startswith("{}: 2017 points from ")

    # Search had its incident two days ago: some points of the week break the threshold ...
    broken = await _query(world, now, query=SEARCH, hold_for="7d")
    assert not broken.passed
    match = re.fullmatch(
        r"the value was not < 0\.02 at (\d+) of 2017 points in the last 7d; "
        r"first at (\S+) \((\S+)\)",
        broken.reason,
    )
    assert match, broken.reason
    # An hour of 10% errors, plus the 5 minutes rate()'s window trails it: ~13 points of 5m.
    assert 11 <= int(match.group(1)) <= 14
    first = datetime.fromisoformat(match.group(2)).timestamp()
    assert world.incident_start < first <= world.incident_start + 2 * 300
    assert float(match.group(3)) >= 0.02
    assert "first not < 0.02 at" in broken.answer

    # ... but not the last day.
    assert (await _query(world, now, query=SEARCH, hold_for="1d")).passed

    # Both services: the series that broke it is named.
    both = await _query(world, now, query=BY_SERVICE, hold_for="7d")
    assert not both.passed
    assert "points in the last 7d (in 1 of 2 series); first at " in both.reason
    assert '({service="search"} ' in both.reason
    assert both.answer.count("points from") == 2


async def test_hold_for_longer_than_the_data_is_a_gap(world: World) -> None:
    now = _now()
    gap = await _query(world, now, query=CHECKOUT, hold_for="8d")
    assert not gap.passed
    step = range_step(timedelta(days=8))
    assert f"step {step}s" in gap.asked
    match = re.fullmatch(
        r"no value at (\d+) of (\d+) points in the last 8d \(first gap at (\S+); the data starts "
        r"at (\S+)\): the query must have a value all the time",
        gap.reason,
    )
    assert match, gap.reason
    assert int(match.group(2)) == 8 * 86400 // step + 1
    # The history starts 7d 15m before its end; rate() needs two samples: a minute later.
    assert 0.9 * 86400 / step < int(match.group(1)) < 1.1 * 86400 / step
    assert match.group(3) == _iso(now - timedelta(days=8))


async def test_malformed_promql_fails_with_prometheus_own_words(world: World) -> None:
    bad = await _query(world, query="sum(rate(sli_requests_total[5m])")
    assert not bad.passed
    assert bad.reason.startswith('Prometheus answered 400 bad_data: invalid parameter "query": 1:')
    assert bad.answer.startswith("HTTP 400\n")
    assert '"errorType":"bad_data"' in bad.answer

    ranged = await _query(world, query="rate(x[5m]) by (", hold_for="1h")
    assert not ranged.passed
    assert ranged.reason == "Prometheus answered 400 bad_data: 1:13: parse error: unexpected <by>"


async def test_unreachable_or_unconfigured_prometheus_fails_with_a_reason(
    world: World, site: str
) -> None:
    port = free_port()
    closed = CheckConfig(prometheus_url=f"http://127.0.0.1:{port}", outbound=LOOPBACK)
    criterion = PrometheusQuery(query=CHECKOUT, op="<", threshold=0.02)
    refused = await run_check(criterion, closed, _now())
    assert not refused.passed
    assert refused.reason == (
        f"could not reach Prometheus at http://127.0.0.1:{port}: connection refused"
    )
    assert f"http://127.0.0.1:{port}/api/v1/query" in refused.asked

    # The criterion's own URL wins over the default.
    named = criterion.model_copy(update={"prometheus_url": world.prom.base_url})
    assert (await run_check(named, closed, _now())).passed

    # Not Prometheus: a proxy's 503 page, or a 404 where the API should be.
    down = await run_check(criterion, CheckConfig(prometheus_url=f"{site}/down"), _now())
    assert not down.passed
    assert down.reason == (
        f"{site}/down/api/v1/query answered 503 Service Unavailable, not a Prometheus API answer "
        "(is the URL Prometheus's, without /api/v1?)"
    )
    assert down.answer == "HTTP 503\n<h1>Service Unavailable</h1>"
    wrong = await run_check(criterion, CheckConfig(prometheus_url=f"{site}/api/v1"), _now())
    assert f"{site}/api/v1/api/v1/query answered 404 Not Found" in wrong.reason

    nowhere = await run_check(criterion, CheckConfig(), _now())
    assert not nowhere.passed
    assert "set FOLLOWTHROUGH_PROMETHEUS_URL" in nowhere.reason

    rules = await run_check(AlertRulePresent(alert="CheckoutErrorRatioHigh"), closed, _now())
    assert not rules.passed
    assert rules.reason.endswith("connection refused")


async def test_preflight_asks_prometheus_to_parse_the_query(world: World) -> None:
    config = world.config
    good = PrometheusQuery(query=CHECKOUT, op="<", threshold=0.02)
    assert await preflight_problems(good, config) == []

    bad = PrometheusQuery(query="sum(rate(sli_requests_total[5m])", op="<", threshold=0.02)
    problems = await preflight_problems(bad, config)
    assert len(problems) == 1
    assert problems[0].startswith('query: Prometheus rejected it: invalid parameter "query": 1:')

    matrix = PrometheusQuery(query="sli_requests_total[5m]", op="<", threshold=1)
    assert (await preflight_problems(matrix, config))[0].startswith(
        "query: the query returns a range vector"
    )

    # An outage blocks no submission; it is logged.
    outage = CheckConfig(prometheus_url=f"http://127.0.0.1:{free_port()}")
    with structlog.testing.capture_logs() as logs:
        assert await preflight_problems(bad, outage) == []
    assert [entry["log_level"] for entry in logs] == ["warning"]
    assert logs[0]["reason"].endswith("connection refused")

    no_url = await preflight_problems(good, CheckConfig())
    assert no_url == [
        "prometheus_url: no Prometheus to ask: set FOLLOWTHROUGH_PROMETHEUS_URL, "
        "or prometheus_url in the criterion"
    ]
    # Nothing to ask the world about for other kinds (an alert rule may not exist yet).
    assert await preflight_problems(AlertRulePresent(alert="Nope"), config) == []
    assert await preflight_problems(Manual(description="reviewed"), config) == []


async def _rules_evaluated(world: World) -> None:
    """Every rule evaluated at least once (the broken one cannot be healthy: not wait_rules_ok)."""
    deadline = time.monotonic() + WAIT
    while True:
        data = await world.prom.rules()
        rules = [rule for group in data["groups"] for rule in group["rules"]]
        if rules and all(rule.get("health") in ("ok", "err") for rule in rules):
            return
        assert time.monotonic() < deadline, f"rules not evaluated within {WAIT:.0f}s: {data!r}"
        await asyncio.sleep(0.1)


async def test_alert_rule_present_with_labels(world: World) -> None:
    await _rules_evaluated(world)
    config = world.config
    present = await run_check(
        AlertRulePresent(alert="CheckoutErrorRatioHigh", labels={"severity": "page"}),
        config,
        _now(),
    )
    assert present.passed, present.reason
    assert present.asked == (
        f"GET {world.prom.base_url}/api/v1/rules?type=alert: alerting rule "
        'CheckoutErrorRatioHigh with labels {severity="page"}'
    )
    assert present.reason == (
        'Prometheus has the alerting rule CheckoutErrorRatioHigh with severity="page" '
        "(group checkout-slo, health ok, inactive)"
    )
    for name in ("CheckoutErrorRatioHigh", "SearchErrorRatioHigh", "BrokenJoin"):
        assert name in present.answer
    assert 'CheckoutErrorRatioHigh{severity="page", team="payments"}' in present.answer

    wrong_label = await run_check(
        AlertRulePresent(alert="SearchErrorRatioHigh", labels={"severity": "page"}),
        config,
        _now(),
    )
    assert not wrong_label.passed
    assert wrong_label.reason == (
        "the alerting rule SearchErrorRatioHigh is there (group checkout-slo), but without "
        'severity="page"; its labels: {severity="ticket"}'
    )

    absent = await run_check(AlertRulePresent(alert="CheckoutLatencyHigh"), config, _now())
    assert not absent.passed
    assert absent.reason == (
        f"Prometheus at {world.prom.base_url} has no alerting rule named CheckoutLatencyHigh; "
        "it has: BrokenJoin, CheckoutErrorRatioHigh, SearchErrorRatioHigh"
    )

    broken = await run_check(AlertRulePresent(alert="BrokenJoin"), config, _now())
    assert not broken.passed
    assert broken.reason.startswith(
        "the alerting rule BrokenJoin is there (group broken), but Prometheus fails to evaluate it"
    )
    assert "many-to-many matching not allowed" in broken.reason


async def test_live_counters_scraped_by_prometheus(world: World) -> None:
    """The error ratio of two scraped services: one below the threshold, one above."""
    payments, ledger = world.live
    prom = world.prom
    # rate()/increase() count what a counter gains between scrapes: first both series scraped.
    await prom.wait_for('http_requests_total{code="500"}', lambda r: len(r) == 2, timeout=WAIT)
    payments.add(ok=999, errors=1)
    ledger.add(ok=90, errors=10)
    await prom.wait_for(
        f"({LIVE}) > 0",
        lambda r: {s["metric"]["service"] for s in r} == {"payments", "ledger"},
        timeout=WAIT,
        interval=0.2,
    )
    now = _now()
    payments_only = LIVE.replace('code="500"', 'service="payments", code="500"').replace(
        "(http_requests_total[1m])", '(http_requests_total{service="payments"}[1m])'
    )
    fine = await _query(world, now, query=payments_only)
    assert fine.passed, fine.reason
    assert fine.answer == '{service="payments"} 0.001'

    both = await _query(world, now, query=LIVE)
    assert not both.passed
    assert both.reason == (f'1 of 2 series are not < 0.02 at {_iso(now)}: {{service="ledger"}} 0.1')
    assert '{service="payments"} 0.001' in both.answer


# --------------------------------------------------------------------------------------------
# ticket_resolved against tests/servers/jira_server.py
# --------------------------------------------------------------------------------------------

USER, TOKEN = "followthrough@example.com", "jira-token"


@pytest.fixture(scope="module")
def jira() -> Iterator[JiraServer]:
    with JiraServer(users={USER: TOKEN}) as server:
        yield server


def _jira_config(jira: JiraServer, **overrides: Any) -> CheckConfig:
    fields = {"jira_url": jira.url, "jira_user": USER, "jira_token": TOKEN, **overrides}
    return CheckConfig(**fields)


async def test_ticket_done_with_a_resolution_passes(jira: JiraServer) -> None:
    jira.add_issue("PM-1", summary="Add a canary stage", status="In Progress")
    jira.set_status("PM-1", "Done", resolution="Fixed")
    before = len(jira.requests)
    passed = await run_check(TicketResolved(ticket="PM-1"), _jira_config(jira), _now())
    assert passed.passed, passed.reason
    assert (
        passed.asked == f"GET {jira.url}/rest/api/2/issue/PM-1?fields=status,resolution (as {USER})"
    )
    assert passed.reason == "PM-1 is Done (status category done) with resolution Fixed"
    # The evidence is an excerpt of Jira's answer (the reason above carries the verdict).
    assert passed.answer.startswith('{"fields": {') and len(passed.answer) <= EVIDENCE_LIMIT
    # One request, authenticated, no serverInfo first.
    calls = jira.requests[before:]
    assert [(r.method, r.path, r.query, r.user) for r in calls] == [
        ("GET", "/rest/api/2/issue/PM-1", {"fields": ["status,resolution"]}, USER)
    ]

    jira.add_issue("PM-2", status="Won't Do", resolution="Won't Do")  # done-category too
    assert (await run_check(TicketResolved(ticket="PM-2"), _jira_config(jira), _now())).passed


async def test_ticket_not_done_fails(jira: JiraServer) -> None:
    config = _jira_config(jira)
    jira.add_issue("PM-3", status="In Progress")
    in_progress = await run_check(TicketResolved(ticket="PM-3"), config, _now())
    assert not in_progress.passed
    assert in_progress.reason == "PM-3 is In Progress (status category indeterminate), not done"

    jira.add_issue("PM-4", status="Done")  # moved to Done without a resolution
    unresolved = await run_check(TicketResolved(ticket="PM-4"), config, _now())
    assert not unresolved.passed
    assert unresolved.reason == "PM-4 is Done (status category done) but has no resolution"

    # Reopened after being resolved: the resolution goes, and so does the pass.
    jira.add_issue("PM-5", status="Done", resolution="Done")
    assert (await run_check(TicketResolved(ticket="PM-5"), config, _now())).passed
    jira.set_status("PM-5", "To Do")
    reopened = await run_check(TicketResolved(ticket="PM-5"), config, _now())
    assert reopened.reason == "PM-5 is To Do (status category new), not done"


async def test_ticket_errors_fail_with_reasons(jira: JiraServer) -> None:
    unknown = await run_check(TicketResolved(ticket="PM-404"), _jira_config(jira), _now())
    assert not unknown.passed
    assert unknown.reason == (
        f"Jira has no issue PM-404 that {USER} can see (404): "
        "Issue does not exist or you do not have permission to see it."
    )
    assert unknown.answer.startswith("HTTP 404\n")

    jira.add_issue("PM-6", status="Done", resolution="Fixed")
    bad_token = await run_check(
        TicketResolved(ticket="PM-6"), _jira_config(jira, jira_token="wrong"), _now()
    )
    assert not bad_token.passed
    assert bad_token.reason == (
        f"Jira refused the credentials of {USER} (401): check FOLLOWTHROUGH_JIRA_USER and "
        "FOLLOWTHROUGH_JIRA_TOKEN. Jira said: You are not authenticated. Authentication "
        "required to perform this operation."
    )

    port = free_port()
    down = await run_check(
        TicketResolved(ticket="PM-6"),
        _jira_config(jira, jira_url=f"http://127.0.0.1:{port}"),
        _now(),
    )
    assert not down.passed
    assert down.reason == f"could not reach Jira at http://127.0.0.1:{port}: connection refused"


async def test_ticket_without_jira_or_a_ticket_fails_with_reasons(jira: JiraServer) -> None:
    unconfigured = await run_check(TicketResolved(ticket="PM-1"), CheckConfig(), _now())
    assert not unconfigured.passed
    assert unconfigured.reason == (
        "Jira is not configured: set FOLLOWTHROUGH_JIRA_URL, FOLLOWTHROUGH_JIRA_USER, "
        "FOLLOWTHROUGH_JIRA_TOKEN (FOLLOWTHROUGH_JIRA_URL, FOLLOWTHROUGH_JIRA_USER, "
        "FOLLOWTHROUGH_JIRA_TOKEN unset)"
    )
    no_token = await run_check(
        TicketResolved(ticket="PM-1"), _jira_config(jira, jira_token=None), _now()
    )
    assert no_token.reason.endswith("(FOLLOWTHROUGH_JIRA_TOKEN unset)")

    no_ticket = await run_check(TicketResolved(), _jira_config(jira), _now())
    assert not no_ticket.passed
    assert no_ticket.reason.startswith("the criterion names no ticket")


# --------------------------------------------------------------------------------------------
# the activity, the settings, and what is not run
# --------------------------------------------------------------------------------------------


async def test_the_activity_runs_the_check(site: str) -> None:
    activities = CheckActivities(CheckConfig(outbound=LOOPBACK))
    request = CheckRequest(
        action_item_id="PM-2026-001/1",
        attempt=3,
        criterion=HttpCheck(url=f"{site}/health", json_path="status", json_equals="green"),
    )
    before = _now()
    result = await ActivityEnvironment().run(activities.run_check, request)
    assert result.passed
    assert before <= result.at <= _now()
    failing = request.model_copy(update={"criterion": HttpCheck(url=f"{site}/fail")})
    assert not (await ActivityEnvironment().run(activities.run_check, failing)).passed


async def test_a_manual_criterion_is_not_run() -> None:
    with pytest.raises(ValueError, match="signed off by a person"):
        await run_check(Manual(description="reviewed by SRE"), CheckConfig(), _now())


def test_settings_make_the_check_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FOLLOWTHROUGH_PROMETHEUS_URL", "http://prometheus:9090")
    monkeypatch.setenv("FOLLOWTHROUGH_JIRA_URL", "https://example.atlassian.net")
    monkeypatch.setenv("FOLLOWTHROUGH_JIRA_USER", "bot@example.com")
    monkeypatch.setenv("FOLLOWTHROUGH_JIRA_TOKEN", "t0ken")
    config = Settings(data_dir=tmp_path).check_config()
    assert config == CheckConfig(
        prometheus_url="http://prometheus:9090",
        jira_url="https://example.atlassian.net",
        jira_user="bot@example.com",
        jira_token="t0ken",
    )
    assert "t0ken" not in repr(config)
    monkeypatch.delenv("FOLLOWTHROUGH_JIRA_TOKEN")
    assert Settings(data_dir=tmp_path).check_config().jira_token is None
