"""prometheus_query and alert_rule_present: ask Prometheus's HTTP API and keep its own words
(through followthrough.integrations.prometheus, the one client).

prometheus_query without hold_for is one instant query (`/api/v1/query`) at the check's moment;
every series it returns must satisfy `op threshold` (a scalar result is one value). No series is
a failure: there is nothing to compare.

With hold_for (e.g. 7d) it is one range query (`/api/v1/query_range`) over the last hold_for,
ending at the check's moment, and EVERY point of EVERY series must satisfy the comparison. The
step is span / RANGE_POINTS rounded up to whole seconds (at least 1 s): 7d -> 300 s (2017
points), 30s -> 1 s, 90d -> 3858 s. That keeps an answer small and far under Prometheus's limit
of 11,000 points per series. Each point is the query evaluated at that instant, so a query whose
own window is at least the step (rate(x[5m]) for a week) sees every sample; a spike shorter than
the step between two points of a finer query can go unseen. A moment at which no series has a
value is a gap; gaps fail the check too ("held for 7d" needs a value for all of the 7d), and the
reason says where the data starts. NaN (e.g. 0/0 with no traffic) satisfies no comparison.

alert_rule_present reads `/api/v1/rules?type=alert` and passes when an alerting rule has the name
and at least the given labels, unless every such rule is failing to evaluate (health "err"): a
rule that cannot evaluate never fires, and the reason carries its lastError.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from followthrough.checks.base import Checker, moment, number, result
from followthrough.checks.config import CheckConfig
from followthrough.domain.checks import CheckResult
from followthrough.domain.criteria import (
    AlertRulePresent,
    PrometheusQuery,
    compare,
    parse_duration,
)
from followthrough.domain.outbound import OutboundPolicy
from followthrough.integrations.prometheus import prometheus_get
from followthrough.logging import get_logger

RANGE_POINTS = 2016  # a week at one point every 5 minutes
NO_PROMETHEUS = (
    "no Prometheus to ask: set FOLLOWTHROUGH_PROMETHEUS_URL, or prometheus_url in the criterion"
)


def prometheus_base(criterion: PrometheusQuery | AlertRulePresent, config: CheckConfig) -> str:
    return (criterion.prometheus_url or config.prometheus_url or "").rstrip("/")


def judged_by(
    criterion: PrometheusQuery | AlertRulePresent, config: CheckConfig
) -> OutboundPolicy | None:
    """The allow-list for a Prometheus the draft names; None for the installation's own."""
    return config.outbound if criterion.prometheus_url else None


def selector(labels: dict[str, str]) -> str:
    """A series as PromQL writes it: name{a="b"}; a scalar or label-less series is {}."""
    name = labels.get("__name__", "")
    rest = ", ".join(
        f"{k}={json.dumps(v, ensure_ascii=False)}"
        for k, v in sorted(labels.items())
        if k != "__name__"
    )
    return f"{name}{{{rest}}}" if rest or not name else name


def _value(raw: Any) -> float:
    return float(raw)  # Prometheus sends numbers as strings, "NaN" and "+Inf" included


def _when(timestamp: float) -> str:
    return moment(datetime.fromtimestamp(timestamp, UTC))


def range_step(span: timedelta) -> int:
    """Seconds between points of a hold_for range query: at most RANGE_POINTS + 1 points."""
    return max(1, math.ceil(span.total_seconds() / RANGE_POINTS))


