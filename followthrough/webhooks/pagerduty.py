"""PagerDuty V3 webhooks (developer.pagerduty.com/docs/webhooks).

Signed: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256(secret, body)>`, several comma-separated
while a secret is rotated. Delivery id: `X-Webhook-Id`. A resolution is the event type
`incident.resolved`; its `occurred_at` is the resolution time (the incident has no resolved_at).

Every PagerDuty incident is a page, so `incident.triggered`, `incident.acknowledged` and
`incident.resolved` are also kept as alert events, keyed by the incident's id and `created_at`:
the page's service, its priority (else urgency) as severity, paged when its urgency is high (low
urgency notifies without paging), acknowledged once an `incident.acknowledged` arrived.
"""

from __future__ import annotations

from datetime import datetime

from followthrough.domain.alert_quality import AlertEvent, AlertStatus
from followthrough.domain.bounds import one_line
from followthrough.domain.limits import NAME_CHARS
from followthrough.domain.policy import Policy
from followthrough.webhooks.base import (
    AlertEvents,
    Headers,
    NotResolution,
    Reported,
    VendorSource,
    alert_ended,
    alert_time,
    incident_id,
    one_alert,
)
from followthrough.webhooks.fields import Fields
from followthrough.webhooks.signatures import (
    check_hex_signatures,
    hmac_sha256,
    optional_header,
    raw,
    required_header,
)

SIGNATURE = "X-PagerDuty-Signature"

# The events about a page's status: its alert status, and whether it says it was acknowledged.
ALERT_EVENTS: dict[str, tuple[AlertStatus, bool | None]] = {
    "incident.triggered": ("firing", None),
    "incident.acknowledged": ("firing", True),
    "incident.resolved": ("resolved", None),
}


class PagerDuty(VendorSource):
    name = "pagerduty"

    def verify(self, headers: Headers, body: bytes, secret: str, now: datetime) -> None:
        signatures = required_header(headers, SIGNATURE)
        check_hex_signatures(signatures, hmac_sha256(raw(secret), body), SIGNATURE, prefix="v1=")

    def delivery_id(self, headers: Headers) -> str | None:
        return optional_header(headers, "X-Webhook-Id")

    def read(self, payload: Fields) -> Reported | NotResolution:
        event = payload.obj("event")
        event_type = event.text("event_type")
        if event_type != "incident.resolved":
            return NotResolution(f"pagerduty event {event_type} is not a resolution")
        incident = event.obj("data")
        # The priority (P1..P5) is the finer scale, but accounts may not use priorities;
        # every incident has an urgency.
        priority = incident.maybe_obj("priority")
        severity = priority.maybe_value("summary") if priority else None
        service = incident.maybe_obj("service")
        return Reported(
            id=incident.text("id"),
            title=incident.text("title"),
            severities=[severity or incident.value("urgency")],
            resolved_at=event.time("occurred_at"),
            started_at=incident.maybe_time("created_at"),
            services=[service.text("summary")] if service else [],
            url=incident.maybe_text("html_url"),
        )

    def alert_events(self, payload: Fields, policy: Policy, received_at: datetime) -> AlertEvents:
        event = payload.obj("event")
        found = ALERT_EVENTS.get(event.text("event_type"))
        if found is None:
            return AlertEvents()
        status, acknowledged = found

        def read() -> AlertEvent:
            incident = event.obj("data")
            starts_at = alert_time(
                incident.time("created_at"), incident.where("created_at"), received_at
            )
            ends_at = None
            if status == "resolved":
                ends_at = alert_time(
                    event.time("occurred_at"), event.where("occurred_at"), received_at
                )
            priority = incident.maybe_obj("priority")
            urgency = incident.maybe_text("urgency")
            severity = (priority.maybe_text("summary") if priority else None) or urgency
            service = incident.maybe_obj("service")
            named = service.maybe_text("summary") if service else None
            return AlertEvent(
                source=self.name,
                fingerprint=incident_id(incident.text("id")),
                name=one_line(incident.text("title"), NAME_CHARS),
                service=policy.alerts.service_names.get(named, named) if named else None,
                severity=one_line(severity, NAME_CHARS) if severity else None,
                status=status,
                starts_at=starts_at,
                ends_at=alert_ended(starts_at, ends_at),
                received_at=received_at,
                paged=None if urgency is None else urgency == "high",
                acknowledged=acknowledged,
            )

        return one_alert(read)
