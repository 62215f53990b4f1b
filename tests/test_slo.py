"""SLO error-budget arithmetic (followthrough/domain/slo.py) and SLO spec import (slo_specs.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from followthrough.domain.slo import (
    DEFAULT_WINDOWS,
    AlertWindow,
    Slo,
    alert_fires_after,
    budget_at_fire,
    budget_consumed_estimated,
    budget_consumed_events,
    budget_consumed_time_based,
    budget_findings,
    burn_rate,
    detection_findings,
    incident_impact,
    max_burn_rate,
    page_threshold_reachable,
    time_to_exhaustion,
)
from followthrough.domain.slo_specs import InvalidSloSpec, load_slo_specs, parse_slo_specs

MINUTE = timedelta(minutes=1)


def make_slo(objective: float = 0.999, days: int = 30, **extra: object) -> Slo:
    return Slo.model_validate(
        {
            "id": "checkout-availability",
            "name": "availability",
            "service": "checkout",
            "objective": objective,
            "period": timedelta(days=days),
            **extra,
        }
    )


def minutes(span: timedelta | None) -> float:
    assert span is not None
    return span.total_seconds() / 60


# The worked example: 99.9 % / 30d, 1,000 rps on average; 45 minutes at 30 % errors, 1,200 rps.
SLO = make_slo()
PAGE_1H, PAGE_6H, TICKET_1D, TICKET_3D = DEFAULT_WINDOWS


def test_worked_example_budget_and_burn() -> None:
    assert SLO.error_budget == pytest.approx(0.001)
    assert minutes(SLO.period) == 43_200
    assert 0.001 * 1_000 * SLO.period.total_seconds() == pytest.approx(2_592_000)
    assert burn_rate(0.30, SLO) == pytest.approx(300)
    assert budget_consumed_time_based(0.30, 45 * MINUTE, SLO) == pytest.approx(0.3125)
    bad = 0.30 * 1_200 * 2_700
    assert bad == pytest.approx(972_000)
    total = 1_000 * SLO.period.total_seconds()
    assert budget_consumed_events(bad, total, SLO) == pytest.approx(0.375)
    # The same from the estimate: incident traffic 1.2x the average.
    assert budget_consumed_estimated(0.30, 45 * MINUTE, 1.2, SLO) == pytest.approx(0.375)


def test_worked_example_expected_alerts() -> None:
    expected = [2.88, 7.2, 14.4, 14.4]
    got = [minutes(alert_fires_after(0.30, w, SLO)) for w in DEFAULT_WINDOWS]
    assert got == pytest.approx(expected)
    # By design the fast page fires after 2 % of the budget, the slow one after 5 %.
    assert budget_at_fire(PAGE_1H, SLO) == pytest.approx(0.02)
    assert budget_at_fire(PAGE_6H, SLO) == pytest.approx(0.05)
    assert budget_at_fire(TICKET_1D, SLO) == pytest.approx(0.10)
    assert budget_at_fire(TICKET_3D, SLO) == pytest.approx(0.10)


def test_worked_example_impact_and_findings() -> None:
    impact = incident_impact(
        SLO,
        duration=45 * MINUTE,
        error_ratio=0.30,
        bad_events=972_000,
        total_events_in_period=2_592_000_000,
        actual_detection=21 * MINUTE,
    )
    assert impact.basis == "events"
    assert impact.burn_rate == pytest.approx(300)
    assert impact.budget_consumed == pytest.approx(0.375)
    assert impact.budget_remaining_after == pytest.approx(0.625)
    assert impact.burned_before_detection is not None
    assert round(impact.burned_before_detection * 100, 1) == 14.6
    assert [minutes(e.fires_after) for e in impact.expected_detection] == pytest.approx(
        [2.88, 7.2, 14.4, 14.4]
    )
    assert all(e.during_impact for e in impact.expected_detection)
    assert minutes(impact.expected_page_detection) == pytest.approx(2.88)

    findings = detection_findings(impact, SLO, slack=5 * MINUTE)
    assert [f.kind for f in findings] == ["late_detection"]
    assert "21.0 min" in findings[0].evidence and "2.9 min" in findings[0].evidence
    assert [f.kind for f in budget_findings(impact, SLO)] == ["postmortem_required"]

    on_time = impact.model_copy(update={"actual_detection": 7 * MINUTE})
    assert detection_findings(on_time, SLO, slack=5 * MINUTE) == []


def test_time_based_impact_and_exhausted_budget() -> None:
    impact = incident_impact(
        SLO, duration=45 * MINUTE, error_ratio=0.30, budget_remaining_before=0.2
    )
    assert impact.basis == "time"
    assert impact.budget_consumed == pytest.approx(0.3125)
    assert impact.budget_remaining_after == pytest.approx(-0.1125)
    kinds = [f.kind for f in budget_findings(impact, SLO)]
    assert kinds == ["postmortem_required", "budget_exhausted"]
    missed = detection_findings(impact, SLO)
    assert [f.kind for f in missed] == ["missed_detection"]


def test_slow_burn_no_slo_alert_fires() -> None:
    # 0.5 % errors for 2 hours at 99.9 %: burn 5, below 6x and 14.4x; the 1d/2h ticket window at
    # 3x fires after 3 * 0.001 * 1440 / 0.005 = 864 min, long after the impact ended.
    impact = incident_impact(SLO, duration=timedelta(hours=2), error_ratio=0.005)
    assert impact.burn_rate == pytest.approx(5)
    assert impact.budget_consumed == pytest.approx(5 * 120 / 43_200)
    assert alert_fires_after(0.005, PAGE_1H, SLO) is None
    assert alert_fires_after(0.005, PAGE_6H, SLO) is None
    assert minutes(alert_fires_after(0.005, TICKET_1D, SLO)) == pytest.approx(864)
    assert not impact.any_alert_expected
    # 1.39 % of the budget: not enough to call the missing alert a finding.
    assert detection_findings(impact, SLO) == []
    # Twelve hours of it costs 8.3 %: now it is one.
    long = incident_impact(SLO, duration=timedelta(hours=12), error_ratio=0.005)
    assert long.budget_consumed == pytest.approx(5 * 720 / 43_200)
    assert [f.kind for f in detection_findings(long, SLO)] == ["no_slo_alert"]


def test_995_over_28_days() -> None:
    slo = make_slo(0.995, days=28)
    # b = 0.005, P = 40,320 min. 10 % errors for an hour: burn 20, 20 * 60 / 40,320 = 2.976 %.
    assert burn_rate(0.10, slo) == pytest.approx(20)
    assert budget_consumed_time_based(0.10, timedelta(hours=1), slo) == pytest.approx(
        20 * 60 / 40_320
    )
    # 14.4 * 0.005 * 60 / 0.10 = 43.2 min; 6 * 0.005 * 360 / 0.10 = 108 min.
    assert minutes(alert_fires_after(0.10, PAGE_1H, slo)) == pytest.approx(43.2)
    assert minutes(alert_fires_after(0.10, PAGE_6H, slo)) == pytest.approx(108)
    # Over 28 days the same windows let a little more of the budget burn: 14.4 / 672 = 2.14 %.
    assert budget_at_fire(PAGE_1H, slo) == pytest.approx(14.4 / 672)
    assert max_burn_rate(slo) == pytest.approx(200)
    assert page_threshold_reachable(PAGE_1H, slo)
    # 5 % errors never reach 14.4x (needs 7.2 %), but do reach 6x (needs 3 %).
    assert alert_fires_after(0.05, PAGE_1H, slo) is None
    assert minutes(alert_fires_after(0.05, PAGE_6H, slo)) == pytest.approx(216)


def test_9999_over_30_days_is_reachable_but_tight() -> None:
    slo = make_slo(0.9999)
    assert max_burn_rate(slo) == pytest.approx(10_000)
    assert all(page_threshold_reachable(w, slo) for w in DEFAULT_WINDOWS)
    # A total outage pages after 14.4 * 0.0001 * 60 min = 5.184 s, the short window is 5m:
    # the formula is the long window's; the short one is reached even sooner.
    assert alert_fires_after(1.0, PAGE_1H, slo) == timedelta(seconds=5.184)
    # The whole budget (4.32 min) lasts 4.32 min of total outage.
    assert minutes(time_to_exhaustion(1.0, 10_000, slo)) == pytest.approx(4.32)


def test_page_threshold_unreachable_for_low_objectives() -> None:
    # 1 / b must reach 14.4: b <= 1/14.4 = 6.94 %, objective >= 93.06 %.
    slo = make_slo(0.90)
    assert max_burn_rate(slo) == pytest.approx(10)
    assert not page_threshold_reachable(PAGE_1H, slo)
    assert page_threshold_reachable(PAGE_6H, slo)
    assert alert_fires_after(1.0, PAGE_1H, slo) is None
    assert page_threshold_reachable(PAGE_1H, make_slo(0.931))
    assert not page_threshold_reachable(PAGE_1H, make_slo(0.930))
    impact = incident_impact(slo, duration=timedelta(hours=1), error_ratio=1.0)
    kinds = [f.kind for f in detection_findings(impact, slo)]
    assert "page_unreachable" in kinds


def test_time_to_exhaustion() -> None:
    # Half the budget at 2x: P * 0.5 / 2 = 7.5 days.
    assert time_to_exhaustion(0.5, 2, SLO) == timedelta(days=7.5)
    assert time_to_exhaustion(0.5, 0, SLO) is None
    assert time_to_exhaustion(0, 2, SLO) == timedelta(0)
    assert time_to_exhaustion(-0.1, 2, SLO) == timedelta(0)


def test_for_duration_delays_the_alert() -> None:
    window = AlertWindow(
        severity="page",
        long=timedelta(hours=1),
        short=timedelta(minutes=5),
        burn_rate=14.4,
        for_=2 * MINUTE,
    )
    assert minutes(alert_fires_after(0.30, window, SLO)) == pytest.approx(4.88)
    assert window.label == "page 1h/5m at 14.4x"


def test_models_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="objective"):
        make_slo(1.0)
    with pytest.raises(ValueError, match="objective"):
        make_slo(0)
    with pytest.raises(ValueError, match="period"):
        make_slo(days=0)
    with pytest.raises(ValueError, match="short window"):
        AlertWindow(severity="page", long=MINUTE, short=2 * MINUTE, burn_rate=1)
    with pytest.raises(ValueError, match="burn_rate"):
        AlertWindow(severity="page", long=MINUTE, short=MINUTE, burn_rate=0)
    with pytest.raises(ValueError, match="error_ratio"):
        incident_impact(SLO, duration=MINUTE, error_ratio=1.5)
    with pytest.raises(ValueError, match="total_in_period"):
        budget_consumed_events(1, 0, SLO)


# Properties.

objectives = st.floats(min_value=0.5, max_value=0.99999)
ratios = st.floats(min_value=0.0, max_value=1.0)
durations = st.integers(min_value=0, max_value=60 * 24 * 30).map(lambda m: m * MINUTE)
windows = st.sampled_from(DEFAULT_WINDOWS)


@given(objectives, ratios, st.floats(min_value=0, max_value=10))
def test_burn_rate_is_linear_in_error_ratio(objective: float, ratio: float, scale: float) -> None:
    slo = make_slo(objective)
    assert burn_rate(ratio * scale, slo) == pytest.approx(scale * burn_rate(ratio, slo))
    assert burn_rate(ratio, slo) * slo.error_budget == pytest.approx(ratio)


@given(objectives, ratios, durations, durations)
def test_budget_consumed_grows_with_duration(
    objective: float, ratio: float, a: timedelta, b: timedelta
) -> None:
    slo = make_slo(objective)
    shorter, longer = sorted((a, b))
    assert budget_consumed_time_based(ratio, shorter, slo) <= budget_consumed_time_based(
        ratio, longer, slo
    )


@given(objectives, ratios, ratios, windows)
def test_higher_error_ratio_fires_no_later(
    objective: float, a: float, b: float, window: AlertWindow
) -> None:
    slo = make_slo(objective)
    low, high = sorted((a, b))
    at_low = alert_fires_after(low, window, slo)
    at_high = alert_fires_after(high, window, slo)
    if at_low is not None:
        assert at_high is not None
        assert at_high <= at_low


@given(objectives, ratios, windows)
def test_never_fires_below_threshold(objective: float, ratio: float, window: AlertWindow) -> None:
    slo = make_slo(objective)
    fires = alert_fires_after(ratio, window, slo)
    threshold = window.burn_rate * slo.error_budget
    if ratio < threshold:
        assert fires is None
    elif ratio > 0:
        assert fires is not None
        # At the threshold it takes the whole long window; above it, less.
        assert fires <= window.long + window.for_
        # When it fires, the long window has burned at least k * b (timedelta keeps microseconds).
        burned = ratio * (fires.total_seconds() + 1e-6)
        assert burned >= threshold * window.long.total_seconds()


@given(
    objectives,
    ratios,
    durations,
    st.floats(min_value=0.01, max_value=1e6),
)
def test_event_based_equals_time_based_when_traffic_is_flat(
    objective: float, ratio: float, duration: timedelta, rate: float
) -> None:
    slo = make_slo(objective)
    bad = ratio * rate * duration.total_seconds()
    total = rate * slo.period.total_seconds()
    assert budget_consumed_events(bad, total, slo) == pytest.approx(
        budget_consumed_time_based(ratio, duration, slo)
    )
    assert budget_consumed_estimated(ratio, duration, 1.0, slo) == pytest.approx(
        budget_consumed_time_based(ratio, duration, slo)
    )


# SLO specs: Sloth and OpenSLO files.

EXAMPLES = Path(__file__).parent / "slo_examples"


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InvalidSloSpec) as caught:
        load_slo_specs(path)
    assert caught.value.subject == str(path)
    return caught.value.problems


def test_sloth_file_with_two_slos() -> None:
    availability, latency = load_slo_specs(EXAMPLES / "sloth-valid.yaml")
    assert availability.id == "checkout-requests-availability"
    assert availability.service == "checkout"
    assert availability.objective == 0.999
    assert availability.error_budget == pytest.approx(0.001)
    assert availability.period == timedelta(days=30)
    assert availability.source == "sloth"
    assert availability.windows == DEFAULT_WINDOWS
    assert availability.error_query == (
        'sum(rate(http_requests_total{job="checkout",code=~"5.."}[{{window}}]))'
    )
    assert availability.total_query == 'sum(rate(http_requests_total{job="checkout"}[{{window}}]))'
    assert latency.objective == 0.995
    assert "{{ .window }}" not in latency.error_query
    assert latency.error_query.count("{{window}}") == 2
    # The ticket alert is disabled: only the page windows guard it.
    assert [w.severity for w in latency.windows] == ["page", "page"]


def test_openslo_file_with_inline_and_referenced_indicators() -> None:
    checkout, search = load_slo_specs(EXAMPLES / "openslo-valid.yaml")
    assert checkout.id == "checkout-availability"
    assert checkout.name == "Checkout availability"
    assert checkout.service == "checkout"
    assert checkout.objective == 0.995
    assert checkout.period == timedelta(days=28)
    assert checkout.rolling
    assert checkout.budgeting_method == "Occurrences"
    assert checkout.source == "openslo"
    assert checkout.error_query.startswith("sum(rate(http_requests_total{")
    assert search.id == "search-availability"
    assert search.objective == 0.9999
    assert search.period == timedelta(weeks=1)
    assert not search.rolling
    assert search.budgeting_method == "Timeslices"
    # good becomes bad: total minus good.
    assert search.error_query == (
        "(sum(rate(search_requests_total[{{window}}]))) - "
        '(sum(rate(search_requests_total{code!~"5.."}[{{window}}])))'
    )


def test_broken_sloth_file_lists_every_problem() -> None:
    assert problems_of(EXAMPLES / "sloth-broken.yaml") == [
        "slos[1].name: missing",
        "slos[1].sli.events.total_query: missing",
        "slos[2].objective: 120 is not a percentage between 0 and 100 (exclusive)",
        "slos[2].sli.raw: raw SLIs are not supported; use events queries",
        "slos[3].objective: 'high' is not a number",
        "slos[3].sli: missing",
    ]


def test_broken_openslo_file_lists_every_problem() -> None:
    problems = problems_of(EXAMPLES / "openslo-broken.yaml")
    assert problems == [
        "document 1: spec.budgetingMethod: 'Sometimes' is not one of "
        "Occurrences, Timeslices, RatioTimeslices",
        "document 1: spec.timeWindow[0].duration: '1M' is not a duration like 30s, 5m, 6h, 7d "
        "or 2w",
        "document 1: spec.indicator.spec.ratioMetric.good: missing (or bad)",
        "document 1: spec.objectives: missing",
        "document 2: apiVersion: 'openslo/v2' is unknown (expected openslo/v1 or "
        "sloth.slok.dev/v1)",
        "document 3: kind: 'Dashboard' is unknown (one of SLO, SLI, Service, DataSource, "
        "AlertPolicy, AlertCondition, AlertNotificationTarget)",
        "document 4: spec.indicatorRef: no SLI named 'nowhere' in this file",
        "document 4: spec.objectives[0].target: 99.9 is not a ratio between 0 and 1",
    ]


SLOTH_BODY = """
service: api
slos:
  - name: availability
    objective: 99.95
    sli:
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
"""


def test_sloth_kubernetes_resource() -> None:
    text = "apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\nspec:\n" + "".join(
        f"  {line}\n" for line in SLOTH_BODY.strip().splitlines()
    )
    (slo,) = parse_slo_specs(text)
    assert slo.id == "api-availability"
    assert slo.objective == 0.9995
    assert slo.error_query == "sum(rate(errors_total[{{window}}]))"


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ('version: "prometheus/v2"\n' + SLOTH_BODY, ["version: 'prometheus/v2' is unknown"]),
        (SLOTH_BODY, ["version: missing: neither a Sloth spec"]),
        ("version: prometheus/v1\nservice: api\n", ["slos: missing"]),
        ("version: prometheus/v1\nservice: api\nslos: []\n", ["slos: must be a non-empty list"]),
        ("[1, 2", ["not valid YAML"]),
        ("", ["no YAML documents"]),
        ("- a\n- b\n", ["document: must be a mapping"]),
        (
            "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: api}\n",
            ["no SLOs found"],
        ),
        (
            'version: "prometheus/v1"\n'
            + SLOTH_BODY
            + '---\nversion: "prometheus/v1"\n'
            + SLOTH_BODY,
            ["SLO id 'api-availability' is defined more than once"],
        ),
        (
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec: {}\n",
            [
                "spec.service: missing",
                "spec.budgetingMethod: missing",
                "spec.timeWindow: missing",
                "spec.indicator: missing (or indicatorRef)",
                "spec.objectives: missing",
            ],
        ),
    ],
)
def test_spec_problems(text: str, problems: list[str]) -> None:
    with pytest.raises(InvalidSloSpec) as caught:
        parse_slo_specs(text, subject="slo.yaml")
    assert len(caught.value.problems) == len(problems)
    for got, want in zip(caught.value.problems, problems, strict=True):
        assert got.startswith(want)
    assert str(caught.value).startswith("slo.yaml: ")


def test_openslo_multiple_objectives_make_one_slo_each() -> None:
    text = (
        (EXAMPLES / "openslo-valid.yaml")
        .read_text()
        .replace(
            "    - displayName: Good\n      target: 0.995\n",
            "    - target: 0.99\n    - targetPercent: 99.9\n",
        )
    )
    ids = [(s.id, s.objective) for s in parse_slo_specs(text)]
    assert ids == [
        ("checkout-availability-0", 0.99),
        ("checkout-availability-1", 0.999),
        ("search-availability", 0.9999),
    ]
