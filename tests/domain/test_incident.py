"""parse_incident: what an incident must say, and the problems named when it does not."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from followthrough.domain.incident import InvalidIncident, parse_incident
from followthrough.domain.policy import Policy
from tests.domain.examples import NOW, at, make_incident
from tests.factories import incident_data

# --- parse_incident -------------------------------------------------------------------------------


def test_valid_generic_incident_parses(policy: Policy) -> None:
    data = incident_data(NOW, id="INC-7")
    incident = parse_incident(data, policy)
    assert incident.id == "INC-7"
    assert incident.source == "generic"
    assert incident.severity == "SEV2"
    assert incident.services == ["checkout"]
    assert incident.resolved_at == NOW - timedelta(hours=1)
    assert incident.postmortem_id == "postmortem-generic-INC-7"


def test_incident_parses_from_json_text(policy: Policy) -> None:
    data = incident_data(NOW, id="INC-8")
    assert parse_incident(json.dumps(data), policy) == parse_incident(data, policy)


@pytest.mark.parametrize(("source", "incident_id"), [("pagerduty", "Q1W2E3"), ("opsgenie", "42")])
def test_postmortem_id_names_source_and_incident(
    policy: Policy, source: str, incident_id: str
) -> None:
    incident = make_incident(policy, source=source, id=incident_id)
    assert incident.postmortem_id == f"postmortem-{source}-{incident_id}"


def test_unknown_severity_lists_the_policys(policy: Policy) -> None:
    with pytest.raises(InvalidIncident) as caught:
        parse_incident(incident_data(NOW, severity="critical"), policy)
    assert caught.value.problems == [
        "severity: 'critical' is not in the policy (SEV1, SEV2, SEV3, SEV4)"
    ]


def test_missing_resolved_at(policy: Policy) -> None:
    data = incident_data(NOW)
    del data["resolved_at"]
    with pytest.raises(InvalidIncident) as caught:
        parse_incident(data, policy)
    assert caught.value.problems == ["resolved_at: is required"]


@pytest.mark.parametrize("field", ["resolved_at", "detected_at"])
def test_naive_timestamps_are_refused(policy: Policy, field: str) -> None:
    data = incident_data(NOW, **{field: "2025-03-10T11:00:00"})
    with pytest.raises(InvalidIncident) as caught:
        parse_incident(data, policy)
    assert caught.value.problems == [f"{field}: Input should have timezone info"]


def test_unknown_fields_are_named(policy: Policy) -> None:
    data = incident_data(NOW)
    data["resolvedAt"] = data.pop("resolved_at")
    with pytest.raises(InvalidIncident) as caught:
        parse_incident(data, policy, origin="incident.json")
    assert sorted(caught.value.problems) == [
        "resolvedAt: unknown field",
        "resolved_at: is required",
    ]
    assert str(caught.value).startswith("incident.json: 2 problems:")


def test_detected_after_resolved_is_reported(policy: Policy) -> None:
    data = {
        "id": "INC-9",
        "title": "Search timeouts",
        "severity": "SEV3",
        "detected_at": at(0.5),
        "resolved_at": at(1),
    }
    with pytest.raises(InvalidIncident) as caught:
        parse_incident(data, policy)
    assert caught.value.problems == [f"resolved_at ({at(1)}) is before detected_at ({at(0.5)})"]


def test_communication_may_happen_any_time(policy: Policy) -> None:
    incident = make_incident(policy, communicated_at=at(10))
    assert incident.communicated_at is not None


@pytest.mark.parametrize("bad_id", ["INC 7", "-INC7", "INC/7", "x" * 129])
def test_bad_incident_id(policy: Policy, bad_id: str) -> None:
    with pytest.raises(InvalidIncident, match="must be 1-128 letters, digits"):
        make_incident(policy, id=bad_id)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "the incident must be a JSON object"),
        (42, "the incident must be a JSON object"),
    ],
)
def test_incident_that_is_not_an_object(policy: Policy, data: Any, problem: str) -> None:
    with pytest.raises(InvalidIncident) as caught:
        parse_incident(data, policy)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(problem)
