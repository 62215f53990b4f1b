"""Resolved-incident webhooks: verify a request, then turn it into our normalized `Incident`.

    result = receive(source, headers, body, secret, policy, now)   # Resolved | Ignored

`receive` first authenticates the raw bytes (signature, or token for the senders that cannot
sign), so nothing a forged request sends is ever parsed; then it reads the vendor's JSON and
applies the policy: the vendor's severity through `source_severities[source]`, the incident
lead as commander when the policy knows them, and every check `incident_problems` makes.
It raises `Unauthorized` (401) or `Malformed` (422), both `WebhookRejected` with a `status`.
Alertmanager and Grafana notifications, firing or resolved, and PagerDuty's, Opsgenie's and
incident.io's notifications about a page or an alert (triggered, acknowledged, resolved), also
carry their alerts as alert events (`result.alerts`), which the API keeps without starting
anything for them. A resolved Alertmanager or Grafana group is a resolution only when the
policy's `alerts.postmortem_when` names it.

Each source is one small class (see `base.WebhookSource`) in its own module, with the vendor's
documented format and signature scheme in the module's docstring; `SOURCES` lists them by the
name used in the URL and in `Incident.source`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from followthrough.domain.policy import Policy
from followthrough.webhooks.alertmanager import Alertmanager, Grafana
from followthrough.webhooks.base import Ignored, NotResolution, Resolved, WebhookSource
from followthrough.webhooks.errors import Malformed, Unauthorized, WebhookRejected
from followthrough.webhooks.fields import parse_body
from followthrough.webhooks.firehydrant import FireHydrant
from followthrough.webhooks.generic import Generic, sign_generic
from followthrough.webhooks.incidentio import IncidentIo
from followthrough.webhooks.opsgenie import Opsgenie
from followthrough.webhooks.pagerduty import PagerDuty

__all__ = [
    "SOURCES",
    "Ignored",
    "Malformed",
    "Resolved",
    "Unauthorized",
    "WebhookRejected",
    "WebhookSource",
    "receive",
    "sign_generic",
]

SOURCES: dict[str, WebhookSource] = {
    source.name: source
    for source in (
        PagerDuty(),
        Opsgenie(),
        IncidentIo(),
        Alertmanager(),
        Grafana(),
        FireHydrant(),
        Generic(),
    )
}


def receive(
    source: str,
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    policy: Policy,
    now: datetime,
) -> Resolved | Ignored:
    """The resolution a webhook request reports, or why it reports none; refusals raise."""
    handler = SOURCES.get(source)
    if handler is None:
        raise ValueError(f"unknown webhook source '{source}' (known: {', '.join(SOURCES)})")
    if not secret:
        # An empty key would make every signature computable by anyone.
        raise Unauthorized(f"no secret is configured for {source}, so nothing can be verified")
    handler.verify(headers, body, secret, now)
    delivery_id = handler.delivery_id(headers)
    payload = parse_body(body)
    alerts = handler.alert_events(payload, policy, now)
    kept, refused = tuple(alerts.kept), tuple(alerts.refused)
    outcome = handler.interpret(payload, policy)
    if isinstance(outcome, NotResolution):
        return Ignored(outcome.reason, delivery_id, kept, alerts.dropped, refused)
    return Resolved(outcome, delivery_id, kept, alerts.dropped, refused)
