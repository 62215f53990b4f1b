"""SLO definitions imported from Sloth and OpenSLO files into Slo models.

Sloth: `version: "prometheus/v1"` with a service and `slos[]` (objective in percent, events SLIs
with `error_query`/`total_query` written with Sloth's `{{.window}}`), or the same body under
`spec:` of a `sloth.slok.dev/v1` PrometheusServiceLevel. Sloth's alerts are the Google 30-day
multiwindow multi-burn-rate ones, our DEFAULT_WINDOWS; a disabled page or ticket alert drops
those windows.

OpenSLO: `apiVersion: openslo/v1`, `kind: SLO`, in one or many YAML documents. A ratio indicator
inline or by `indicatorRef` to an SLI in the same file; `good` becomes the error query
`(total) - (good)`. One Slo per objective. Other OpenSLO kinds (Service, DataSource, alerting)
are read past.

Every problem in a file is reported at once, each with where it is ('slos[2].objective: ...').
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from followthrough.domain.criteria import parse_duration
from followthrough.domain.problems import Problems, format_validation_error
from followthrough.domain.slo import (
    DEFAULT_WINDOWS,
    WINDOW_PLACEHOLDER,
    AlertWindow,
    BudgetingMethod,
    Slo,
)

SLOTH_VERSION = "prometheus/v1"
SLOTH_K8S_API = "sloth.slok.dev/v1"
SLOTH_K8S_KIND = "PrometheusServiceLevel"
OPENSLO_API = "openslo/v1"
OPENSLO_KINDS = (
    "SLO",
    "SLI",
    "Service",
    "DataSource",
    "AlertPolicy",
    "AlertCondition",
    "AlertNotificationTarget",
)
BUDGETING_METHODS: tuple[BudgetingMethod, ...] = ("Occurrences", "Timeslices", "RatioTimeslices")
SLOTH_PERIOD = timedelta(days=30)

_SLOTH_WINDOW = re.compile(r"\{\{\s*\.window\s*\}\}")


class InvalidSloSpec(Problems):
    """An SLO file with every problem found in it."""


def sloth_query(query: str) -> str:
    """Sloth's {{.window}} as our {{window}}."""
    return _SLOTH_WINDOW.sub(WINDOW_PLACEHOLDER, query)


def _join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