class PrometheusQueryChecker(Checker[PrometheusQuery]):
    kind = "prometheus_query"

    async def check(
        self, criterion: PrometheusQuery, config: CheckConfig, now: datetime
    ) -> CheckResult:
        base = prometheus_base(criterion, config)
        wanted = f"{criterion.op} {number(criterion.threshold)}"
        if criterion.hold_for is None:
            asked = (
                f"{criterion.query} {wanted}: instant query to {base or '(no Prometheus)'}"
                f"/api/v1/query at {moment(now)}"
            )
            if not base:
                return result(False, now, asked, "", NO_PROMETHEUS)
            return await self._instant(criterion, config, now, base, asked)
        span = parse_duration(criterion.hold_for)
        step = range_step(span)
        start = now - span
        asked = (
            f"{criterion.query} {wanted} at every point of the last {criterion.hold_for}: "
            f"range query to {base or '(no Prometheus)'}/api/v1/query_range from {moment(start)} "
            f"to {moment(now)}, step {step}s"
        )
        if not base:
            return result(False, now, asked, "", NO_PROMETHEUS)
        return await self._range(criterion, config, now, base, asked, span, step)

    async def preflight(self, criterion: PrometheusQuery, config: CheckConfig) -> list[str]:
        """Prometheus parses the query (an instant query now); an outage blocks nothing."""
        base = prometheus_base(criterion, config)
        if not base:
            return [f"prometheus_url: {NO_PROMETHEUS}"]
        answer = await prometheus_get(
            base,
            "/api/v1/query",
            {"query": criterion.query},
            config.preflight_timeout,
            judged_by(criterion, config),
        )
        if answer.error_type == "refused":
            return [f"prometheus_url: {answer.error}"]
        if answer.status == 400 and answer.error_type == "bad_data":
            return [f"query: Prometheus rejected it: {answer.error}"]
        if not answer.ok:
            # A fresh logger each time (not cached on first use): rare, and tests capture it.
            get_logger(__name__).warning(
                "preflight could not ask Prometheus; the query is not checked",
                prometheus_url=base,
                reason=answer.reason,
            )
            return []
        kind = answer.data.get("resultType") if isinstance(answer.data, dict) else None
        if kind in ("matrix", "string"):
            return [f"query: {_not_a_number(kind)}"]
        return []

    async def _instant(
        self, criterion: PrometheusQuery, config: CheckConfig, now: datetime, base: str, asked: str
    ) -> CheckResult:
        params = {"query": criterion.query, "time": f"{now.timestamp():.3f}"}
        answer = await prometheus_get(
            base, "/api/v1/query", params, config.prometheus_timeout, judged_by(criterion, config)
        )
        if not answer.ok:
            return result(False, now, asked, answer.shown, answer.reason)
        kind = answer.data.get("resultType")
        series: list[tuple[dict[str, str], float]]
        if kind == "scalar":
            series = [({}, _value(answer.data["result"][1]))]
        elif kind == "vector":
            series = [(s["metric"], _value(s["value"][1])) for s in answer.data["result"]]
        else:
            return result(False, now, asked, answer.text, _not_a_number(kind))
        shown = "\n".join(f"{selector(labels)} {number(v)}" for labels, v in series)
        at = moment(now)
        if not series:
            why = f"the query returned no series at {at}: nothing to compare"
            return result(False, now, asked, "(empty result)", why)
        op, threshold = criterion.op, criterion.threshold
        bad = [(labels, v) for labels, v in series if not compare(v, op, threshold)]
        wanted = f"{criterion.op} {number(criterion.threshold)}"
        if len(series) == 1:
            value = number(series[0][1])
            if bad:
                why = f"{value} is not {wanted} at {at}{_nan_hint(series[0][1])}"
                return result(False, now, asked, shown, why)
            return result(True, now, asked, shown, f"{value} is {wanted} at {at}")
        if bad:
            listed = ", ".join(f"{selector(labels)} {number(v)}" for labels, v in bad)
            why = f"{len(bad)} of {len(series)} series are not {wanted} at {at}: {listed}"
            return result(False, now, asked, shown, why)
        return result(True, now, asked, shown, f"all {len(series)} series are {wanted} at {at}")

    async def _range(
        self,
        criterion: PrometheusQuery,
        config: CheckConfig,
        now: datetime,
        base: str,
        asked: str,
        span: timedelta,
        step: int,
    ) -> CheckResult:
        end_ms = int(now.timestamp() * 1000)
        start_ms = end_ms - int(span.total_seconds() * 1000)
        params = {
            "query": criterion.query,
            "start": f"{start_ms / 1000:.3f}",
            "end": f"{end_ms / 1000:.3f}",
            "step": str(step),
        }
        answer = await prometheus_get(
            base,
            "/api/v1/query_range",
            params,
            config.prometheus_timeout,
            judged_by(criterion, config),
        )
        if not answer.ok:
            return result(False, now, asked, answer.shown, answer.reason)
        kind = answer.data.get("resultType")
        if kind != "matrix":
            return result(False, now, asked, answer.text, _not_a_number(kind))
        within = f"in the last {criterion.hold_for}"
        wanted = f"{criterion.op} {number(criterion.threshold)}"
        series = [
            (s["metric"], [(float(t), _value(v)) for t, v in s["values"]])
            for s in answer.data["result"]
        ]
        if not series:
            why = f"the query returned no series {within}: nothing to compare"
            return result(False, now, asked, "(empty result)", why)

        lines = []
        total = 0
        bad_points = 0
        bad_series = 0
        first_bad: tuple[float, str, float] | None = None
        seen: set[int] = set()
        for labels, points in series:
            total += len(points)
            seen.update(round(t * 1000) for t, _ in points)
            bad = [(t, v) for t, v in points if not compare(v, criterion.op, criterion.threshold)]
            values = [v for _, v in points]
            line = (
                f"{selector(labels)}: {len(points)} points from {_when(points[0][0])} to "
                f"{_when(points[-1][0])}, min {number(min(values))}, max {number(max(values))}"
            )
            if bad:
                bad_points += len(bad)
                bad_series += 1
                line += f"; first not {wanted} at {_when(bad[0][0])}: {number(bad[0][1])}"
                if first_bad is None or bad[0][0] < first_bad[0]:
                    first_bad = (bad[0][0], selector(labels), bad[0][1])
            lines.append(line)
        shown = "\n".join(lines)

        step_ms = step * 1000
        expected = [start_ms + k * step_ms for k in range((end_ms - start_ms) // step_ms + 1)]
        gaps = [t for t in expected if t not in seen]
        gap_text = ""
        if gaps:
            data_from = min(seen) / 1000
            gap_text = (
                f"no value at {len(gaps)} of {len(expected)} points {within} (first gap at "
                f"{_when(gaps[0] / 1000)}; the data starts at {_when(data_from)})"
            )
        several = f" (in {bad_series} of {len(series)} series)" if len(series) > 1 else ""
        if first_bad is not None:
            at, where, value = first_bad
            who = f"{where} " if len(series) > 1 else ""
            why = (
                f"the value was not {wanted} at {bad_points} of {total} points {within}{several}; "
                f"first at {_when(at)} ({who}{number(value)}){_nan_hint(value)}"
            )
            if gap_text:
                why += f"; and {gap_text}"
            return result(False, now, asked, shown, why)
        if gaps:
            why = f"{gap_text}: the query must have a value all the time"
            return result(False, now, asked, shown, why)
        worst = max if criterion.op in ("<", "<=") else min
        extreme = worst(v for _, points in series for _, v in points)
        label = "highest" if worst is max else "lowest"
        count = f"{total} points of {len(series)} series" if len(series) > 1 else f"{total} points"
        why = (
            f"every point was {wanted}: {count} {within}, step {step}s ({label} {number(extreme)})"
        )
        return result(True, now, asked, shown, why)


def _nan_hint(value: float) -> str:
    if math.isnan(value):
        return " (NaN satisfies no comparison: 0/0, e.g. a ratio with no traffic, is NaN)"
    return ""


def _not_a_number(kind: Any) -> str:
    if kind == "matrix":
        return (
            "the query returns a range vector (matrix), not a number per series: wrap it in a "
            "function such as rate(), max_over_time() or avg_over_time()"
        )
    return f"the query returns a {kind}, not a number per series"


class AlertRuleChecker(Checker[AlertRulePresent]):
    kind = "alert_rule_present"

    async def check(
        self, criterion: AlertRulePresent, config: CheckConfig, now: datetime
    ) -> CheckResult:
        base = prometheus_base(criterion, config)
        wanted = ", ".join(f'{k}="{v}"' for k, v in sorted(criterion.labels.items()))
        where = base or "(no Prometheus)"
        asked = f"GET {where}/api/v1/rules?type=alert: alerting rule {criterion.alert}"
        asked += f" with labels {{{wanted}}}" if wanted else ""
        if not base:
            return result(False, now, asked, "", NO_PROMETHEUS)
        answer = await prometheus_get(
            base,
            "/api/v1/rules",
            {"type": "alert"},
            config.prometheus_timeout,
            judged_by(criterion, config),
        )
        if not answer.ok:
            return result(False, now, asked, answer.shown, answer.reason)
        rules = [
            (group.get("name", ""), rule)
            for group in answer.data.get("groups", [])
            for rule in group.get("rules", [])
            if rule.get("type") == "alerting"
        ]
        shown = (
            "\n".join(
                f"{rule.get('name')}{{{_labels(rule)}}} (group {group}, health "
                f"{rule.get('health', '?')}, {rule.get('state', '?')})"
                for group, rule in rules
            )
            or "(no alerting rules)"
        )
        named = [(g, r) for g, r in rules if r.get("name") == criterion.alert]
        if not named:
            names = sorted({str(r.get("name")) for _, r in rules})
            has = f"it has: {', '.join(names)}" if names else "it has no alerting rules at all"
            why = f"Prometheus at {base} has no alerting rule named {criterion.alert}; {has}"
            return result(False, now, asked, shown, why)
        matching = [
            (g, r)
            for g, r in named
            if all((r.get("labels") or {}).get(k) == v for k, v in criterion.labels.items())
        ]
        if not matching:
            group, rule = named[0]
            labels = rule.get("labels") or {}
            missing = ", ".join(
                f'{k}="{v}"' for k, v in sorted(criterion.labels.items()) if labels.get(k) != v
            )
            why = (
                f"the alerting rule {criterion.alert} is there (group {group}), but without "
                f"{missing}; its labels: {{{_labels(rule)}}}"
            )
            return result(False, now, asked, shown, why)
        healthy = [(g, r) for g, r in matching if r.get("health") != "err"]
        if not healthy:
            group, rule = matching[0]
            why = (
                f"the alerting rule {criterion.alert} is there (group {group}), but Prometheus "
                f"fails to evaluate it: {rule.get('lastError') or 'health err'}"
            )
            return result(False, now, asked, shown, why)
        group, rule = healthy[0]
        with_labels = f" with {wanted}" if wanted else ""
        why = (
            f"Prometheus has the alerting rule {criterion.alert}{with_labels} (group {group}, "
            f"health {rule.get('health', '?')}, {rule.get('state', '?')})"
        )
        return result(True, now, asked, shown, why)


def _labels(rule: dict[str, Any]) -> str:
    labels = rule.get("labels") or {}
    return ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
