"""A tiny scrape target for the tests: `/metrics` on 127.0.0.1 with request counters we drive.

    with MetricsTarget(service="checkout") as target:
        async with Prometheus(tmp_path, scrape_targets=[target.address]) as prom:
            target.add(ok=100, errors=5)      # the error ratio goes up ...
            target.add(ok=1000)               # ... and back down
            ...

It serves, in Prometheus's text format (prometheus_client with its own registry, so nothing
of the process's default registry leaks in):

    http_requests_total{service="checkout",code="200"} 0.0
    http_requests_total{service="checkout",code="500"} 0.0

Both series exist from the very first scrape, at 0. That matters: rate()/increase() count only
what a counter gained between two scraped samples, so errors that were already there when the
`code="500"` series first appeared would never show up in rate(). Any other code or service
made with `add_requests()` appears from the next scrape on, with the same caveat.

Counters only go up (`add_requests` refuses a negative amount); `reset()` sets every series
back to 0, which Prometheus sees as a counter reset, like a restarted process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from tests.servers.daemon import LoopbackThreadServer

METRIC = "http_requests"  # exposed as http_requests_total
OK = "200"
ERROR = "500"


class _Requests(Collector):
    """http_requests_total{service, code}, from a dict we change under a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[tuple[str, str], float] = {}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            METRIC, "HTTP requests served, by service and status code.", labels=["service", "code"]
        )
        with self.lock:
            for (service, code), value in sorted(self.counts.items()):
                family.add_metric([service, code], value)
        yield family


class MetricsTarget(LoopbackThreadServer):
    """An HTTP server on 127.0.0.1 (free port, a daemon thread) serving /metrics."""

    name = "the metrics target"

    def __init__(self, service: str = "checkout") -> None:
        super().__init__()
        self.service = service
        self.registry = CollectorRegistry(auto_describe=False)
        self._requests = _Requests()
        self._requests.counts[(service, OK)] = 0.0
        self._requests.counts[(service, ERROR)] = 0.0
        self.registry.register(self._requests)

    # -- lifecycle (the rest is LoopbackThreadServer's) --------------------------------------

    def open(self) -> tuple[WSGIServer, threading.Thread]:
        return start_http_server(0, addr="127.0.0.1", registry=self.registry)

    @property
    def address(self) -> str:
        """host:port, as a Prometheus static_config target wants it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    # -- the counters ------------------------------------------------------------------------

    def add_requests(
        self, code: int | str, amount: float = 1, *, service: str | None = None
    ) -> None:
        """http_requests_total{service=..., code=...} += amount (the series is made if new)."""
        if amount < 0:
            raise ValueError(f"a counter only goes up, not by {amount}")
        key = (service or self.service, str(code))
        with self._requests.lock:
            self._requests.counts[key] = self._requests.counts.get(key, 0.0) + amount

    def add(self, ok: float = 0, errors: float = 0) -> None:
        """Count `ok` requests answered 200 and `errors` answered 500, for this service."""
        self.add_requests(OK, ok)
        self.add_requests(ERROR, errors)

    def value(self, code: int | str, *, service: str | None = None) -> float:
        with self._requests.lock:
            return self._requests.counts.get((service or self.service, str(code)), 0.0)

    def reset(self) -> None:
        """Every series back to 0: a counter reset, as when the service restarts."""
        with self._requests.lock:
            for key in self._requests.counts:
                self._requests.counts[key] = 0.0


__all__ = ["ERROR", "METRIC", "OK", "MetricsTarget"]
