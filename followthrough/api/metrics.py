"""`/metrics` in Prometheus's text format: requests, webhooks by source and outcome, and what is
open or overdue right now (read from the record at scrape time)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from followthrough.storage import Store


class RecordCollector(Collector):
    """Open postmortems by state and overdue action items by team, counted when scraped."""

    def __init__(self, store: Store, today: Callable[[], date]) -> None:
        self.store = store
        self.today = today

    def collect(self) -> Iterator[Metric]:
        open_postmortems = GaugeMetricFamily(
            "followthrough_open_postmortems", "Postmortems not yet closed", labels=["state"]
        )
        for state, count in sorted(self.store.facts.open_postmortem_counts().items()):
            open_postmortems.add_metric([state], count)
        yield open_postmortems
        overdue = GaugeMetricFamily(
            "followthrough_overdue_action_items",
            "Unresolved action items past their due date",
            labels=["team"],
        )
        for team, count in sorted(self.store.facts.overdue_item_counts(self.today()).items()):
            overdue.add_metric([team], count)
        yield overdue


class Metrics:
    """One registry per API app, so two apps in one process (tests) do not mix their counts."""

    def __init__(self, store: Store, today: Callable[[], date]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "followthrough_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "followthrough_webhooks",
            "Webhook deliveries by source and outcome (accepted, duplicate, ignored, rejected)",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.registry.register(RecordCollector(store, today))
