"""The Prometheus ALERTS collector against a real Prometheus (tests/servers/prometheus.py), its
history backfilled, so nothing waits on a scrape."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from followthrough.domain.incident import Incident, parse_incident
from followthrough.domain.outbound import OutboundPolicy
from followthrough.domain.timeline import EventKind
from followthrough.integrations.timeline import (
    SourceRefused,
    SourceUnavailable,
    configured_collectors,
)
from followthrough.integrations.timeline.prometheus import PrometheusAlerts
from followthrough.settings import Settings
from tests.api_support import loopback_policy
from tests.factories import incident_data
from tests.servers.prometheus import Prometheus, openmetrics_family

# A day ago, on a whole minute: the backfilled history is all in the past.
T0 = (datetime.now(UTC) - timedelta(days=1)).replace(second=0, microsecond=0)


def alerts(alertname: str, state: str, service: str, first: int, last: int) -> str:
    """The alert's ALERTS series, in `state` from `first` to `last` minutes after T0."""
    labels = {"alertname": alertname, "alertstate": state, "service": service, "severity": "page"}
    start = (T0 + timedelta(minutes=first)).timestamp()
    end = (T0 + timedelta(minutes=last)).timestamp()
    samples = [(start + 30 * i, 1.0) for i in range(int((end - start) // 30) + 1)]
    return openmetrics_family("ALERTS", "gauge", [(labels, samples)])


def incident(**fields: object) -> Incident:
    data = incident_data(
        T0,
        started_at=T0.isoformat(),
        detected_at=(T0 + timedelta(minutes=20)).isoformat(),
        acknowledged_at=(T0 + timedelta(minutes=25)).isoformat(),
        mitigated_at=(T0 + timedelta(hours=1)).isoformat(),
        resolved_at=(T0 + timedelta(hours=2)).isoformat(),
        **fields,
    )
    return parse_incident(data, loopback_policy())


async def test_first_firing_of_each_alert_of_the_incidents_services(tmp_path: Path) -> None:
    prom = Prometheus(tmp_path)
    prom.backfill(
        alerts("CheckoutErrorRatioHigh", "firing", "checkout", 10, 40)
        + alerts("CheckoutLatencyHigh", "pending", "checkout", 5, 9)
        + alerts("CheckoutLatencyHigh", "firing", "checkout", -120, 60)
        + alerts("SearchDown", "firing", "search", 1, 30)  # another service
        + alerts("CheckoutDbSlow", "firing", "checkout-db", 2, 30)  # matched whole, not a prefix
    )
    async with prom:
        collector = PrometheusAlerts(prom.base_url)
        # Blocking, as the activity runs it: in a thread.
        found = await asyncio.to_thread(collector.collect, incident())
        again = await asyncio.to_thread(collector.collect, incident())

    assert again == found  # the same ids: collecting again finds the same events
    assert [(e.at - T0, e.kind, e.source) for e in found] == [
        (timedelta(minutes=-30), EventKind.ALERT, "prometheus"),  # the window's start
        (timedelta(minutes=10), EventKind.ALERT, "prometheus"),
    ]
    already, error_ratio = found
    assert already.text == (
        "CheckoutLatencyHigh firing (service=checkout, severity=page); already firing when the "
        "window opened, 30 min before"
    )
    assert error_ratio.text == "CheckoutErrorRatioHigh firing (service=checkout, severity=page)"
    assert error_ratio.source_id.startswith("CheckoutErrorRatioHigh:")
    assert error_ratio.link is not None
    assert error_ratio.link.startswith(f"{prom.base_url}/graph?g0.expr=ALERTS%7Balertname")


async def test_another_service_label_and_no_services(tmp_path: Path) -> None:
    collector = PrometheusAlerts("http://127.0.0.1:9", service_label="app")
    assert collector.query(incident(services=["a.b", "c"])) == (
        'ALERTS{alertstate="firing", app=~"a\\\\.b|c"}'
    )
    assert not collector.applies_to(incident(services=[]))


async def test_refused_by_the_outbound_policy_and_unreachable() -> None:
    closed = "http://127.0.0.1:9"  # nothing listens on the discard port
    with pytest.raises(SourceRefused, match="not asked"):
        await asyncio.to_thread(
            PrometheusAlerts(closed, outbound=OutboundPolicy()).collect, incident()
        )
    with pytest.raises(SourceUnavailable, match="could not reach Prometheus"):
        await asyncio.to_thread(PrometheusAlerts(closed, timeout=2).collect, incident())


async def test_a_query_prometheus_rejects_is_refused(tmp_path: Path) -> None:
    async with Prometheus(tmp_path) as prom:
        collector = PrometheusAlerts(prom.base_url, service_label="service")
        collector.service_label = "service}"  # past the settings' pattern: Prometheus says no
        with pytest.raises(SourceRefused, match="400 bad_data"):
            await asyncio.to_thread(collector.collect, incident())


def test_configured_by_the_installations_prometheus(tmp_path: Path) -> None:
    assert configured_collectors(Settings(data_dir=tmp_path, prometheus_url=None)) == []
    settings = Settings(
        data_dir=tmp_path, prometheus_url="http://prom:9090/", alerts_service_label="app"
    )
    [collector] = configured_collectors(settings)
    assert isinstance(collector, PrometheusAlerts)
    assert (collector.base_url, collector.service_label) == ("http://prom:9090", "app")
