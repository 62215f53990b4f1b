"""Prometheus rules (and a Sloth spec) for an SLO's burn-rate alerts: the change to propose.

An SLO review that finds an alert missing, late or unable to fire ends in an action item; the
item is only useful if it carries the alerting to deploy. This module writes that text: the
multiwindow, multi-burn-rate alerts of the SRE Workbook (ch. 5) as a Prometheus rule file, with
page windows retuned where the objective makes them unreachable, and the same SLO as a Sloth
spec for teams that generate their rules with Sloth. Pure: text in, text out, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import yaml

from followthrough.domain.slo import (
    WINDOW_PLACEHOLDER,
    AlertWindow,
    Severity,
    Slo,
    budget_at_fire,
    max_burn_rate,
    page_threshold_reachable,
)
from followthrough.domain.slo_specs import SLOTH_PERIOD, SLOTH_VERSION

RECORDING_RULE = "slo:sli_error:ratio_rate{window}"
SLOTH_WINDOW_PLACEHOLDER = "{{.window}}"
SEVERITIES: tuple[Severity, ...] = ("page", "ticket")

# What Prometheus accepts as an alert (metric) name.
ALERT_NAME = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
# What Sloth accepts as an SLO name (its internal/prometheus/model.go `nameRegexp`).
SLOTH_NAME = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]$")
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_NOT_SLOTH_NAME = re.compile(r"[^-A-Za-z0-9_.]+")


# Small formatting helpers.


def duration_label(span: timedelta) -> str:
    """A Prometheus duration in its largest whole unit: 5m, 1h, 90m, 1d, 30s, 250ms."""
    milliseconds = round(span.total_seconds() * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"


def _number(value: float) -> str:
    """12 significant digits: float noise (1 - 0.999 = 0.0010000000000000009) stays out."""
    return f"{value:.12g}"


def _clean(value: float) -> float:
    return float(_number(value))


def _percent(objective: float) -> str:
    return f"{_number(objective * 100)}%"


def _error_budget(slo: Slo) -> float:
    return _clean(slo.error_budget)


def _promql_string(value: str) -> str:
    """A PromQL double-quoted string literal (Go escaping)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _template_literal(text: str) -> str:
    """Text that Prometheus's alert templating (labels, annotations) leaves as it is, `{{` too."""
    return text.replace("{{", '{{ "{{" }}')


# Windows.


def _retuned(window: AlertWindow, slo: Slo) -> AlertWindow:
    new_rate = _clean(max_burn_rate(slo) / 2)
    stretch = window.burn_rate / new_rate
    return window.model_copy(
        update={
            "burn_rate": new_rate,
            "long": _whole_minutes_up(window.long * stretch),
            "short": _whole_minutes_up(window.short * stretch),
        }
    )


def _whole_minutes_up(span: timedelta) -> timedelta:
    # Rounded to the microsecond first, so 172.8 min computed as 172.80000001 stays 173.
    minutes = round(span.total_seconds() / 60, 6)
    return timedelta(minutes=math.ceil(minutes))


def proposed_windows(slo: Slo) -> tuple[AlertWindow, ...]:
    """The SLO's windows, with every page window that can never fire retuned so that it can.

    A total outage burns the budget at most 1/b times too fast (b = 1 - objective), so a page
    window with burn rate k > 1/b never fires (below ~93.06 % for 14.4x). Its replacement
    keeps what the window was designed for, the budget it lets burn before firing (k * L / P):

        k' = (1/b) / 2          fires when half of all requests fail
        L' = L * k / k'         the same k' * L' = k * L, so the same budget at fire
        S' = S * k / k'         the short window keeps its proportion to the long one

    L' and S' are rounded up to whole minutes (Prometheus durations; the budget at fire grows
    by at most a minute's worth). Reachable windows, and all ticket windows, are unchanged.
    """
    return tuple(
        _retuned(window, slo)
        if window.severity == "page" and not page_threshold_reachable(window, slo)
        else window
        for window in slo.windows
    )


# Names.


def alert_name(slo: Slo, severity: str) -> str:
    """A valid Prometheus alert name: "checkout-availability", "page" ->
    "CheckoutAvailabilityBudgetBurnPage". Characters other than ASCII letters and digits
    split words; a name that would start with a digit (or be empty) starts with "Slo"."""
    words = [word for word in _NOT_ALNUM.split(slo.id) if word]
    stem = "".join(word[0].upper() + word[1:] for word in words)
    if not stem or stem[0].isdigit():
        stem = f"Slo{stem}"
    return f"{stem}BudgetBurn{_camel(severity)}"


def _camel(text: str) -> str:
    return "".join(word[0].upper() + word[1:] for word in _NOT_ALNUM.split(text) if word)


