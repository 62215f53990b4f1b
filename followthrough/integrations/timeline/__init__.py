"""Timeline collectors: each reads one source of an incident's events (issue 18).

A collector is a small class with a `source` name, `applies_to(incident)` and a blocking
`collect(incident) -> list[CollectedEvent]` that uses the vendor's own client library over HTTP.
It raises `SourceUnavailable` for what may pass (network, 5xx, 429 after waiting out its
Retry-After) and `SourceRefused` for what will not (401/403/404, a bad token): the collection
activity turns either into a `SourceReport` on the draft, never a failed postmortem.
`configured_collectors(settings)` lists those the settings configure; each module adds its line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from followthrough.domain.incident import Incident
from followthrough.domain.timeline import CollectedEvent

if TYPE_CHECKING:
    from followthrough.settings import Settings


class SourceUnavailable(Exception):
    """The source could not answer now; collecting again later may succeed."""


class SourceRefused(Exception):
    """The source refused for good (credentials, permissions, no such incident)."""


class Collector(Protocol):
    source: str

    def applies_to(self, incident: Incident) -> bool:
        """Whether this source knows anything of the incident (e.g. PagerDuty's own incidents)."""
        ...

    def collect(self, incident: Incident) -> list[CollectedEvent]:
        """The incident's events, oldest first, at most EVENTS_PER_SOURCE_MOST."""
        ...


def configured_collectors(settings: Settings) -> list[Collector]:
    """The collectors the settings configure (tokens, URLs); the others report not_configured.
    Each module is imported only when configured: a vendor's SDK can take seconds to import."""
    collectors: list[Collector] = []
    if settings.pagerduty_api_token:
        from followthrough.integrations.timeline.pagerduty import PagerDutyCollector

        collectors.append(
            PagerDutyCollector(settings.pagerduty_api_token, settings.pagerduty_api_url)
        )
    if settings.opsgenie_api_key:
        from followthrough.integrations.timeline.opsgenie import OpsgenieCollector

        collectors.append(OpsgenieCollector(settings.opsgenie_api_key, settings.opsgenie_api_url))
    if settings.incident_io_api_key:
        from followthrough.integrations.timeline.incident_io import IncidentIoCollector

        collectors.append(
            IncidentIoCollector(settings.incident_io_api_key, settings.incident_io_url)
        )
    if settings.firehydrant_api_key:
        from followthrough.integrations.timeline.firehydrant import FireHydrantCollector

        collectors.append(
            FireHydrantCollector(settings.firehydrant_api_key, settings.firehydrant_url)
        )
    if settings.slack_bot_token:
        from followthrough.integrations.timeline import slack_chat

        collectors += slack_chat.configured(settings)
    if settings.prometheus_url:
        # Imported here, as the others: it imports this module.
        from followthrough.integrations.timeline.prometheus import PrometheusAlerts

        collectors.append(PrometheusAlerts(settings.prometheus_url, settings.alerts_service_label))
    return collectors
