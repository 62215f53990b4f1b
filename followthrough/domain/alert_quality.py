"""Alert events, and the monthly alert-quality review.

Alertmanager and Grafana tell us of every alert that fires and resolves, and PagerDuty, Opsgenie
and incident.io of every page or alert they raise, acknowledge and resolve; each is kept as an
`AlertEvent` (one per source, fingerprint and start, however often it is delivered, each later
status merged in by `merge_alert`). An alert pair is not an incident: a resolved Alertmanager or
Grafana group starts a postmortem only when `alerts.postmortem_when` says so
(`starts_postmortem`). Once a month the review reads the events beside the month's incidents
and answers the council's questions:

- which services the alerts and the pages come from, and whether one service stands behind
  `alerts.dominant_share` (80%) of the pages: its SLO should be stricter, or its alerting a
  multiwindow burn-rate alert on it;
- noisy alerts: resolved within `alerts.noisy_minutes`, no incident of their service while they
  fired, never acknowledged: proposed for retirement, for the council to decide;
- pages that burned no error budget: the page's incident recorded (its SLO review) less than
  `slo_review.negligible_budget` of each of its service's budgets: paged too early, so the page
  should come from the burn-rate rules the SLO review generates (domain/slo_rules.py);
- detection gaps: incidents of the month with no alert of their services firing before the
  incident was detected: an alert is missing.

Everything here is a pure function of its inputs; the figures are checked by hand in the tests.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # the policy imports this module, and the metrics import the policy
    from followthrough.domain.metrics import IncidentFacts

AlertStatus = Literal["firing", "resolved"]
Proposal = Literal["stricter_slo", "burn_rate_alerting", "retire", "add_alert"]

# 2000-01 to 2099-12, the dates the edge accepts anywhere (limits.EARLIEST_DATE, LATEST_DATE).
MONTH = re.compile(r"^(20\d{2})-(0[1-9]|1[0-2])$")

# An alert fired this long before an incident started still counts as the one that caught it
# (alerts often fire on the symptom a little before anyone writes down when it began).
CAUGHT_BEFORE = timedelta(hours=1)


class PostmortemWhen(BaseModel):
    """`alerts.postmortem_when`: which resolved alert groups are incidents worth a postmortem.
    A group is one when any of its alerts carries every one of `labels`, or a `severity` label
    in `severities`; `always` makes every resolved group one (Followthrough's first behaviour)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    always: bool = Field(
        default=False, description="every resolved group starts a postmortem, whatever it is"
    )
    labels: dict[str, str] = Field(
        default_factory=lambda: {"postmortem": "true"},
        max_length=20,
        description="label -> value an alert of the group must all carry; empty: no label rule",
    )
    severities: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="severity label values that make an alert's group an incident",
    )


class AlertPolicy(BaseModel):
    """`alerts:` in the policy: how alert events are read, kept and judged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    postmortem_when: PostmortemWhen = Field(
        default_factory=PostmortemWhen,
        description="which resolved Alertmanager and Grafana groups start a postmortem; the "
        "others are kept for the alert-quality review only",
    )

    retention_days: int = Field(
        default=400, ge=1, le=3660, description="alert events older than this are pruned"
    )
    noisy_minutes: int = Field(
        default=10,
        ge=1,
        le=1440,
        description="an alert resolved within this many minutes, with no incident and no "
        "acknowledgement, is noisy",
    )
    dominant_share: float = Field(
        default=0.8, gt=0, le=1, description="the share of pages that flags one service"
    )
    service_labels: list[str] = Field(
        default_factory=lambda: ["service", "job"],
        min_length=1,
        max_length=10,
        description="the labels that name an alert's service, first found wins",
    )
    service_names: dict[str, str] = Field(
        default_factory=dict,
        max_length=1000,
        description="a label's value -> our service name, where they differ",
    )
    paging_severities: list[str] = Field(
        default_factory=lambda: ["page", "critical"],
        max_length=20,
        description="severity label values of alerts that page someone",
    )


class AlertEvent(BaseModel):
    """One alert's firing episode, as its source reported it (the latest delivery wins)."""

    model_config = ConfigDict(frozen=True)

    source: str
    fingerprint: str
    name: str
    service: str | None = None
    severity: str | None = None
    status: AlertStatus
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    received_at: AwareDatetime
    paged: bool | None = None  # None: the source does not say
    acknowledged: bool | None = None

    @property
    def lasted(self) -> timedelta | None:
        return self.ends_at - self.starts_at if self.ends_at is not None else None


class AlertPruning(BaseModel):
    """The retention sweep's input: forget the alert events older than the policy keeps them."""

    at: AwareDatetime


