"""incident.io webhooks (api-docs.incident.io, Webhooks), delivered and signed by Svix.

Signed the Svix way: headers `webhook-id`, `webhook-timestamp` (Unix seconds, within 5 minutes)
and `webhook-signature`, a space-separated list of `v1,<base64 HMAC-SHA256>` over
`"{webhook-id}.{webhook-timestamp}.{body}"`. The key is the base64-decoded signing secret, after
its `whsec_` prefix when it has one (Svix's libraries accept the secret with or without it).
Delivery id: `webhook-id`, the same on Svix's retries.

A resolution is the incident leaving a `live` status for one in the `learning` or `closed`
category: `public_incident.incident_status_updated_v2` with that transition, or
`public_incident.incident_updated_v2` of an incident whose status is in one of those categories
(incident.io may send the latter for any later edit too; the incident id keeps that idempotent).
Private incidents' events carry only an id and are ignored.

incident.io's alerts (`public_alert.alert_created_v1`, `public_alert.alert_resolved_v1`, the
alert under the key named by the event type) are kept as alert events, keyed by the alert's id
and `created_at`: its title as the name, its attribute named like one of the policy's
`alerts.service_labels` as the service, its attribute `severity` (or `priority`) as the severity.
incident.io's alerts carry no acknowledgement (its escalations do, which are not read here).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from followthrough.domain.alert_quality import AlertEvent, AlertStatus
from followthrough.domain.bounds import one_line
from followthrough.domain.limits import NAME_CHARS
from followthrough.domain.policy import Policy
from followthrough.webhooks.base import (
    AlertEvents,
    Headers,
    Lead,
    NotResolution,
    Reported,
    VendorSource,
    alert_ended,
    alert_time,
    incident_id,
    one_alert,
)
from followthrough.webhooks.errors import Unauthorized
from followthrough.webhooks.fields import Fields
from followthrough.webhooks.signatures import (
    check_timestamp,
    hmac_sha256,
    optional_header,
    raw,
    required_header,
    same,
)

STATUS_UPDATED = "public_incident.incident_status_updated_v2"
INCIDENT_UPDATED = "public_incident.incident_updated_v2"
RESOLVED_CATEGORIES = ("learning", "closed")
ALERT_EVENTS: dict[str, AlertStatus] = {
    "public_alert.alert_created_v1": "firing",
    "public_alert.alert_resolved_v1": "resolved",
}
SEVERITY_ATTRIBUTES = ("severity", "priority")

# incident.io's default timestamps (names compared without case and a trailing " at") that are
# our milestones; an organisation may rename or add its own, which are then left out.
TIMESTAMP_MILESTONES = {
    "impact started": "started",
    "fixed": "mitigated",
    "resolved": "resolved",
}


class IncidentIo(VendorSource):
    name = "incidentio"

    def verify(self, headers: Headers, body: bytes, secret: str, now: datetime) -> None:
        message_id = required_header(headers, "webhook-id")
        timestamp = required_header(headers, "webhook-timestamp")
        signatures = required_header(headers, "webhook-signature")
        check_timestamp(timestamp, "webhook-timestamp", now)
        signed = raw(f"{message_id}.{timestamp}.") + body
        expected = base64.b64encode(hmac_sha256(_svix_key(secret), signed))
        offered = [
            signature
            for version, _, signature in (entry.partition(",") for entry in signatures.split())
            if version == "v1"
        ]
        if not offered:
            raise Unauthorized("webhook-signature holds no v1,<base64> signature")
        if not any(same(raw(signature), expected) for signature in offered):
            raise Unauthorized(
                "webhook-signature does not match (a different secret, or an altered body)"
            )

    def delivery_id(self, headers: Headers) -> str | None:
        return optional_header(headers, "webhook-id")

    def read(self, payload: Fields) -> Reported | NotResolution:
        event_type = payload.text("event_type")
        if event_type == STATUS_UPDATED:
            change = payload.obj(STATUS_UPDATED)
            before = change.obj("previous_status").text("category")
            after = change.obj("new_status").text("category")
            if before != "live" or after not in RESOLVED_CATEGORIES:
                return NotResolution(
                    f"incidentio status change from {before} to {after} is not a resolution"
                )
            incident = change.obj("incident")
        elif event_type == INCIDENT_UPDATED:
            incident = payload.obj(INCIDENT_UPDATED)
            category = incident.obj("incident_status").text("category")
            if category not in RESOLVED_CATEGORIES:
                return NotResolution(
                    f"incidentio incident update in the {category} status category "
                    "is not a resolution"
                )
        else:
            return NotResolution(f"incidentio event {event_type} is not a resolution")
        return _reported(incident)

    def alert_events(self, payload: Fields, policy: Policy, received_at: datetime) -> AlertEvents:
        event_type = payload.text("event_type")
        status = ALERT_EVENTS.get(event_type)
        if status is None:
            return AlertEvents()

        def read() -> AlertEvent:
            alert = payload.obj(event_type)
            starts_at = alert_time(alert.time("created_at"), alert.where("created_at"), received_at)
            ends_at = None
            if status == "resolved":
                key = "resolved_at" if alert.maybe_text("resolved_at") else "updated_at"
                ends_at = alert_time(alert.time(key), alert.where(key), received_at)
            attributes = _attributes(alert)
            labels = policy.alerts.service_labels
            named = next((attributes[k] for k in labels if attributes.get(k)), None)
            severity = next((attributes[k] for k in SEVERITY_ATTRIBUTES if k in attributes), None)
            return AlertEvent(
                source=self.name,
                fingerprint=incident_id(alert.text("id")),
                name=one_line(alert.text("title"), NAME_CHARS),
                service=policy.alerts.service_names.get(named, named) if named else None,
                severity=severity,
                status=status,
                starts_at=starts_at,
                ends_at=alert_ended(starts_at, ends_at),
                received_at=received_at,
            )

        return one_alert(read)


def _attributes(alert: Fields) -> dict[str, str]:
    """The alert's attributes by name (lower case): each one's label, literal or catalog
    entry's name, the first of an array's; one line, cut to NAME_CHARS."""
    found: dict[str, str] = {}
    for entry in alert.maybe_objects("attributes")[:50]:
        name = entry.obj("attribute").maybe_text("name")
        values = [entry.maybe_obj("value"), *entry.maybe_objects("array_value")[:1]]
        for value in values:
            if value is None:
                continue
            catalog = value.maybe_obj("catalog_entry")
            text = (
                value.maybe_text("label")
                or value.maybe_text("literal")
                or (catalog.maybe_text("name") if catalog else None)
            )
            if name and text:
                found.setdefault(name.casefold()[:NAME_CHARS], one_line(text, NAME_CHARS))
                break
    return found


def _svix_key(secret: str) -> bytes:
    try:
        key = base64.b64decode(secret.strip().removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise Unauthorized(
            "the configured incidentio secret is not a Svix signing secret "
            "(whsec_ followed by base64, as incident.io shows it)"
        )
    return key


def _reported(incident: Fields) -> Reported:
    milestones = _milestones(incident)
    return Reported(
        id=incident.text("id"),
        title=incident.text("name"),
        severities=[incident.obj("severity").value("name")],
        # "Resolved at" is set when the incident leaves live; without it, the update is the
        # closest time we have.
        resolved_at=milestones.get("resolved") or incident.time("updated_at"),
        started_at=milestones.get("started") or incident.maybe_time("created_at"),
        mitigated_at=milestones.get("mitigated"),
        services=_services(incident),
        summary=incident.maybe_text("summary") or "",
        url=incident.maybe_text("permalink"),
        lead=_lead(incident),
        chat_channel=incident.maybe_text("slack_channel_id"),
    )


def _milestones(incident: Fields) -> dict[str, datetime]:
    found = {}
    for entry in incident.maybe_objects("incident_timestamp_values"):
        name = entry.obj("incident_timestamp").text("name").casefold().removesuffix(" at")
        value = entry.maybe_obj("value")
        at = value.maybe_time("value") if value else None
        if name in TIMESTAMP_MILESTONES and at is not None:
            found[TIMESTAMP_MILESTONES[name]] = at
    return found


def _services(incident: Fields) -> list[str]:
    """The values of custom fields about services (e.g. "Affected services")."""
    services = []
    for entry in incident.maybe_objects("custom_field_entries"):
        if "service" not in entry.obj("custom_field").text("name").casefold():
            continue
        for value in entry.maybe_objects("values"):
            catalog_entry = value.maybe_obj("value_catalog_entry")
            option = value.maybe_obj("value_option")
            name = (
                (catalog_entry.maybe_text("name") if catalog_entry else None)
                or (option.maybe_text("value") if option else None)
                or value.maybe_text("value_text")
            )
            if name:
                services.append(name)
    return services


def _lead(incident: Fields) -> Lead | None:
    for assignment in incident.maybe_objects("incident_role_assignments"):
        assignee = assignment.maybe_obj("assignee")
        if assignee and assignment.obj("role").maybe_text("role_type") == "lead":
            return Lead(name=assignee.maybe_text("name"), email=assignee.maybe_text("email"))
    return None
