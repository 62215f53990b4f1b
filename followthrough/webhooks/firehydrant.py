"""FireHydrant incident webhooks (docs.firehydrant.com/docs/webhooks).

Signed: `fh-signature` = hex HMAC-SHA256(secret, body). FireHydrant sends no delivery id. Every
change to an incident is an `UPDATED` event with the whole incident; a resolution is one whose
`current_milestone` is `resolved`, resolved at that milestone's `occurred_at`. Later edits while
the incident stays resolved repeat it; the incident id keeps that idempotent.
"""

from __future__ import annotations

from datetime import datetime

from followthrough.webhooks.base import Headers, Lead, NotResolution, Reported, VendorSource
from followthrough.webhooks.fields import Fields
from followthrough.webhooks.signatures import (
    check_hex_signatures,
    hmac_sha256,
    raw,
    required_header,
)

SIGNATURE = "fh-signature"

# FireHydrant milestones that are ours under the same name (it also has investigating,
# identified, postmortem_started, ...).
MILESTONES = ("started", "detected", "acknowledged", "mitigated", "resolved")


class FireHydrant(VendorSource):
    name = "firehydrant"

    def verify(self, headers: Headers, body: bytes, secret: str, now: datetime) -> None:
        signature = required_header(headers, SIGNATURE)
        check_hex_signatures(signature, hmac_sha256(raw(secret), body), SIGNATURE)

    def read(self, payload: Fields) -> Reported | NotResolution:
        event = payload.obj("event")
        resource, operation = event.text("resource_type"), event.text("operation")
        if resource != "incident" or operation.upper() != "UPDATED":
            return NotResolution(f"firehydrant {resource} {operation} event is not a resolution")
        incident = payload.obj("data").obj("incident")
        milestone = incident.text("current_milestone")
        if milestone != "resolved":
            return NotResolution(
                f"firehydrant incident at milestone {milestone} is not a resolution"
            )
        milestones = _milestones(incident)
        return Reported(
            id=incident.text("id"),
            title=incident.text("name"),
            severities=[incident.obj("severity").value("slug")],
            # Without a resolved milestone entry, the update that made it current is the time.
            resolved_at=milestones.get("resolved") or incident.time("updated_at"),
            started_at=milestones.get("started") or incident.maybe_time("started_at"),
            detected_at=milestones.get("detected"),
            acknowledged_at=milestones.get("acknowledged"),
            mitigated_at=milestones.get("mitigated"),
            services=[
                impact.obj("impact").text("name")
                for impact in incident.maybe_objects("impacts")
                if impact.maybe_text("type") == "service"
            ],
            summary=incident.maybe_text("summary") or incident.maybe_text("description") or "",
            lead=_commander(incident),
            chat_channel=_slack_channel(incident),
        )


def _milestones(incident: Fields) -> dict[str, datetime]:
    found = {}
    for milestone in incident.maybe_objects("milestones"):
        kind = milestone.maybe_text("type")
        at = milestone.maybe_time("occurred_at")
        if kind in MILESTONES and at is not None:
            found[kind] = at
    return found


def _commander(incident: Fields) -> Lead | None:
    for assignment in incident.maybe_objects("role_assignments"):
        role = assignment.maybe_obj("incident_role")
        user = assignment.maybe_obj("user")
        if role and user and "commander" in (role.maybe_text("name") or "").casefold():
            return Lead(name=user.maybe_text("name"), email=user.maybe_text("email"))
    return None


def _slack_channel(incident: Fields) -> str | None:
    """The id of the incident's Slack channel among its `incident_channels`."""
    for channel in incident.maybe_objects("incident_channels"):
        if channel.maybe_text("source") == "slack":
            return channel.maybe_text("id")
    return None
