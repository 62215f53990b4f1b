"""Opsgenie alert webhooks (the Webhook integration's "alert action data").

Opsgenie does not sign its webhooks: the secret is a token the integration sends, as a custom
header `Authorization: Bearer <secret>` or as Basic auth whose password is the secret. A
resolution is the action `Close`. `alert.updatedAt` is in epoch nanoseconds (the close, for a
Close), `alert.createdAt` in epoch milliseconds. Opsgenie sends no delivery id.

The actions Create, Acknowledge and Close are also kept as alert events, keyed by the alert's
`alertId` and `createdAt`: its message as the name, its entity or `service:` tag as the service,
its priority as the severity (only Create carries it for sure; a later action fills it in when
the Create was missed), acknowledged once an Acknowledge arrived.

An Opsgenie alert is an alert, not yet an incident: a Close starts a postmortem only when the
policy's `alerts.postmortem_when` names it, as for Alertmanager (its tags `key:value` or `key=value`
read as labels, its priority as the `severity` label); otherwise the close is kept for the
alert-quality review alone.
"""

from __future__ import annotations

from datetime import datetime

from followthrough.domain.alert_quality import (
    AlertEvent,
    AlertStatus,
    postmortem_rule,
    starts_postmortem,
)
from followthrough.domain.bounds import one_line
from followthrough.domain.incident import Incident
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

# The actions about an alert's status: its alert status, and whether it says it was acknowledged.
ALERT_ACTIONS: dict[str, tuple[AlertStatus, bool | None]] = {
    "Create": ("firing", None),
    "Acknowledge": ("firing", True),
    "Close": ("resolved", None),
}


class Opsgenie(VendorSource):
    name = "opsgenie"

    def verify(self, headers: Headers, body: bytes, secret: str, now: datetime) -> None:
        check_token(headers, secret)

    def interpret(self, payload: Fields, policy: Policy) -> Incident | NotResolution:
        """A closed alert is an incident only when the policy's `alerts.postmortem_when` says so."""
        if payload.text("action") == "Close":
            rule = policy.alerts.postmortem_when
            if not starts_postmortem([_labels(payload.obj("alert"))], rule):
                return NotResolution(
                    f"{self.name} alert closed; it is kept for the alert-quality review, and no "
                    f"postmortem starts: alerts.postmortem_when ({postmortem_rule(rule)}) does "
                    "not match its tags or priority"
                )
        return super().interpret(payload, policy)

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

    def alert_events(self, payload: Fields, policy: Policy, received_at: datetime) -> AlertEvents:
        action = payload.text("action")
        found = ALERT_ACTIONS.get(action)
        if found is None:
            return AlertEvents()
        status, acknowledged = found

        def read() -> AlertEvent:
            alert = payload.obj("alert")
            starts_at = alert_time(
                alert.epoch("createdAt", MILLISECONDS), alert.where("createdAt"), received_at
            )
            ends_at = None
            if status == "resolved":
                ends_at = alert_time(
                    alert.epoch("updatedAt", NANOSECONDS), alert.where("updatedAt"), received_at
                )
            priority = alert.maybe_text("priority")
            if priority is None and action == "Create":
                priority = DEFAULT_PRIORITY
            services = _services(alert)
            named = one_line(services[0], NAME_CHARS) if services else None
            return AlertEvent(
                source=self.name,
                fingerprint=incident_id(alert.text("alertId")),
                name=one_line(alert.text("message"), NAME_CHARS),
                service=policy.alerts.service_names.get(named, named) if named else None,
                severity=one_line(priority, NAME_CHARS) if priority else None,
                status=status,
                starts_at=starts_at,
                ends_at=alert_ended(starts_at, ends_at),
                received_at=received_at,
                acknowledged=acknowledged,
            )

        return one_alert(read)


def _services(alert: Fields) -> list[str]:
    entity = alert.maybe_text("entity")
    tagged = [
        tag[len(prefix) :].strip()
        for tag in alert.strings("tags")
        for prefix in SERVICE_TAG_PREFIXES
        if tag.startswith(prefix) and tag[len(prefix) :].strip()
    ]
    return ([entity] if entity else []) + tagged


def _labels(alert: Fields) -> dict[str, str]:
    """The alert's tags as labels (`key:value`, `key=value`; a bare tag is a label with no
    value) and its priority as `severity`, for the policy's `alerts.postmortem_when`."""
    labels: dict[str, str] = {}
    for tag in alert.strings("tags"):
        key, _, value = tag.replace("=", ":", 1).partition(":")
        labels.setdefault(key.strip(), value.strip())
    labels["severity"] = alert.maybe_text("priority") or DEFAULT_PRIORITY
    return labels
