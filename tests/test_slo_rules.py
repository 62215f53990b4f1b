"""SLO alerting rules (followthrough/domain/slo_rules.py): the pure output, then promtool's say.

promtool is Debian's (tests/servers/prometheus.py promtool_binary(): installed when missing, skipped
where it cannot be, a failure with CI=true). `promtool test rules` runs the generated rules
over synthetic series in simulated time, so whether the page fires is Prometheus's own answer.
"""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from followthrough.domain.slo import (
    DEFAULT_WINDOWS,
    Slo,
    budget_at_fire,
    max_burn_rate,
    page_threshold_reachable,
)
from followthrough.domain.slo_rules import (
    ALERT_NAME,
    SLOTH_NAME,
    alert_name,
    duration_label,
    prometheus_rules,
    proposed_change,
    proposed_windows,
    recording_rule_name,
    sloth_spec,
)
from followthrough.domain.slo_specs import parse_slo_specs
from tests.servers.prometheus import promtool_binary

ERROR_QUERY = 'sum(rate(http_requests_total{code=~"5.."}[{{window}}]))'
TOTAL_QUERY = "sum(rate(http_requests_total[{{window}}]))"
PAGE_1H, PAGE_6H, TICKET_1D, TICKET_3D = DEFAULT_WINDOWS


def make_slo(objective: float = 0.999, days: int = 30, **extra: Any) -> Slo:
    fields: dict[str, Any] = {
        "id": "checkout-availability",
        "name": "availability",
        "service": "checkout",
        "objective": objective,
        "period": timedelta(days=days),
        "error_query": ERROR_QUERY,
        "total_query": TOTAL_QUERY,
    }
    return Slo.model_validate(fields | extra)


def rules_of(text: str) -> dict[str, dict[str, Any]]:
    """The rule file's rules by record or alert name (one group, as generated)."""
    groups = yaml.safe_load(text)["groups"]
    assert len(groups) == 1
    return {rule.get("record") or rule["alert"]: rule for rule in groups[0]["rules"]}


# Names.


@given(st.text(min_size=1, max_size=40))
def test_alert_names_are_valid_for_any_id(slo_id: str) -> None:
    slo = make_slo(id=slo_id)
    for severity in ("page", "ticket"):
        name = alert_name(slo, severity)
        assert ALERT_NAME.match(name), name
        assert name.endswith(f"BudgetBurn{severity.title()}")


@pytest.mark.parametrize(
    ("slo_id", "expected"),
    [
        ("checkout-availability", "CheckoutAvailabilityBudgetBurnPage"),
        ("api.v2_latency-p99", "ApiV2LatencyP99BudgetBurnPage"),
        ("99-percent", "Slo99PercentBudgetBurnPage"),
        ("---", "SloBudgetBurnPage"),
        ("myService", "MyServiceBudgetBurnPage"),
    ],
)
def test_alert_name_examples(slo_id: str, expected: str) -> None:
    assert alert_name(make_slo(id=slo_id), "page") == expected


def test_duration_labels() -> None:
    spans = [
        timedelta(minutes=5),
        timedelta(hours=1),
        timedelta(minutes=90),
        timedelta(days=1),
        timedelta(days=3),
        timedelta(seconds=30),
        timedelta(milliseconds=250),
    ]
    labels = ["5m", "1h", "90m", "1d", "3d", "30s", "250ms"]
    assert [duration_label(span) for span in spans] == labels
    assert recording_rule_name(timedelta(hours=6)) == "slo:sli_error:ratio_rate6h"


# Proposed windows.


def test_reachable_windows_are_untouched() -> None:
    slo = make_slo(0.999)
    assert proposed_windows(slo) == DEFAULT_WINDOWS


