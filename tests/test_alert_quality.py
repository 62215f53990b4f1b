"""The monthly alert-quality review, computed by hand for one made-up November."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from followthrough.domain.alert_quality import (
    AlertEvent,
    AlertPolicy,
    month_bounds,
    pages,
    review_alert_quality,
)
from followthrough.domain.metrics import IncidentFacts, SloBurn

POLICY = AlertPolicy()  # noisy within 10 minutes; 80% of pages flags a service
NEGLIGIBLE = 0.001


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def alert(
    name: str,
    service: str | None,
    starts: datetime,
    minutes: int | None,
    severity: str = "page",
    **changes: object,
) -> AlertEvent:
    fields: dict[str, object] = {
        "source": "alertmanager",
        "fingerprint": f"{name}-{starts.isoformat()}",
        "name": name,
        "service": service,
        "severity": severity,
        "status": "firing" if minutes is None else "resolved",
        "starts_at": starts,
        "ends_at": None if minutes is None else starts + timedelta(minutes=minutes),
        "received_at": starts,
    }
    return AlertEvent.model_validate({**fields, **changes})


def incident(
    pm: str, service: str, started: datetime, detected: datetime, burned: float | None
) -> IncidentFacts:
    burns = (
        []
        if burned is None
        else [
            SloBurn(
                slo=f"{service}-availability", service=service, budget_consumed=burned, burn_rate=1
            )
        ]
    )
    return IncidentFacts(
        postmortem_id=pm,
        incident_id=pm,
        title=f"{service} down",
        severity="SEV2",
        team="payments",
        state="approved",
        services=[service],
        started_at=started,
        detected_at=detected,
        resolved_at=started + timedelta(hours=1),
        slo_burns=burns,
    )


INCIDENTS = [
    # Caught by HighLatency (fired 10:02, detected 10:05) but burned 0.05% of the budget.
    incident("pm-checkout", "checkout", at(10, 10), at(10, 10, 5), burned=0.0005),
    # Nothing of search fired before 09:30: a detection gap.
    incident("pm-search", "search", at(15, 9), at(15, 9, 30), burned=0.2),
]
ALERTS = [
    alert("HighLatency", "checkout", at(10, 10, 2), 38),  # page, in pm-checkout: too early
    alert("Flappy", "checkout", at(3, 1), 2),  # three quick unanswered pages: noisy
    alert("Flappy", "checkout", at(3, 5), 4),
    alert("Flappy", "checkout", at(4, 1), 3),
    alert("Flappy", "checkout", at(5, 1), 2, acknowledged=True),  # someone answered it
    alert("DiskSlow", "checkout", at(20, 8), 30),  # a page, but not quick
    alert("QueueDepth", "search", at(16, 9), 5, severity="warning"),  # after pm-search: noisy
    alert("CardDeclines", "payments", at(21, 3), None),  # still firing
    alert("Old", "payments", at(31, 23, month=10), 1),  # October: not this review's
]


def test_the_month_by_hand() -> None:
    review = review_alert_quality("2026-11", ALERTS, INCIDENTS, POLICY, NEGLIGIBLE)
    assert (review.alerts, review.pages) == (8, 7)
    # checkout: HighLatency, 4 Flappy, DiskSlow = 6 pages of 7 (85.7% >= 80%); payments 1.
    assert [(s.service, s.alerts, s.pages, round(s.page_share, 4)) for s in review.services] == [
        ("checkout", 6, 6, 0.8571),
        ("payments", 1, 1, 0.1429),
        ("search", 1, 0, 0.0),
    ]
    assert review.dominant_service == "checkout"
    assert [(s.flagged, s.proposal) for s in review.services] == [
        (True, "stricter_slo"),
        (False, None),
        (False, None),
    ]
    assert [(n.name, n.service, n.fired, n.longest, n.proposal) for n in review.noisy] == [
        ("Flappy", "checkout", 3, timedelta(minutes=4), "retire"),
        ("QueueDepth", "search", 1, timedelta(minutes=5), "retire"),
    ]
    assert [
        (p.name, p.postmortem_id, p.budget_consumed, p.proposal) for p in review.early_pages
    ] == [("HighLatency", "pm-checkout", 0.0005, "burn_rate_alerting")]
    assert [(g.postmortem_id, g.services, g.proposal) for g in review.detection_gaps] == [
        ("pm-search", ["search"], "add_alert")
    ]


def test_under_the_share_no_service_is_flagged() -> None:
    # Without DiskSlow and two Flappy: checkout has 3 of 4 pages, 75% < 80%.
    fewer = [a for a in ALERTS if a.name != "DiskSlow" and a.starts_at.day not in (4, 5)]
    review = review_alert_quality("2026-11", fewer, INCIDENTS, POLICY, NEGLIGIBLE)
    assert review.pages == 4
    assert review.dominant_service is None
    assert not any(s.flagged for s in review.services)


def test_an_alert_during_an_incident_is_not_noise_and_a_page_that_burned_budget_is_not_early() -> (
    None
):
    quick = alert("Blip", "checkout", at(10, 10, 1), 2)
    burned = [incident("pm-checkout", "checkout", at(10, 10), at(10, 10, 5), burned=0.3)]
    review = review_alert_quality("2026-11", [quick], burned, POLICY, NEGLIGIBLE)
    assert review.noisy == [] and review.early_pages == [] and review.detection_gaps == []


def test_no_slo_review_recorded_judges_no_page_early() -> None:
    unmeasured = [incident("pm-x", "checkout", at(10, 10), at(10, 10, 5), burned=None)]
    page = alert("HighLatency", "checkout", at(10, 10, 2), 38)
    assert review_alert_quality("2026-11", [page], unmeasured, POLICY, NEGLIGIBLE).early_pages == []


def test_an_empty_month_is_empty() -> None:
    review = review_alert_quality("2026-02", [], [], POLICY, NEGLIGIBLE)
    assert (review.alerts, review.pages, review.services, review.dominant_service) == (
        0,
        0,
        [],
        None,
    )


def test_paging_is_the_sources_word_else_the_severity_label() -> None:
    assert pages(alert("A", None, at(1, 1), 1, severity="critical"), POLICY)
    assert not pages(alert("A", None, at(1, 1), 1, severity="warning"), POLICY)
    assert not pages(alert("A", None, at(1, 1), 1, severity="critical", paged=False), POLICY)


def test_month_bounds() -> None:
    assert month_bounds("2026-12") == (at(1, 0, month=12), datetime(2027, 1, 1, tzinfo=UTC))
    for bad in ("2026-13", "26-11", "1999-12", "2026-11-01", ""):
        with pytest.raises(ValueError, match="month: "):
            month_bounds(bad)


def test_an_alerts_own_resolution_is_no_incident_that_excuses_its_noise() -> None:
    quick = alert("Flappy", "checkout", at(3, 1), 2)
    own = incident("postmortem-alertmanager-am-1", "checkout", at(3, 1), at(3, 1), burned=None)
    review = review_alert_quality("2026-11", [quick], [own], POLICY, NEGLIGIBLE)
    assert [n.name for n in review.noisy] == ["Flappy"]
    other = own.model_copy(update={"postmortem_id": "postmortem-pagerduty-Q1"})
    assert review_alert_quality("2026-11", [quick], [other], POLICY, NEGLIGIBLE).noisy == []