class _Reader:
    """Reads fields of untrusted YAML, noting each problem with where it is."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.prefix}{where}: {message}")

    def mapping(self, data: Any, where: str) -> dict[str, Any] | None:
        if data is None:
            self.problem(where, "missing")
            return None
        if not isinstance(data, dict):
            self.problem(where, "must be a mapping")
            return None
        return data

    def text(self, data: dict[str, Any], key: str, where: str) -> str | None:
        value = data.get(key)
        at = _join(where, key)
        if value is None:
            self.problem(at, "missing")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(at, "must be a non-empty string")
            return None
        return value

    def items(self, data: dict[str, Any], key: str, where: str) -> list[Any] | None:
        value = data.get(key)
        at = _join(where, key)
        if value is None:
            self.problem(at, "missing")
            return None
        if not isinstance(value, list) or not value:
            self.problem(at, "must be a non-empty list")
            return None
        return value

    def number(self, data: dict[str, Any], key: str, where: str) -> float | None:
        value = data.get(key)
        at = _join(where, key)
        if value is None:
            self.problem(at, "missing")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(at, f"{value!r} is not a number")
            return None
        return float(value)

    def slo(self, fields: dict[str, Any], where: str) -> Slo | None:
        try:
            return Slo.model_validate(fields)
        except ValidationError as err:
            for line in format_validation_error(err):
                self.problems.append(f"{self.prefix}{where}: {line}")
            return None


# Sloth.


def _sloth_windows(slo: dict[str, Any]) -> tuple[AlertWindow, ...]:
    alerting = slo.get("alerting")
    if not isinstance(alerting, dict):
        return DEFAULT_WINDOWS
    disabled = set()
    for severity, key in (("page", "page_alert"), ("ticket", "ticket_alert")):
        alert = alerting.get(key)
        if isinstance(alert, dict) and alert.get("disable") is True:
            disabled.add(severity)
    return tuple(w for w in DEFAULT_WINDOWS if w.severity not in disabled)


def _sloth_slo(
    reader: _Reader, service: str | None, raw: Any, where: str, period: timedelta
) -> Slo | None:
    slo = reader.mapping(raw, where)
    if slo is None:
        return None
    name = reader.text(slo, "name", where)
    objective = reader.number(slo, "objective", where)
    if objective is not None and not 0 < objective < 100:
        reader.problem(
            _join(where, "objective"),
            f"{objective:g} is not a percentage between 0 and 100 (exclusive)",
        )
        objective = None
    sli = reader.mapping(slo.get("sli"), _join(where, "sli"))
    error_query = total_query = None
    if sli is not None:
        sli_at = _join(where, "sli")
        if "events" in sli:
            events = reader.mapping(sli["events"], _join(sli_at, "events"))
            if events is not None:
                error_query = reader.text(events, "error_query", _join(sli_at, "events"))
                total_query = reader.text(events, "total_query", _join(sli_at, "events"))
        elif "raw" in sli or "plugin" in sli:
            kind = "raw" if "raw" in sli else "plugin"
            reader.problem(
                _join(sli_at, kind), f"{kind} SLIs are not supported; use events queries"
            )
        else:
            reader.problem(_join(sli_at, "events"), "missing")
    if None in (service, name, objective, error_query, total_query):
        return None
    assert objective is not None and error_query is not None and total_query is not None
    return reader.slo(
        {
            "id": f"{service}-{name}",
            "name": name,
            "service": service,
            "objective": round(objective / 100, 12),
            "period": period,
            "rolling": True,
            "budgeting_method": "Occurrences",
            "error_query": sloth_query(error_query),
            "total_query": sloth_query(total_query),
            "windows": _sloth_windows(slo),
            "source": "sloth",
        },
        where,
    )


def slos_from_sloth(
    doc: dict[str, Any], reader: _Reader, where: str = "", period: timedelta = SLOTH_PERIOD
) -> list[Slo]:
    """A Sloth prometheus/v1 body (service, slos[])."""
    service = reader.text(doc, "service", where)
    items = reader.items(doc, "slos", where)
    found = []
    for index, raw in enumerate(items or []):
        slo = _sloth_slo(reader, service, raw, _join(_join(where, "slos"), index), period)
        if slo is not None:
            found.append(slo)
    return found


# OpenSLO.


def _metric_query(reader: _Reader, ratio: dict[str, Any], key: str, where: str) -> str | None:
    at = _join(where, key)
    metric = reader.mapping(ratio.get(key), at)
    if metric is None:
        return None
    source = reader.mapping(metric.get("metricSource"), _join(at, "metricSource"))
    if source is None:
        return None
    spec = reader.mapping(source.get("spec"), _join(_join(at, "metricSource"), "spec"))
    if spec is None:
        return None
    return reader.text(spec, "query", _join(_join(at, "metricSource"), "spec"))


def _openslo_queries(
    reader: _Reader, indicator: dict[str, Any], where: str
) -> tuple[str | None, str | None]:
    """(error query, total query) of an OpenSLO SLI body."""
    spec = reader.mapping(indicator.get("spec"), _join(where, "spec"))
    if spec is None:
        return None, None
    at = _join(where, "spec")
    if "ratioMetric" not in spec:
        other = "thresholdMetric" if "thresholdMetric" in spec else "ratioMetric"
        message = "only ratioMetric indicators are supported" if other != "ratioMetric" else ""
        reader.problem(_join(at, other), message or "missing")
        return None, None
    ratio = reader.mapping(spec["ratioMetric"], _join(at, "ratioMetric"))
    if ratio is None:
        return None, None
    ratio_at = _join(at, "ratioMetric")
    total = _metric_query(reader, ratio, "total", ratio_at)
    if "bad" in ratio:
        return _metric_query(reader, ratio, "bad", ratio_at), total
    if "good" in ratio:
        good = _metric_query(reader, ratio, "good", ratio_at)
        if good is None or total is None:
            return None, total
        return f"({total}) - ({good})", total
    reader.problem(_join(ratio_at, "good"), "missing (or bad)")
    return None, total


def _openslo_window(reader: _Reader, spec: dict[str, Any]) -> tuple[timedelta | None, bool]:
    windows = reader.items(spec, "timeWindow", "spec")
    if windows is None:
        return None, True
    if len(windows) > 1:
        reader.problem("spec.timeWindow", "only one time window is supported")
    window = reader.mapping(windows[0], "spec.timeWindow[0]")
    if window is None:
        return None, True
    rolling = window.get("isRolling", True)
    if not isinstance(rolling, bool):
        reader.problem("spec.timeWindow[0].isRolling", "must be true or false")
        rolling = True
    text = reader.text(window, "duration", "spec.timeWindow[0]")
    if text is None:
        return None, rolling
    try:
        return parse_duration(text), rolling
    except ValueError as err:
        reader.problem("spec.timeWindow[0].duration", str(err))
        return None, rolling


def _openslo_target(reader: _Reader, raw: Any, where: str) -> float | None:
    objective = reader.mapping(raw, where)
    if objective is None:
        return None
    if "target" in objective:
        target = reader.number(objective, "target", where)
        if target is not None and not 0 < target < 1:
            reader.problem(_join(where, "target"), f"{target:g} is not a ratio between 0 and 1")
            return None
        return target
    if "targetPercent" in objective:
        percent = reader.number(objective, "targetPercent", where)
        if percent is not None and not 0 < percent < 100:
            reader.problem(
                _join(where, "targetPercent"),
                f"{percent:g} is not a percentage between 0 and 100 (exclusive)",
            )
            return None
        return None if percent is None else round(percent / 100, 12)
    reader.problem(_join(where, "target"), "missing (or targetPercent)")
    return None


def slos_from_openslo(
    doc: dict[str, Any], reader: _Reader, indicators: dict[str, dict[str, Any]]
) -> list[Slo]:
    """One OpenSLO v1 SLO object; indicators are the file's SLI objects by name."""
    metadata = reader.mapping(doc.get("metadata"), "metadata") or {}
    name = reader.text(metadata, "name", "metadata") if metadata else None
    spec = reader.mapping(doc.get("spec"), "spec")
    if spec is None:
        return []
    service = reader.text(spec, "service", "spec")
    method = spec.get("budgetingMethod")
    if method is None:
        reader.problem("spec.budgetingMethod", "missing")
    elif method not in BUDGETING_METHODS:
        reader.problem(
            "spec.budgetingMethod", f"{method!r} is not one of {', '.join(BUDGETING_METHODS)}"
        )
    period, rolling = _openslo_window(reader, spec)
    error_query = total_query = None
    if "indicator" in spec:
        indicator = reader.mapping(spec["indicator"], "spec.indicator")
        if indicator is not None:
            error_query, total_query = _openslo_queries(reader, indicator, "spec.indicator")
    elif "indicatorRef" in spec:
        ref = spec["indicatorRef"]
        if ref in indicators:
            error_query, total_query = _openslo_queries(
                reader, indicators[ref], f"SLI {ref} (spec.indicatorRef)"
            )
        else:
            reader.problem("spec.indicatorRef", f"no SLI named {ref!r} in this file")
    else:
        reader.problem("spec.indicator", "missing (or indicatorRef)")
    targets = reader.items(spec, "objectives", "spec")
    objectives = [
        _openslo_target(reader, raw, f"spec.objectives[{i}]") for i, raw in enumerate(targets or [])
    ]
    fields = (name, service, method in BUDGETING_METHODS, period, error_query, total_query)
    if None in fields or False in fields:
        return []
    found = []
    display = metadata.get("displayName") or name
    for index, objective in enumerate(objectives):
        if objective is None:
            continue
        suffix = f"-{index}" if len(objectives) > 1 else ""
        slo = reader.slo(
            {
                "id": f"{name}{suffix}",
                "name": display,
                "service": service,
                "objective": objective,
                "period": period,
                "rolling": rolling,
                "budgeting_method": method,
                "error_query": error_query,
                "total_query": total_query,
                "source": "openslo",
            },
            f"spec.objectives[{index}]",
        )
        if slo is not None:
            found.append(slo)
    return found


