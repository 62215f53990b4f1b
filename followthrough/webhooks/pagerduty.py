"""PagerDuty V3 webhooks (developer.pagerduty.com/docs/webhooks).

Signed: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256(secret, body)>`, several comma-separated
while a secret is rotated. Delivery id: `X-Webhook-Id`. A resolution is the event type
`incident.resolved`; its `occurred_at` is the resolution time (the incident has no resolved_at).
"""

from __future__ import annotations

from datetime import datetime

from followthrough.webhooks.base import Headers, NotResolution, Reported, VendorSource
from followthrough.webhooks.fields import Fields
from followthrough.webhooks.signatures import (
    check_hex_signatures,
    hmac_sha256,
    optional_header,
    raw,
    required_header,
)

SIGNATURE = "X-PagerDuty-Signature"


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
