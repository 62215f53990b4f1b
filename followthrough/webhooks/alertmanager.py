"""Prometheus Alertmanager's webhook (`webhook_config`, payload version 4), and Grafana
alerting's webhook contact point, which sends the same shape plus a few fields.

Alertmanager does not sign: its `http_config` sends the secret as `Authorization: Bearer
<secret>` or as Basic auth whose password is the secret. Grafana signs when its contact point
has an HMAC secret: `X-Grafana-Alerting-Signature` = hex HMAC-SHA256(secret, body), or of
`"{timestamp}:{body}"` when a timestamp header is configured, which we expect as
`X-Grafana-Alerting-Signature-Timestamp` (Unix seconds, within 5 minutes). Without a signature
header, Grafana must send the token like Alertmanager. Neither sends a delivery id.

A resolution is a notification with `status: resolved`, which Alertmanager sends only once
every alert of the group is resolved, and only when the policy makes the group an incident
(`alerts.postmortem_when`: by default an alert labelled `postmortem="true"`; a firing/resolved
pair is not an incident by itself). The group key names the group, not the episode: the next
time the same alert fires it is the same group key, so the incident id hashes the group key
with the episode's earliest `startsAt`. A notification delivered twice gives the same id.

Every notification, firing or resolved, also reports its alerts: each becomes an `AlertEvent`
keyed by the alert's fingerprint (a hash of its labels; ours of the sorted labels when an older
sender gives none) and its `startsAt`, so a repeat or a redelivery is the same episode. A
firing group starts no workflow; only the resolution of a group the policy names does.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from followthrough.domain.alert_quality import (
    AlertEvent,
    alert_service,
    postmortem_rule,
    starts_postmortem,
)
from followthrough.domain.bounds import one_line
from followthrough.domain.incident import Incident
from followthrough.domain.limits import ALERTS_PER_DELIVERY, ALERTS_REFUSED_NAMED, NAME_CHARS
from followthrough.domain.policy import Policy
from followthrough.webhooks.base import (
    AlertEvents,
    Headers,
    NotResolution,
    Reported,
    VendorSource,
    alert_ended,
    alert_time,
)
from followthrough.webhooks.errors import Malformed
from followthrough.webhooks.fields import Fields, FieldValue
from followthrough.webhooks.signatures import (
    check_hex_signatures,
    check_timestamp,
    check_token,
    header,
    hmac_sha256,
    raw,
    required_header,
)

GRAFANA_SIGNATURE = "X-Grafana-Alerting-Signature"
GRAFANA_TIMESTAMP = "X-Grafana-Alerting-Signature-Timestamp"


class Alertmanager(VendorSource):
    name = "alertmanager"
    id_prefix = "am-"

    def verify(self, headers: Headers, body: bytes, secret: str, now: datetime) -> None:
        check_token(headers, secret)

    def interpret(self, payload: Fields, policy: Policy) -> Incident | NotResolution:
        """A resolved group is an incident only when the policy's `alerts.postmortem_when`
        says so; otherwise its alerts are kept for the alert-quality review alone."""
        if payload.text("status") == "resolved":
            labels = [_label_values(alert.section("labels")) for alert in payload.objects("alerts")]
            rule = policy.alerts.postmortem_when
            if not starts_postmortem(labels, rule):
                return NotResolution(
                    f"{self.name} group resolved; its alerts are kept for the alert-quality "
                    f"review, and no postmortem starts: alerts.postmortem_when "
                    f"({postmortem_rule(rule)}) matches none of them"
                )
        return super().interpret(payload, policy)

    def read(self, payload: Fields) -> Reported | NotResolution:
        status = payload.text("status")
        if status != "resolved":
            return NotResolution(
                f"{self.name} notification with status {status} is not a resolution"
            )
        alerts = payload.objects("alerts")
        labels = [alert.section("labels") for alert in alerts]
        common_labels = payload.section("commonLabels")
        common_annotations = payload.section("commonAnnotations")
        started_at = min(alert.time("startsAt") for alert in alerts)
        return Reported(
            id=self.episode_id(payload.text("groupKey"), started_at),
            title=common_annotations.maybe_text("summary")
            or self.fallback_title(payload, common_labels, labels),
            severities=_severities(common_labels, labels),
            resolved_at=_ended_at(alerts),
            started_at=started_at,
            services=_services(labels),
            summary=common_annotations.maybe_text("description") or "",
            url=payload.maybe_text("externalURL"),
        )

    def alert_events(self, payload: Fields, policy: Policy, received_at: datetime) -> AlertEvents:
        alerts = payload.objects("alerts")
        found = AlertEvents(dropped=max(len(alerts) - ALERTS_PER_DELIVERY, 0))
        for alert in alerts[:ALERTS_PER_DELIVERY]:
            try:
                found.kept.append(self._alert_event(alert, policy, received_at))
            except Malformed as refused:
                # Refusing the whole notification would make Alertmanager resend it every
                # group_interval, and hold up the group's resolution with it.
                found.dropped += 1
                if len(found.refused) < ALERTS_REFUSED_NAMED:
                    found.refused.append(str(refused))
        return found

    def _alert_event(self, alert: Fields, policy: Policy, received_at: datetime) -> AlertEvent:
        labels = _label_values(alert.section("labels"))
        status = alert.text("status")
        if status not in ("firing", "resolved"):
            raise Malformed(f"{alert.where('status')}: must be firing or resolved, not {status!r}")
        starts_at = _within(alert, "startsAt", received_at)
        ends_at = alert.maybe_time("endsAt") if status == "resolved" else None
        if ends_at is not None and ends_at.year > 1:
            ends_at = _within(alert, "endsAt", received_at)
        else:
            ends_at = None  # a firing alert's endsAt is Go's zero time, not an end
        return AlertEvent(
            source=self.name,
            fingerprint=one_line(alert.maybe_text("fingerprint") or _fingerprint(labels), 128),
            name=labels.get("alertname") or "(unnamed)",
            service=alert_service(labels, policy.alerts),
            severity=labels.get("severity"),
            status=status,
            starts_at=starts_at,
            ends_at=alert_ended(starts_at, ends_at),
            received_at=received_at,
        )

    def episode_id(self, group_key: str, started_at: datetime) -> str:
        """One id per firing episode of a group, the same for every delivery of it."""
        episode = f"{group_key}|{started_at.astimezone(UTC).isoformat()}"
        return self.id_prefix + hashlib.sha256(raw(episode)).hexdigest()[:20]

    def fallback_title(self, payload: Fields, common_labels: Fields, labels: list[Fields]) -> str:
        return common_labels.maybe_text("alertname") or labels[0].text("alertname")


class Grafana(Alertmanager):
    name = "grafana"
    id_prefix = "grafana-"

    def verify(self, headers: Headers, body: bytes, secret: str, now: datetime) -> None:
        if header(headers, GRAFANA_SIGNATURE) is None:
            check_token(headers, secret)
            return
        signature = required_header(headers, GRAFANA_SIGNATURE)
        timestamp = header(headers, GRAFANA_TIMESTAMP)
        if timestamp is None:
            signed = body
        else:
            check_timestamp(timestamp.strip(), GRAFANA_TIMESTAMP, now)
            signed = raw(f"{timestamp.strip()}:") + body
        check_hex_signatures(signature, hmac_sha256(raw(secret), signed), GRAFANA_SIGNATURE)

    def fallback_title(self, payload: Fields, common_labels: Fields, labels: list[Fields]) -> str:
        # Grafana's own title reads like "[RESOLVED] High CPU (checkout)"; the alert name is
        # the cleaner title when every alert shares it.
        return common_labels.maybe_text("alertname") or payload.text("title")


def _severities(common_labels: Fields, labels: list[Fields]) -> list[FieldValue]:
    """The group's common severity, else every alert's (the worst will be the incident's); none
    when no alert has a severity label (most Grafana alerts): the policy's default applies."""
    common = common_labels.maybe_value("severity")
    if common is not None:
        return [common]
    return [found for alert in labels if (found := alert.maybe_value("severity")) is not None]


def _ended_at(alerts: list[Fields]) -> datetime:
    """The last alert's end. A firing alert's endsAt is Go's zero time (year 1), not an end."""
    ends = [at for alert in alerts if (at := alert.maybe_time("endsAt")) and at.year > 1]
    if not ends:
        raise Malformed("alerts[].endsAt: no alert of the resolved group has an end time")
    return max(ends)


def _services(labels: list[Fields]) -> list[str]:
    """The `service` labels; the `job` labels when no alert has a service label."""
    for name in ("service", "job"):
        found = [value for alert in labels if (value := alert.maybe_text(name))]
        if found:
            return found
    return []


def _label_values(labels: Fields) -> dict[str, str]:
    """The string labels, each value one line cut to NAME_CHARS (a label can be anything)."""
    return {
        str(name)[:NAME_CHARS]: one_line(value, NAME_CHARS)
        for name, value in labels.data.items()
        if isinstance(value, str) and value.strip()
    }


def _fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha256(raw(json.dumps(labels, sort_keys=True))).hexdigest()[:16]


def _within(alert: Fields, key: str, received_at: datetime) -> datetime:
    return alert_time(alert.time(key), alert.where(key), received_at)