@pytest.mark.parametrize("objective", [0.9, 0.5, 0.92, 0.75])
def test_unreachable_page_windows_are_retuned_to_the_same_budget(objective: float) -> None:
    slo = make_slo(objective)
    proposed = proposed_windows(slo)
    assert len(proposed) == len(slo.windows)
    for before, after in zip(slo.windows, proposed, strict=True):
        # Tickets are left alone even when unreachable (at 50 %, 3x is): only pages get retuned.
        if before.severity == "ticket" or page_threshold_reachable(before, slo):
            assert after == before
            continue
        assert page_threshold_reachable(after, slo)
        assert after.burn_rate == pytest.approx(max_burn_rate(slo) / 2)
        # Rounded up to whole minutes: the same budget at fire, give or take a minute's worth.
        assert after.long.total_seconds() % 60 == 0 and after.short.total_seconds() % 60 == 0
        minute = after.burn_rate * 60 / slo.period.total_seconds()
        gained = budget_at_fire(after, slo) - budget_at_fire(before, slo)
        assert 0 <= gained <= minute
        assert after.for_ == before.for_ and after.short <= after.long


def test_retuned_page_at_90_percent() -> None:
    # 1/b = 10 < 14.4: 14.4x over 1h becomes 5x over 172.8 -> 173 min, 5m -> 14.4 -> 15 min.
    page_1h, page_6h, *tickets = proposed_windows(make_slo(0.9))
    assert not page_threshold_reachable(PAGE_1H, make_slo(0.9))
    assert (page_1h.burn_rate, page_1h.long, page_1h.short) == (
        5,
        timedelta(minutes=173),
        timedelta(minutes=15),
    )
    assert page_6h == PAGE_6H  # 6x is reachable at 10x
    assert tuple(tickets) == (TICKET_1D, TICKET_3D)


# Prometheus rules, as text.


def test_rules_for_default_windows() -> None:
    text = prometheus_rules(make_slo(0.999))
    assert text == prometheus_rules(make_slo(0.999))  # deterministic
    groups = yaml.safe_load(text)["groups"]
    assert [group["name"] for group in groups] == ["followthrough-slo-checkout-availability"]
    rules = rules_of(text)
    windows = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    records = [f"slo:sli_error:ratio_rate{w}" for w in windows]
    alerts = ["CheckoutAvailabilityBudgetBurnPage", "CheckoutAvailabilityBudgetBurnTicket"]
    assert list(rules) == records + alerts

    hour = rules["slo:sli_error:ratio_rate1h"]
    assert hour["expr"] == (
        '(sum(rate(http_requests_total{code=~"5.."}[1h])))\n/\n(sum(rate(http_requests_total[1h])))'
    )
    assert hour["labels"] == {"slo": "checkout-availability", "service": "checkout"}

    page = rules["CheckoutAvailabilityBudgetBurnPage"]
    selector = '{slo="checkout-availability"}'
    assert page["expr"] == (
        f"(slo:sli_error:ratio_rate1h{selector} > (14.4 * 0.001) and "
        f"slo:sli_error:ratio_rate5m{selector} > (14.4 * 0.001))\nor\n"
        f"(slo:sli_error:ratio_rate6h{selector} > (6 * 0.001) and "
        f"slo:sli_error:ratio_rate30m{selector} > (6 * 0.001))"
    )
    assert "for" not in page
    assert page["labels"] == {
        "severity": "page",
        "slo": "checkout-availability",
        "service": "checkout",
    }
    assert "1h/5m at 14.4x" in page["annotations"]["description"]
    assert "6h/30m at 6x" in page["annotations"]["description"]
    ticket = rules["CheckoutAvailabilityBudgetBurnTicket"]
    assert "(3 * 0.001)" in ticket["expr"] and "(1 * 0.001)" in ticket["expr"]
    assert ticket["labels"]["severity"] == "ticket"


def test_rules_take_the_longest_for_and_only_present_severities() -> None:
    slow = PAGE_6H.model_copy(update={"for_": timedelta(minutes=2)})
    rules = rules_of(prometheus_rules(make_slo(0.9995), (PAGE_1H, slow)))
    page = rules["CheckoutAvailabilityBudgetBurnPage"]
    assert page["for"] == "2m"
    assert "CheckoutAvailabilityBudgetBurnTicket" not in rules
    # 1 - 0.9995 is 0.0004999999999999449 in floats; the rule says what was meant.
    assert "(14.4 * 0.0005)" in page["expr"]


def test_queries_without_the_placeholder_are_used_as_they_are() -> None:
    slo = make_slo(error_query="slo:errors:rate", total_query="slo:requests:rate")
    rules = rules_of(prometheus_rules(slo))
    assert (
        rules["slo:sli_error:ratio_rate5m"]["expr"] == "(slo:errors:rate)\n/\n(slo:requests:rate)"
    )


