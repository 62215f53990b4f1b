"""response_milestones: which times of the reviewed timeline a postmortem's figures stand on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from followthrough.domain.draft import parse_draft
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import PostmortemState, open_postmortem
from followthrough.domain.response import (
    incident_milestones,
    postmortem_milestones,
    response_milestones,
)
from tests.domain.examples import NOW, at, make_incident
from tests.factories import draft_data


def entry(hours_before_now: float, kind: str, description: str = "") -> dict[str, Any]:
    return {"at": at(hours_before_now), "kind": kind, "description": description}


def test_a_pagerduty_like_incident_with_only_start_and_resolution_gets_the_drafted_milestones(
    policy: Policy,
) -> None:
    incident = make_incident(
        policy, detected_at=None, acknowledged_at=None, mitigated_at=None
    )  # started 4 h ago, resolved 1 h ago
    draft = parse_draft(
        draft_data(
            NOW,
            timeline=[
                entry(3.9, "alert", "CheckoutErrors firing"),  # a candidate only
                entry(3.5, "detected", "the alert paged"),
                entry(3.4, "acknowledged"),
                entry(3.0, "status_update", "posted on the status page"),
                entry(2.5, "status_update", "second update"),
                entry(2.0, "mitigated"),
                entry(1.8, "escalation"),
            ],
        )
    )

    found = response_milestones(incident, draft)

    assert found.from_timeline is True
    assert found.started == NOW - timedelta(hours=4)  # the incident's, nothing drafted
    assert found.detected == NOW - timedelta(hours=3.5)  # not the alert at 3.9 h
    assert found.acknowledged == NOW - timedelta(hours=3.4)
    assert found.communicated == NOW - timedelta(hours=3)  # the first status update
    assert found.mitigated == NOW - timedelta(hours=2)
    assert found.resolved == NOW - timedelta(hours=1)


def test_a_kept_alert_is_no_detection_and_a_drafted_milestone_replaces_the_incidents(
    policy: Policy,
) -> None:
    incident = make_incident(policy, detected_at=None)
    draft = parse_draft(
        draft_data(
            NOW,
            timeline=[
                entry(3.9, "alert", "CheckoutErrors firing"),
                entry(3.5, "started", "the config push"),  # later than the webhook's 4 h
                entry(0.5, "resolved", "reopened and resolved again"),
                entry(0.75, "resolved", "first resolution"),
            ],
        )
    )

    found = response_milestones(incident, draft)

    assert found.detected is None
    assert found.started == NOW - timedelta(hours=3.5)
    assert found.resolved == NOW - timedelta(minutes=30)  # the last resolution
    assert found.communicated is None


def test_communicated_is_the_earliest_of_communicated_and_status_updates(policy: Policy) -> None:
    incident = make_incident(policy, communicated_at=at(2.0))
    draft = parse_draft(draft_data(NOW, timeline=[entry(3.0, "status_update", "first post")]))

    assert response_milestones(incident, draft).communicated == NOW - timedelta(hours=3)


def test_before_approval_the_figures_are_the_incidents_milestones(policy: Policy) -> None:
    incident = make_incident(policy, detected_at=None)
    draft = parse_draft(draft_data(NOW, timeline=[entry(3.5, "detected", "paged")]))
    pm = open_postmortem(incident, policy, NOW).model_copy(update={"draft": draft})

    assert postmortem_milestones(pm) == incident_milestones(incident)
    assert postmortem_milestones(pm).detected is None
    assert postmortem_milestones(pm).from_timeline is False

    for state in (PostmortemState.TRACKING, PostmortemState.CLOSED):
        approved = pm.model_copy(update={"state": state})
        assert postmortem_milestones(approved).detected == NOW - timedelta(hours=3.5)
        assert postmortem_milestones(approved).from_timeline is True
