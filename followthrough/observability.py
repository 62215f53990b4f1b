"""What the long-running processes (worker, api, up) tell operators beyond their logs.

- The Temporal SDK's own metrics (workflow and activity counts and latencies, task slots, polls,
  RPCs) served for Prometheus at FOLLOWTHROUGH_WORKER_METRICS_ADDRESS by processes that run a
  worker.
- OpenTelemetry traces of client calls, workflows and activities, sent over OTLP/HTTP to
  FOLLOWTHROUGH_OTEL_ENDPOINT. The trace context travels in Temporal headers, so a postmortem
  started by the API and run by a worker is one trace.
- The SDK Core's own log lines (Rust) go through Python logging, so FOLLOWTHROUGH_LOG_JSON
  renders them as JSON like everything else instead of Core printing plain text to stderr.

Short CLI commands keep the SDK's defaults: they leave with os._exit and export nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from followthrough.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.client import Interceptor


class TelemetryError(ValueError):
    """A telemetry setting that cannot work; the message names the variable."""


@dataclass
class Telemetry:
    """The runtime and interceptors a process's Temporal client is connected with."""

    runtime: Runtime
    tracer_provider: TracerProvider | None = None
    interceptors: Sequence[Interceptor] = field(init=False)

    def __post_init__(self) -> None:
        self.interceptors = (
            [] if self.tracer_provider is None else [tracing_interceptor(self.tracer_provider)]
        )

    def close(self) -> None:
        """Send the spans still buffered; the process is about to end."""
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()


def process_telemetry(settings: Settings, *, service: str, runs_worker: bool) -> Telemetry:
    """Telemetry for `followthrough worker`, `api` or `up` (service names the process)."""
    metrics_address = settings.worker_metrics_address if runs_worker else None
    runtime = temporal_runtime(metrics_address or None)
    tracer_provider = (
        otlp_tracer_provider(settings.otel_endpoint, service) if settings.otel_endpoint else None
    )
    return Telemetry(runtime, tracer_provider)


def temporal_runtime(metrics_address: str | None) -> Runtime:
    """One SDK runtime per process: Core's logs forwarded to Python logging, and, given an
    address, the SDK's metrics served there for Prometheus (names as in Temporal's SDK metrics
    reference with the `temporal_` prefix, latencies in milliseconds)."""
    core_logs = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),  # the SDK's default
        forwarding=LogForwardingConfig(
            logger=logging.getLogger("temporalio.core"),
            append_target_to_name=False,
            append_log_fields_to_message=False,  # followthrough.logging makes them fields
        ),
    )
    metrics = PrometheusConfig(bind_address=metrics_address) if metrics_address else None
    try:
        return Runtime(telemetry=TelemetryConfig(logging=core_logs, metrics=metrics))
    except ValueError as err:  # a busy port, or not an IP:port
        setting = f"FOLLOWTHROUGH_WORKER_METRICS_ADDRESS={metrics_address}"
        raise TelemetryError(f"{setting}: {err}") from None


def otlp_tracer_provider(endpoint: str, service: str) -> TracerProvider:
    """Spans batched to an OTLP/HTTP collector; the exporter's own OTEL_EXPORTER_OTLP_*
    variables (headers, certificate, timeout, compression) still apply."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME, when set, names the process instead (Resource.create reads it).
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service}
    provider = TracerProvider(resource=Resource.create(attributes))
    # Like OTEL_EXPORTER_OTLP_ENDPOINT, the setting is the collector's base URL.
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def tracing_interceptor(tracer_provider: TracerProvider) -> Interceptor:
    """Temporal's tracing interceptor, on the client so workers built from it trace too.

    Workflow spans are made even when the start had no span of ours (a schedule, the CLI, the
    Temporal UI): operators want the council digest's runs traced as much as a webhook's.
    """
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return TracingInterceptor(
        tracer_provider.get_tracer("followthrough"), always_create_workflow_spans=True
    )