class ServiceShare(BaseModel):
    service: str  # "(none)" for alerts no label names a service of
    alerts: int
    pages: int
    page_share: float  # of all pages of the month
    flagged: bool  # behind at least the dominant share of the pages
    proposal: Proposal | None = None


class NoisyAlert(BaseModel):
    name: str
    service: str | None
    fired: int  # how often it fired and resolved quickly, unanswered
    longest: timedelta
    proposal: Proposal = "retire"


class EarlyPage(BaseModel):
    name: str
    service: str
    postmortem_id: str
    budget_consumed: float  # the most of any of the service's SLOs the incident consumed
    proposal: Proposal = "burn_rate_alerting"


class DetectionGap(BaseModel):
    postmortem_id: str
    title: str
    services: list[str]
    detected_at: AwareDatetime | None
    proposal: Proposal = "add_alert"


class AlertQualityReview(BaseModel):
    month: str
    alerts: int
    pages: int
    services: list[ServiceShare]
    noisy: list[NoisyAlert]
    early_pages: list[EarlyPage]
    detection_gaps: list[DetectionGap]
    dominant_service: str | None = None
    cut_at: int | None = None  # the month held more alerts than this; only these were read


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of 'YYYY-MM', in UTC; ValueError
    naming the field when it is not one."""
    found = MONTH.match(month)
    if not found:
        raise ValueError(f"month: '{month[:20]}' is not a month between 2000-01 and 2099-12")
    year, number = int(found.group(1)), int(found.group(2))
    start = datetime(year, number, 1, tzinfo=UTC)
    following = date(year + number // 12, number % 12 + 1, 1)
    return start, datetime(following.year, following.month, 1, tzinfo=UTC)


def merge_alert(kept: AlertEvent, later: AlertEvent) -> AlertEvent:
    """One episode's kept event after a later delivery of it (any order, any repeat): resolved
    is final (a late firing redelivery never turns it back, and its first end stays); once
    acknowledged it stays so; a fact the kept event lacks (service, severity, paged) is filled
    in. storage/alerts.py does the same in its upsert, for the row already stored."""
    resolves = kept.status == "firing" and later.status == "resolved"
    acknowledged = True if later.acknowledged else kept.acknowledged
    if acknowledged is None:
        acknowledged = later.acknowledged
    changes = {
        "status": "resolved" if resolves else kept.status,
        "ends_at": later.ends_at if resolves else kept.ends_at,
        "acknowledged": acknowledged,
        "service": kept.service if kept.service is not None else later.service,
        "severity": kept.severity if kept.severity is not None else later.severity,
        "paged": kept.paged if kept.paged is not None else later.paged,
    }
    if all(getattr(kept, name) == value for name, value in changes.items()):
        return kept
    return kept.model_copy(update={**changes, "received_at": later.received_at})


def starts_postmortem(alert_labels: list[dict[str, str]], rule: PostmortemWhen) -> bool:
    """Whether a resolved group of alerts (each one's labels) is an incident by the policy."""
    if rule.always:
        return True
    for labels in alert_labels:
        if rule.labels and all(labels.get(k) == v for k, v in rule.labels.items()):
            return True
        if labels.get("severity") in rule.severities:
            return True
    return False


def postmortem_rule(rule: PostmortemWhen) -> str:
    """The rule in words, for the answer to a resolved group that is not an incident."""
    if rule.always:
        return "every resolved group"
    parts = []
    if rule.labels:
        parts.append(", ".join(f'{k}="{v}"' for k, v in sorted(rule.labels.items())))
    if rule.severities:
        parts.append("severity " + " or ".join(rule.severities))
    return " or ".join(parts) or "nothing"


def alert_service(labels: dict[str, str], policy: AlertPolicy) -> str | None:
    """The service an alert's labels name, through the policy's renames."""
    for label in policy.service_labels:
        value = labels.get(label)
        if value:
            return policy.service_names.get(value, value)
    return None


def pages(alert: AlertEvent, policy: AlertPolicy) -> bool:
    """Whether the alert paged: the source's word when it gave one, else its severity label."""
    if alert.paged is not None:
        return alert.paged
    return alert.severity is not None and alert.severity in policy.paging_severities


def review_alert_quality(
    month: str,
    alerts: list[AlertEvent],
    incidents: list[IncidentFacts],
    policy: AlertPolicy,
    negligible_budget: float,
) -> AlertQualityReview:
    """The month's review from the alerts that started in it and the incidents around it."""
    start, end = month_bounds(month)
    alerts = [a for a in alerts if start <= a.starts_at < end]
    paging = [a for a in alerts if pages(a, policy)]
    shares = _shares(alerts, paging, policy)
    dominant = next((s.service for s in shares if s.flagged), None)
    monthly = [i for i in incidents if start <= _began(i) < end]
    return AlertQualityReview(
        month=month,
        alerts=len(alerts),
        pages=len(paging),
        services=shares,
        noisy=_noisy(alerts, incidents, policy),
        early_pages=_early_pages(paging, incidents, negligible_budget),
        detection_gaps=_gaps(monthly, alerts),
        dominant_service=dominant,
    )


def _shares(
    alerts: list[AlertEvent], paging: list[AlertEvent], policy: AlertPolicy
) -> list[ServiceShare]:
    counted = Counter(a.service or "(none)" for a in alerts)
    paged = Counter(a.service or "(none)" for a in paging)
    shares = []
    for service, count in counted.items():
        share = paged[service] / len(paging) if paging else 0.0
        flagged = bool(paging) and share >= policy.dominant_share and service != "(none)"
        shares.append(
            ServiceShare(
                service=service,
                alerts=count,
                pages=paged[service],
                page_share=share,
                flagged=flagged,
                proposal="stricter_slo" if flagged else None,
            )
        )
    return sorted(shares, key=lambda s: (-s.pages, -s.alerts, s.service))


def _noisy(
    alerts: list[AlertEvent], incidents: list[IncidentFacts], policy: AlertPolicy
) -> list[NoisyAlert]:
    quick = timedelta(minutes=policy.noisy_minutes)
    found: dict[tuple[str, str | None], list[timedelta]] = {}
    for alert in alerts:
        lasted = alert.lasted
        if alert.status != "resolved" or lasted is None or lasted > quick:
            continue
        others = [i for i in incidents if not _resolution_of(alert, i)]
        if alert.acknowledged or _incident_of(alert, others) is not None:
            continue
        found.setdefault((alert.name, alert.service), []).append(lasted)
    noisy = [
        NoisyAlert(name=name, service=service, fired=len(times), longest=max(times))
        for (name, service), times in found.items()
    ]
    return sorted(noisy, key=lambda n: (-n.fired, n.name, n.service or ""))


def _early_pages(
    paging: list[AlertEvent], incidents: list[IncidentFacts], negligible: float
) -> list[EarlyPage]:
    early = []
    for alert in paging:
        incident = _incident_of(alert, incidents)
        if incident is None or alert.service is None:
            continue
        burns = [b.budget_consumed for b in incident.slo_burns if b.service == alert.service]
        if burns and max(burns) < negligible:  # no SLO review recorded: nothing to judge by
            early.append(
                EarlyPage(
                    name=alert.name,
                    service=alert.service,
                    postmortem_id=incident.postmortem_id,
                    budget_consumed=max(burns),
                )
            )
    return early


def _gaps(incidents: list[IncidentFacts], alerts: list[AlertEvent]) -> list[DetectionGap]:
    gaps = []
    for incident in incidents:
        began = _began(incident)
        detected = incident.detected_at or incident.acknowledged_at or incident.resolved_at
        caught = any(
            a.service in incident.services and began - CAUGHT_BEFORE <= a.starts_at <= detected
            for a in alerts
        )
        if not caught:
            gaps.append(
                DetectionGap(
                    postmortem_id=incident.postmortem_id,
                    title=incident.title,
                    services=list(incident.services),
                    detected_at=incident.detected_at,
                )
            )
    return gaps


def _resolution_of(alert: AlertEvent, incident: IncidentFacts) -> bool:
    """Whether the incident is the alert's own resolution: a resolved Alertmanager or Grafana
    group the policy makes an incident, or a resolved PagerDuty incident or Opsgenie alert,
    starts a postmortem of its own, starting when its alert did. That one says nothing about
    whether the alert mattered, so noise is judged without it."""
    own = incident.postmortem_id.startswith(f"postmortem-{alert.source}-")
    return own and incident.started_at == alert.starts_at


def _began(incident: IncidentFacts) -> datetime:
    return incident.started_at or incident.detected_at or incident.resolved_at


def _incident_of(alert: AlertEvent, incidents: list[IncidentFacts]) -> IncidentFacts | None:
    """The incident of the alert's service that was under way while it fired, if any."""
    ended = alert.ends_at or alert.starts_at
    for incident in incidents:
        if alert.service not in incident.services:
            continue
        if _began(incident) - CAUGHT_BEFORE <= ended and alert.starts_at <= incident.resolved_at:
            return incident
    return None
