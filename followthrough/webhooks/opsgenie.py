"""Opsgenie alert webhooks (the Webhook integration's "alert action data").

Opsgenie does not sign its webhooks: the secret is a token the integration sends, as a custom
header `Authorization: Bearer <secret>` or as Basic auth whose password is the secret. A
resolution is the action `Close`. `alert.updatedAt` is in epoch nanoseconds (the close, for a
Close), `alert.createdAt` in epoch milliseconds. Opsgenie sends no delivery id.
"""

from __future__ import annotations

from datetime import datetime

from followthrough.webhooks.base import Headers, NotResolution, Reported, VendorSource
from followthrough.webhooks.fields import Fields, FieldValue
from followthrough.webhooks.signatures import check_token

NANOSECONDS = 10**9
MILLISECONDS = 1000

# Every Opsgenie alert has a priority, P3 unless set; the documented sample action data leaves
# the field out, so a payload without it is an alert at the default.
DEFAULT_PRIORITY = "P3"

# Opsgenie has no service field; the entity names "the domain of the alert", and tags such as
# service:checkout (or service=checkout, as Alertmanager's label tags look) name services too.
SERVICE_TAG_PREFIXES = ("service:", "service=")


class Opsgenie(VendorSource):
    name = "opsgenie"

    def verify(self, headers: Headers, body: bytes, secret: str, now: datetime) -> None:
        check_token(headers, secret)

    def read(self, payload: Fields) -> Reported | NotResolution:
        action = payload.text("action")
        if action != "Close":
            return NotResolution(f"opsgenie action {action} is not a resolution")
        alert = payload.obj("alert")
        return Reported(
            id=alert.text("alertId"),
            title=alert.text("message"),
            severities=[
                alert.maybe_value("priority")
                or FieldValue(DEFAULT_PRIORITY, alert.where("priority"))
            ],
            resolved_at=alert.epoch("updatedAt", NANOSECONDS),
            started_at=alert.maybe_epoch("createdAt", MILLISECONDS),
            services=_services(alert),
            summary=alert.maybe_text("description") or "",
            labels=alert.strings("tags"),
        )


def _services(alert: Fields) -> list[str]:
    entity = alert.maybe_text("entity")
    tagged = [
        tag[len(prefix) :].strip()
        for tag in alert.strings("tags")
        for prefix in SERVICE_TAG_PREFIXES
        if tag.startswith(prefix) and tag[len(prefix) :].strip()
    ]
    return ([entity] if entity else []) + tagged