# Files.


def _document_kind(doc: dict[str, Any]) -> str:
    if "version" in doc and "apiVersion" not in doc:
        return "sloth"
    api = doc.get("apiVersion")
    if api == SLOTH_K8S_API:
        return "sloth-k8s"
    if api == OPENSLO_API:
        return "openslo"
    return "unknown"


def _read_document(doc: Any, reader: _Reader, indicators: dict[str, dict[str, Any]]) -> list[Slo]:
    if not isinstance(doc, dict):
        reader.problem("document", "must be a mapping")
        return []
    kind = _document_kind(doc)
    if kind == "sloth":
        if doc["version"] != SLOTH_VERSION:
            reader.problem("version", f"{doc['version']!r} is unknown (expected {SLOTH_VERSION})")
            return []
        return slos_from_sloth(doc, reader)
    if kind == "sloth-k8s":
        if doc.get("kind") != SLOTH_K8S_KIND:
            reader.problem("kind", f"{doc.get('kind')!r} is unknown (expected {SLOTH_K8S_KIND})")
            return []
        spec = reader.mapping(doc.get("spec"), "spec")
        return [] if spec is None else slos_from_sloth(spec, reader, "spec")
    if kind == "openslo":
        object_kind = doc.get("kind")
        if object_kind not in OPENSLO_KINDS:
            reader.problem(
                "kind", f"{object_kind!r} is unknown (one of {', '.join(OPENSLO_KINDS)})"
            )
            return []
        return slos_from_openslo(doc, reader, indicators) if object_kind == "SLO" else []
    if "apiVersion" in doc:
        reader.problem(
            "apiVersion",
            f"{doc['apiVersion']!r} is unknown (expected {OPENSLO_API} or {SLOTH_K8S_API})",
        )
    else:
        reader.problem(
            "version",
            f"missing: neither a Sloth spec (version: {SLOTH_VERSION}) "
            f"nor an OpenSLO object (apiVersion: {OPENSLO_API})",
        )
    return []


