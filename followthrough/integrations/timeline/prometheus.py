"""Prometheus's ALERTS: when the incident's services' alerts started firing, as `alert` events
(detection candidates: the owner decides which one was the detection).

    ALERTS{alertstate="firing", service=~"checkout|payments"}   over the window, by query_range

The window opens LOOKBACK before the incident started (else was detected, else resolved) and
closes when it was resolved; each alert series' first point in it is one event. The services are
matched on one label, `service` unless FOLLOWTHROUGH_ALERTS_SERVICE_LABEL names another (alert
rules commonly carry the service that way; a rule without it is not the incident's). Prometheus
is asked through the project's one client (integrations/prometheus.py): the installation's own
Prometheus is trusted, as for SLO measurement (domain/outbound.py); given an outbound policy, it
is judged by it first.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from followthrough.domain.incident import Incident
from followthrough.domain.outbound import OutboundPolicy
from followthrough.domain.timeline import EVENT_TEXT_MOST, CollectedEvent, EventKind
from followthrough.integrations.prometheus import prometheus_get
from followthrough.integrations.timeline import SourceRefused, SourceUnavailable

SOURCE = "prometheus"
LOOKBACK = timedelta(minutes=30)  # alerts that fired shortly before the incident's start count
WINDOW_MOST = timedelta(days=7)  # a longer incident is asked about its last week only
STEP_LEAST = 15  # seconds: a first firing is placed within one step of when it began
POINTS_MOST = 10_000  # Prometheus refuses more than 11,000 points per series
TIMEOUT = 10.0  # seconds for the query


class PrometheusAlerts:
    """The ALERTS collector, for any incident that names its services."""

    source = SOURCE

    def __init__(
        self,
        base_url: str,
        service_label: str = "service",
        outbound: OutboundPolicy | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.service_label = service_label
        self.outbound = outbound
        self.timeout = timeout

    def applies_to(self, incident: Incident) -> bool:
        return bool(incident.services)

    def query(self, incident: Incident) -> str:
        services = "|".join(re.escape(s) for s in incident.services)
        return f'ALERTS{{alertstate="firing", {self.service_label}=~{json.dumps(services)}}}'

    def window(self, incident: Incident) -> tuple[datetime, datetime, int]:
        """(start, end, step in seconds) of the range query."""
        end = incident.resolved_at
        began = incident.started_at or incident.detected_at or end
        start = max(began - LOOKBACK, end - WINDOW_MOST)
        span = (end - start).total_seconds()
        return start, end, max(STEP_LEAST, math.ceil(span / POINTS_MOST))

    def collect(self, incident: Incident) -> list[CollectedEvent]:
        start, end, step = self.window(incident)
        params = {
            "query": self.query(incident),
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": str(step),
        }
        answer = asyncio.run(
            prometheus_get(
                self.base_url, "/api/v1/query_range", params, self.timeout, self.outbound
            )
        )
        if not answer.ok:
            status = answer.status
            if answer.error_type == "refused" or (status is not None and 400 <= status < 500):
                raise SourceRefused(answer.reason)
            raise SourceUnavailable(answer.reason)
        series = answer.data.get("result") if isinstance(answer.data, dict) else None
        if not isinstance(series, list):
            raise SourceUnavailable(f"Prometheus at {self.base_url} answered without a matrix")
        events = [self._first_firing(s, start, step) for s in series]
        return sorted((e for e in events if e is not None), key=lambda e: (e.at, e.source_id))

    def _first_firing(self, series: Any, start: datetime, step: int) -> CollectedEvent | None:
        labels = series.get("metric") if isinstance(series, dict) else None
        values = series.get("values") if isinstance(series, dict) else None
        if not isinstance(labels, dict) or not isinstance(values, list) or not values:
            return None
        at = datetime.fromtimestamp(float(values[0][0]), tz=UTC)
        shown = {
            k: str(v) for k, v in sorted(labels.items()) if k not in ("__name__", "alertstate")
        }
        name = shown.pop("alertname", "alert")
        identity = json.dumps(sorted(labels.items()), ensure_ascii=False).encode()
        text = f"{name} firing" + (
            " (" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")" if shown else ""
        )
        if at - start < timedelta(seconds=step):
            text += f"; already firing when the window opened, {_minutes(LOOKBACK)} before"
        return CollectedEvent(
            source=SOURCE,
            source_id=f"{name[:120]}:{hashlib.sha256(identity).hexdigest()[:16]}",
            at=at,
            kind=EventKind.ALERT,
            text=text[:EVENT_TEXT_MOST],
            link=self._graph(name, labels, at),
        )

    def _graph(self, name: str, labels: dict[str, Any], at: datetime) -> str | None:
        """Prometheus's own graph of that alert around its first firing (http(s) only)."""
        if not self.base_url.startswith(("http://", "https://")):
            return None
        matchers = [f"alertname={json.dumps(name)}"]
        if (service := labels.get(self.service_label)) is not None:
            matchers.append(f"{self.service_label}={json.dumps(str(service))}")
        expr = "ALERTS{" + ", ".join(matchers) + "}"
        query = {"g0.expr": expr, "g0.tab": "0", "g0.range_input": "2h"}
        query["g0.end_input"] = (at + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
        link = f"{self.base_url}/graph?{urlencode(query)}"
        return link if len(link) <= 2000 else None


def _minutes(span: timedelta) -> str:
    return f"{int(span.total_seconds() // 60)} min"
