"""What every webhook source shares: the outcomes, the source interface, and the step from what
a vendor reported to our normalized `Incident`, where the policy is applied once for all."""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from pydantic import ValidationError

from followthrough.domain.alert_quality import AlertEvent
from followthrough.domain.bounds import cut, one_line
from followthrough.domain.incident import Incident, UnmappedSeverity, incident_problems
from followthrough.domain.limits import (
    EARLIEST_DATE,
    FUTURE_SKEW_HOURS,
    LIST_ENTRIES,
    LONG_TEXT_CHARS,
    NAME_CHARS,
    UNMAPPED_SEVERITIES_PER_INCIDENT,
    URL_CHARS,
)
from followthrough.domain.policy import SLACK_CHANNEL, Policy
from followthrough.domain.problems import format_validation_error
from followthrough.webhooks.errors import Malformed
from followthrough.webhooks.fields import Fields, FieldValue

# Request headers as given (starlette's Headers or a plain dict); sources look names up
# ignoring case.
Headers = Mapping[str, str]


@dataclass(frozen=True)
class Resolved:
    """An authenticated resolution: start (or find) the incident's postmortem."""

    incident: Incident
    delivery_id: str | None
    alerts: tuple[AlertEvent, ...] = ()  # the alert events it reports, to keep
    alerts_dropped: int = 0  # past ALERTS_PER_DELIVERY or refused, counted, not kept
    alerts_refused: tuple[str, ...] = ()  # why alerts were refused (the first few), by field


@dataclass(frozen=True)
class Ignored:
    """An authenticated, valid event that is not a resolution (a trigger, an acknowledgement)."""

    reason: str
    delivery_id: str | None
    alerts: tuple[AlertEvent, ...] = ()  # the alert events it reports, to keep
    alerts_dropped: int = 0  # past ALERTS_PER_DELIVERY or refused, counted, not kept
    alerts_refused: tuple[str, ...] = ()  # why alerts were refused (the first few), by field


@dataclass(frozen=True)
class NotResolution:
    """Why a genuine event does not resolve an incident, in words."""

    reason: str


@dataclass(frozen=True)
class Lead:
    """The incident lead or commander as the vendor names them."""

    name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Reported:
    """What a vendor said about a resolved incident, before the policy is applied."""

    id: str
    title: str
    # The incident's severity is the worst of these once each is mapped through the policy;
    # most vendors give one value, an Alertmanager group one per alert.
    severities: list[FieldValue]
    resolved_at: datetime
    services: list[str] = field(default_factory=list)
    started_at: datetime | None = None
    detected_at: datetime | None = None
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    summary: str = ""
    url: str | None = None
    lead: Lead | None = None
    chat_channel: str | None = None  # the incident's Slack channel id, when the vendor names it
    labels: list[str] = field(default_factory=list)  # its tags, e.g. "security" (`restricted`)


class WebhookSource(ABC):
    """One tool that reports resolved incidents. Adding a tool means adding one subclass."""

    name: ClassVar[str]

    @abstractmethod
    def verify(self, headers: Headers, body: bytes, secret: str, now: datetime) -> None:
        """Raise Unauthorized unless the raw request comes from the holder of `secret`."""

    @abstractmethod
    def interpret(self, payload: Fields, policy: Policy) -> Incident | NotResolution:
        """The normalized incident the verified payload resolves, or why it resolves none."""

    def delivery_id(self, headers: Headers) -> str | None:
        """The vendor's id for this delivery, repeated on its retries; None when it sends none."""
        return None

    def alert_events(self, payload: Fields, policy: Policy, received_at: datetime) -> AlertEvents:
        """The alert events the verified payload reports (none for most sources)."""
        return AlertEvents()


@dataclass
class AlertEvents:
    """A notification's alerts: those kept (at most ALERTS_PER_DELIVERY), how many were not,
    and why each refused one was (the first few). An alert that cannot be kept is refused alone:
    the rest of the notification, and its resolution, still count."""

    kept: list[AlertEvent] = field(default_factory=list)
    dropped: int = 0
    refused: list[str] = field(default_factory=list)


def one_alert(read: Callable[[], AlertEvent | None]) -> AlertEvents:
    """The alert event of a notification about one alert (PagerDuty, Opsgenie, incident.io), or
    none when it is not about an alert's status. One that cannot be read is refused alone,
    naming its field: the delivery (and the resolution it may carry) still counts."""
    try:
        event = read()
    except Malformed as refused:
        return AlertEvents(dropped=1, refused=[str(refused)])
    return AlertEvents(kept=[] if event is None else [event])


def alert_time(at: datetime, where: str, received_at: datetime) -> datetime:
    """An alert's time, refused (naming it) before 2000 or more than a day ahead."""
    earliest = datetime(EARLIEST_DATE.year, EARLIEST_DATE.month, EARLIEST_DATE.day, tzinfo=UTC)
    if not earliest <= at <= received_at + timedelta(hours=FUTURE_SKEW_HOURS):
        raise Malformed(
            f"{where}: {at.isoformat()} is not between {earliest.date()} and a day from now"
        )
    return at