@pytest.mark.parametrize("empty", ["error_query", "total_query"])
def test_no_queries_no_rules(empty: str) -> None:
    slo = make_slo().model_copy(update={empty: ""})
    with pytest.raises(
        ValueError, match=f"SLO 'checkout-availability' has no SLI queries: {empty}"
    ):
        prometheus_rules(slo)
    with pytest.raises(ValueError, match="has no SLI queries"):
        sloth_spec(slo)


# Sloth.


@pytest.mark.parametrize("objective", [0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999])
def test_sloth_spec_round_trips(objective: float) -> None:
    slo = make_slo(objective, source="sloth")
    (back,) = parse_slo_specs(sloth_spec(slo))
    assert back == slo


def test_sloth_spec_disabled_ticket_alert_and_other_period() -> None:
    slo = make_slo(days=28, windows=(PAGE_1H, PAGE_6H))
    text = sloth_spec(slo)
    assert text.startswith("# The SLO period is 28d: ")
    assert "--default-slo-period=28d" in text
    spec = yaml.safe_load(text)
    alerting = spec["slos"][0]["alerting"]
    assert alerting["name"] == "CheckoutAvailabilityBudgetBurn"
    assert alerting["page_alert"] == {"labels": {"severity": "page"}}
    assert alerting["ticket_alert"] == {"disable": True}
    assert spec["slos"][0]["sli"]["events"]["total_query"] == (
        "sum(rate(http_requests_total[{{.window}}]))"
    )
    (back,) = parse_slo_specs(text)
    assert back.windows == (PAGE_1H, PAGE_6H)
    assert back.period == timedelta(days=30)  # Sloth's spec cannot say 28d; the comment does
    assert (back.service, back.objective, back.error_query) == ("checkout", 0.999, ERROR_QUERY)


@given(st.text(min_size=1, max_size=30))
def test_sloth_names_are_valid(name: str) -> None:
    spec = yaml.safe_load(sloth_spec(make_slo(id=f"checkout-{name}")))
    assert SLOTH_NAME.match(spec["slos"][0]["name"])


def test_sloth_needs_the_window_placeholder() -> None:
    slo = make_slo(error_query="slo:errors:rate")
    with pytest.raises(ValueError, match=r"Sloth needs \{\{\.window\}\} in error_query"):
        sloth_spec(slo)


# The proposal.


def test_proposed_change_at_999_is_the_rules_as_they_are() -> None:
    slo = make_slo(0.999)
    text = proposed_change(slo)
    header, rules = text.split("\n", 1)
    assert header == (
        "# Proposed SLO alerting for checkout-availability (99.9%, 30d): "
        "the SLO's own windows (every page window can fire)"
    )
    assert rules == prometheus_rules(slo)


def test_proposed_change_at_90_says_what_was_retuned() -> None:
    slo = make_slo(0.9)
    text = proposed_change(slo)
    lines = text.splitlines()
    assert lines[0] == (
        "# Proposed SLO alerting for checkout-availability (90%, 30d): 1 page window retuned"
    )
    assert lines[1].startswith("# Retuned: page 1h/5m at 14.4x -> page 173m/15m at 5x: ")
    assert "at most 10x" in lines[1] and "same 2% of the budget" in lines[1]
    assert lines[2] == "groups:"
    assert yaml.safe_load(text) == yaml.safe_load(prometheus_rules(slo, proposed_windows(slo)))


def test_proposed_change_without_queries_lists_the_windows() -> None:
    text = proposed_change(make_slo(0.9, error_query="", total_query=""))
    assert "groups:" not in text
    assert "- page 173m/15m at 5x: fires after 2% of the budget" in text
    assert "- ticket 3d/6h at 1x: fires after 10% of the budget" in text
    assert "import it with its error and total queries" in text


# promtool.


def promtool(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool_binary(), *args],
        cwd=directory,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


ODD_SLO = make_slo(
    0.9,
    id='9 "odd" {{slo}}\\id\nline two',
    name="odd {{ $value }}",
    service="checkout",
    windows=(PAGE_1H, PAGE_6H.model_copy(update={"for_": timedelta(minutes=2)}), TICKET_1D),
)