def recording_rule_name(span: timedelta) -> str:
    """The error-ratio recording rule over one window: slo:sli_error:ratio_rate5m (Sloth's)."""
    return RECORDING_RULE.format(window=duration_label(span))


# Prometheus rules.


def _require_queries(slo: Slo) -> None:
    missing = [
        name
        for name, query in (("error_query", slo.error_query), ("total_query", slo.total_query))
        if not query.strip()
    ]
    if missing:
        raise ValueError(
            f"SLO '{slo.id}' has no SLI queries: {' and '.join(missing)} empty; import it with "
            f"its error and total queries to get alerting rules"
        )


def _over(query: str, span: timedelta) -> str:
    return query.strip().replace(WINDOW_PLACEHOLDER, duration_label(span))


def _recording_rules(slo: Slo, windows: Iterable[AlertWindow]) -> list[dict[str, Any]]:
    spans = sorted({span for window in windows for span in (window.short, window.long)})
    return [
        {
            "record": recording_rule_name(span),
            "expr": f"({_over(slo.error_query, span)})\n/\n({_over(slo.total_query, span)})",
            "labels": {"slo": slo.id, "service": slo.service},
        }
        for span in spans
    ]


def _window_condition(slo: Slo, window: AlertWindow) -> str:
    threshold = f"({_number(window.burn_rate)} * {_number(_error_budget(slo))})"
    selector = f"{{slo={_promql_string(slo.id)}}}"
    long = f"{recording_rule_name(window.long)}{selector} > {threshold}"
    short = f"{recording_rule_name(window.short)}{selector} > {threshold}"
    return f"({long} and {short})"


def _budget_share(window: AlertWindow, slo: Slo) -> str:
    return f"{_number(round(budget_at_fire(window, slo) * 100, 2))}%"


def _windows_text(windows: Iterable[AlertWindow], slo: Slo) -> str:
    return "; ".join(
        f"{duration_label(w.long)}/{duration_label(w.short)} at {_number(w.burn_rate)}x "
        f"(fires after {_budget_share(w, slo)} of the budget)"
        for w in windows
    )


def _alerting_rule(slo: Slo, severity: Severity, windows: list[AlertWindow]) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "alert": alert_name(slo, severity),
        "expr": "\nor\n".join(_window_condition(slo, window) for window in windows),
    }
    longest_for = max(window.for_ for window in windows)
    if longest_for > timedelta(0):
        rule["for"] = duration_label(longest_for)
    # An alert's labels are templates too (recording rules' are not).
    labels = {"severity": severity, "slo": slo.id, "service": slo.service}
    rule["labels"] = {key: _template_literal(value) for key, value in labels.items()}
    summary = f"SLO {slo.id} is burning its error budget too fast ({severity})"
    description = (
        f"{slo.name} ({slo.service}, {_percent(slo.objective)} over "
        f"{duration_label(slo.period)}): the error ratio over both the long and the short "
        f"window is above the burn rate of one of {_windows_text(windows, slo)}."
    )
    rule["annotations"] = {
        "summary": _template_literal(summary),
        "description": _template_literal(description),
    }
    return rule


class _RulesDumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings (PromQL) as literal blocks, to be read."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RulesDumper.add_representer(str, _str_representer)


def _dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_RulesDumper, sort_keys=False, width=100, allow_unicode=True)


def prometheus_rules(slo: Slo, windows: tuple[AlertWindow, ...] | None = None) -> str:
    """A Prometheus rule file (YAML) with the SLO's burn-rate alerts; windows default to its own.

    One group `followthrough-slo-<id>`: a recording rule per window length used,
    `slo:sli_error:ratio_rate<dur>` = (error query) / (total query) over that window, labelled
    with the SLO and service (so several SLOs share the rule names); then one alert per
    severity present, firing when any of its windows burns faster than its rate in both the
    long and the short window. `{{window}}` in the queries becomes the window; a query without
    it is used as it is for every window. ValueError when the SLO has no SLI queries.
    """
    _require_queries(slo)
    chosen = slo.windows if windows is None else windows
    rules = _recording_rules(slo, chosen)
    for severity in SEVERITIES:
        of_severity = [window for window in chosen if window.severity == severity]
        if of_severity:
            rules.append(_alerting_rule(slo, severity, of_severity))
    return _dump({"groups": [{"name": f"followthrough-slo-{slo.id}", "rules": rules}]})


# Sloth.


def _sloth_name(slo: Slo) -> str:
    """The Sloth SLO name: Sloth's id is `<service>-<name>`, so the id without that prefix."""
    prefix = f"{slo.service}-"
    name = slo.id.removeprefix(prefix) if slo.id.startswith(prefix) else slo.id
    name = _NOT_SLOTH_NAME.sub("-", name)
    name = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", name)
    # Sloth wants two characters or more: "a" becomes "slo-a", nothing at all "slo".
    return name if SLOTH_NAME.match(name) else f"slo-{name}".strip("-")