def alert_ended(starts_at: datetime, ends_at: datetime | None) -> datetime | None:
    """The end, when there is one and it is not before the start (clocks disagree)."""
    return ends_at if ends_at is not None and ends_at >= starts_at else None


class VendorSource(WebhookSource):
    """A vendor's format: read what it reported, then apply the policy the same way for all."""

    @abstractmethod
    def read(self, payload: Fields) -> Reported | NotResolution:
        """The vendor's facts about the resolved incident, or why this event is not one."""

    def interpret(self, payload: Fields, policy: Policy) -> Incident | NotResolution:
        reported = self.read(payload)
        if isinstance(reported, NotResolution):
            return reported
        return normalize(self.name, reported, policy)


def normalize(source: str, reported: Reported, policy: Policy) -> Incident:
    """Our incident from the vendor's facts: severity and commander through the policy.

    The title is made one line and the summary cut to fit (an authentic delivery is never dropped
    for its wording); what still does not fit the limits, such as a date out of range, is refused.
    """
    severity, unmapped = worst_severity(source, reported.severities, policy)
    try:
        incident = Incident(
            id=incident_id(reported.id),
            title=one_line(reported.title),
            severity=severity,
            unmapped_severities=unmapped,
            resolved_at=reported.resolved_at,
            source=source,
            services=list(dict.fromkeys(one_line(s, NAME_CHARS) for s in reported.services)),
            started_at=reported.started_at,
            detected_at=reported.detected_at,
            acknowledged_at=reported.acknowledged_at,
            mitigated_at=reported.mitigated_at,
            commander=person_in_policy(reported.lead, policy),
            summary=cut(reported.summary, LONG_TEXT_CHARS),
            url=_fitting_url(reported.url),
            chat_channel=_fitting_channel(reported.chat_channel),
            # Each made one line and cut to fit; past LIST_ENTRIES the rest are not kept.
            labels=list(dict.fromkeys(one_line(t, NAME_CHARS) for t in reported.labels))[
                :LIST_ENTRIES
            ],
        )
    except ValidationError as err:
        raise Malformed("; ".join(format_validation_error(err))) from None
    problems = incident_problems(incident, policy)
    if problems:
        raise Malformed("; ".join(problems))
    return incident


def _fitting_url(url: str | None) -> str | None:
    """The vendor's link to the incident, left out when it is not one short line (it is a
    convenience; the incident is kept without it)."""
    return url if url is not None and url == one_line(url, URL_CHARS) else None


def _fitting_channel(channel: str | None) -> str | None:
    """The vendor's Slack channel id, left out when it is not one (a convenience, as the URL is:
    the chat collector then looks for the channel by the policy's pattern)."""
    return channel if channel is not None and re.fullmatch(SLACK_CHANNEL, channel) else None


_FITTING_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_UNFIT_CHARACTERS = re.compile(r"[^A-Za-z0-9._:-]+")


def incident_id(vendor_id: str) -> str:
    """The vendor's id when it fits our id pattern; else a readable form plus a hash of the
    original, so two vendor ids that clean up alike still get different incident ids."""
    if _FITTING_ID.match(vendor_id):
        return vendor_id
    readable = _UNFIT_CHARACTERS.sub("-", vendor_id).strip("-._:")[:100]
    digest = hashlib.sha256(vendor_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{readable}-{digest}" if readable else f"h-{digest}"


def worst_severity(
    source: str, values: list[FieldValue], policy: Policy
) -> tuple[str, list[UnmappedSeverity]]:
    """Each vendor value mapped through `source_severities[source]`; the worst one wins.

    A value the policy does not map, or no value at all, counts as the source's default severity
    and comes back marked: an authentic delivery is never dropped for a gap in the policy.
    """
    mapping = policy.source_severities.get(source, {})
    default = policy.default_severity_for(source)
    mapped = [mapping[value.text] for value in values if value.text in mapping]
    gaps = [one_line(value.text, NAME_CHARS) for value in values if value.text not in mapping]
    unmapped = [
        UnmappedSeverity(source=source, value=value, default=default)
        for value in list(dict.fromkeys(gaps))[:UNMAPPED_SEVERITIES_PER_INCIDENT]
    ]
    if not values:
        unmapped = [UnmappedSeverity(source=source, value=None, default=default)]
    if unmapped:
        mapped.append(default)
    ranking = list(policy.severities)
    return min(mapped, key=ranking.index), unmapped


def person_in_policy(lead: Lead | None, policy: Policy) -> str | None:
    """The policy person the vendor's lead is, by email (their `emails` entry or
    person@email_domain) or by name; None when they are nobody the policy knows."""
    if lead is None:
        return None
    people = sorted(policy.people)
    if lead.email:
        email = lead.email.strip().casefold()
        for person in people:
            addresses = {policy.email_of(person), f"{person}@{policy.email_domain}"}
            if email in {address.casefold() for address in addresses}:
                return person
    if lead.name:
        name = lead.name.strip().casefold()
        for person in people:
            if person.casefold() == name:
                return person
    return None