def _sli_objects(docs: list[Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for doc in docs:
        if isinstance(doc, dict) and doc.get("apiVersion") == OPENSLO_API:
            metadata = doc.get("metadata")
            if doc.get("kind") == "SLI" and isinstance(metadata, dict) and "name" in metadata:
                found[str(metadata["name"])] = doc
    return found


def parse_slo_specs(text: str, subject: str = "SLO spec") -> list[Slo]:
    """Every SLO in a Sloth or OpenSLO YAML text (one or many documents); InvalidSloSpec lists
    every problem when any is found."""
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        raise InvalidSloSpec(subject, [f"not valid YAML: {err}"]) from err
    if not docs:
        raise InvalidSloSpec(subject, ["no YAML documents"])
    indicators = _sli_objects(docs)
    problems: list[str] = []
    slos: list[Slo] = []
    for index, doc in enumerate(docs):
        reader = _Reader(f"document {index + 1}: " if len(docs) > 1 else "")
        slos.extend(_read_document(doc, reader, indicators))
        problems.extend(reader.problems)
    seen: set[str] = set()
    for slo in slos:
        if slo.id in seen:
            problems.append(f"SLO id {slo.id!r} is defined more than once")
        seen.add(slo.id)
    if not problems and not slos:
        problems.append("no SLOs found")
    if problems:
        raise InvalidSloSpec(subject, problems)
    return slos


def load_slo_specs(path: Path) -> list[Slo]:
    """parse_slo_specs over a file; problems name the file."""
    return parse_slo_specs(path.read_text(encoding="utf-8"), subject=str(path))