@pytest.mark.parametrize(
    "rules",
    [
        prometheus_rules(make_slo(0.999)),
        proposed_change(make_slo(0.9)),
        proposed_change(make_slo(0.9995, days=28)),
        proposed_change(ODD_SLO),  # quotes, backslashes, {{ and a line break in the id
    ],
    ids=["default", "retuned", "28d", "odd-id"],
)
def test_promtool_accepts_the_rules(tmp_path: Path, rules: str) -> None:
    (tmp_path / "rules.yml").write_text(rules)
    result = promtool(tmp_path, "check", "rules", "rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


RPS_PER_MINUTE = 1_200 * 60  # 72,000 requests a minute


def traffic(error_ratio: float, *, clean: int, minutes: int) -> list[dict[str, str]]:
    """Counters sampled each minute: `clean` minutes all good, then error_ratio of 1,200 rps
    failing for `minutes` (the first failed requests show in the sample at minute clean + 1).

    `clean` should cover the page's long window: over less history a window sees only what
    there is, and fires sooner. Not much more: promtool evaluates every minute of it."""
    bad = round(RPS_PER_MINUTE * error_ratio)
    good = RPS_PER_MINUTE - bad
    return [
        {
            "series": 'http_requests_total{code="200"}',
            "values": f"0+{RPS_PER_MINUTE}x{clean} "
            f"{RPS_PER_MINUTE * clean + good}+{good}x{minutes - 1}",
        },
        {
            "series": 'http_requests_total{code="500"}',
            "values": f"0x{clean} {bad}+{bad}x{minutes - 1}",
        },
    ]


def run_rule_test(
    tmp_path: Path,
    rules: str,
    series: list[dict[str, str]],
    alert: str,
    firing_at: dict[int, bool],
) -> None:
    """promtool test rules: `alert` is firing (or not) at each eval minute of firing_at."""
    rule = rules_of(rules)[alert]
    firing = [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}]
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "rules.yml").write_text(rules)
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": f"{minute}m",
                        "alertname": alert,
                        "exp_alerts": firing if fires else [],
                    }
                    for minute, fires in sorted(firing_at.items())
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = promtool(tmp_path, "test", "rules", "test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_page_fires_minutes_into_the_worked_example(tmp_path: Path) -> None:
    # 99.9 %, 30 % errors at 1,200 rps after six clean hours (both page windows full): 1h/5m at
    # 14.4x fires 2.88 minutes in (the 1h error ratio reaches 0.0144 = 0.3 * 2.88 / 60), so at
    # the evaluation 3 minutes in. Nothing before: one or two minutes in, the 1h ratio is only
    # 0.005 or 0.01, the 6h one 0.0008 or 0.0017 (6x needs 0.006). The ticket rules are left
    # out: their 1d and 3d windows would only slow promtool down here.
    slo = make_slo(0.999)
    run_rule_test(
        tmp_path,
        prometheus_rules(slo, (PAGE_1H, PAGE_6H)),
        traffic(0.30, clean=360, minutes=45),
        alert_name(slo, "page"),
        {300: False, 360: False, 361: False, 362: False, 364: True, 370: True, 400: True},
    )


def test_at_90_percent_only_the_retuned_page_fires_in_a_total_outage(tmp_path: Path) -> None:
    slo = make_slo(0.9)
    retuned = proposed_windows(slo)[0]
    assert (retuned.long, retuned.short, retuned.burn_rate) == (
        timedelta(minutes=173),
        timedelta(minutes=15),
        5,
    )
    outage = traffic(1.0, clean=180, minutes=120)
    page = alert_name(slo, "page")
    # 14.4x needs 144 % of requests to fail: two hours of total outage never reach it.
    run_rule_test(
        tmp_path / "original",
        prometheus_rules(slo, (PAGE_1H,)),
        outage,
        page,
        {210: False, 240: False, 300: False},
    )
    # 5x = 50 % over 173m/15m: fires once half of the 173 minutes failed, 86.5 minutes in.
    run_rule_test(
        tmp_path / "retuned",
        prometheus_rules(slo, (retuned,)),
        outage,
        page,
        {210: False, 180 + 80: False, 180 + 95: True, 300: True},
    )