def _sloth_query(slo: Slo, field: str, query: str) -> str:
    if WINDOW_PLACEHOLDER not in query:
        raise ValueError(
            f"SLO '{slo.id}': Sloth needs {SLOTH_WINDOW_PLACEHOLDER} in {field}, and it has no "
            f"{WINDOW_PLACEHOLDER}"
        )
    return query.strip().replace(WINDOW_PLACEHOLDER, SLOTH_WINDOW_PLACEHOLDER)


def sloth_spec(slo: Slo, windows: tuple[AlertWindow, ...] | None = None) -> str:
    """The SLO as a Sloth `prometheus/v1` spec (YAML).

    Sloth has only its own windows (the Google ones, our DEFAULT_WINDOWS) and a switch per
    severity, so `windows` (default: the SLO's) only says which of the page and ticket alerts
    are enabled; retuned windows are expressed by prometheus_rules alone. Sloth's spec has no
    period either: one other than 30 days is given to `sloth generate --default-slo-period`,
    said in a comment at the top. Sloth requires `{{window}}` in both queries (ValueError
    otherwise, as for missing queries). parse_slo_specs reads it back with the same service,
    objective, queries, and id when the id is `<service>-<name>` as Sloth makes it.
    """
    _require_queries(slo)
    chosen = slo.windows if windows is None else windows
    severities = {window.severity for window in chosen}
    alerting: dict[str, Any] = {"name": alert_name(slo, "page").removesuffix("Page")}
    for severity, key in (("page", "page_alert"), ("ticket", "ticket_alert")):
        alert: dict[str, Any] = {"labels": {"severity": severity}}
        alerting[key] = alert if severity in severities else {"disable": True}
    spec = {
        "version": SLOTH_VERSION,
        "service": slo.service,
        "slos": [
            {
                "name": _sloth_name(slo),
                "objective": _clean(slo.objective * 100),
                "description": slo.name,
                "sli": {
                    "events": {
                        "error_query": _sloth_query(slo, "error_query", slo.error_query),
                        "total_query": _sloth_query(slo, "total_query", slo.total_query),
                    }
                },
                "alerting": alerting,
            }
        ],
    }
    text = _dump(spec)
    if slo.period != SLOTH_PERIOD:
        period = duration_label(slo.period)
        text = (
            f"# The SLO period is {period}: generate with "
            f"`sloth generate --default-slo-period={period}`.\n{text}"
        )
    return text


# The proposal attached to an action item.


def _retune_lines(slo: Slo, proposed: tuple[AlertWindow, ...]) -> list[str]:
    lines = []
    for before, after in zip(slo.windows, proposed, strict=True):
        if before != after:
            lines.append(
                f"{before.label} -> {after.label}: a total outage burns at most "
                f"{_number(max_burn_rate(slo))}x, so {_number(before.burn_rate)}x never fires; "
                f"{_number(after.burn_rate)}x fires when half of all requests fail, after the "
                f"same {_budget_share(after, slo)} of the budget"
            )
    return lines


def proposed_change(slo: Slo) -> str:
    """What an action item proposes for the SLO's alerting: rules to deploy, or what's missing.

    With SLI queries: a comment header (which page windows were retuned, and why) and the
    Prometheus rule file for proposed_windows(slo). Without them: the proposed windows in
    words, and what to do to get rules.
    """
    proposed = proposed_windows(slo)
    retuned = _retune_lines(slo, proposed)
    what = (
        f"{len(retuned)} page window{'s' if len(retuned) != 1 else ''} retuned"
        if retuned
        else "the SLO's own windows (every page window can fire)"
    )
    header = (
        f"Proposed SLO alerting for {slo.id} ({_percent(slo.objective)}, "
        f"{duration_label(slo.period)}): {what}"
    )
    if not (slo.error_query.strip() and slo.total_query.strip()):
        windows = [
            f"- {window.label}: fires after {_budget_share(window, slo)} of the budget"
            for window in proposed
        ]
        return "\n".join(
            [
                header,
                *(f"Retuned: {line}" for line in retuned),
                "Windows:",
                *windows,
                "The SLO has no SLI queries: import it with its error and total queries "
                "(followthrough slo import) to get Prometheus rules.",
                "",
            ]
        )
    # An id with a line break in it must not end the comment and break the YAML.
    comments = [f"# {' '.join(header.splitlines())}", *(f"# Retuned: {line}" for line in retuned)]
    return "\n".join(comments) + "\n" + prometheus_rules(slo, proposed)
