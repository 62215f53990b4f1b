"""The pure domain, tested directly: the refusals and problem lists a person actually reads."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from followthrough.domain.criteria import Manual
from followthrough.domain.draft import (
    InvalidDraft,
    Priority,
    action_item_specs,
    draft_problems,
    merged_timeline,
    parse_draft,
    prefilled_timeline,
    vagueness,
)
from followthrough.domain.incident import Incident, InvalidIncident, parse_incident
from followthrough.domain.policy import (
    DEFAULT_POLICY_PATH,
    InvalidPolicy,
    Policy,
    load_policy,
    parse_policy,
)
from followthrough.domain.postmortem import (
    ActionItem,
    ActionItemState,
    Approval,
    ChangeRequest,
    DoneClaim,
    DraftSubmission,
    Postmortem,
    PostmortemState,
    Rejection,
    Review,
    Verdict,
    approval_refusal,
    change_request_refusal,
    claim_refusal,
    open_postmortem,
    rejection_refusal,
    submit_refusal,
    verifier_refusal,
)
from tests.factories import draft_data, incident_data

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
TODAY = NOW.date()

# Each mandatory section and the start of the problem that names it when it is missing.
MANDATORY_SECTIONS: dict[str, str] = {
    "impact": "impact: missing",
    "timeline": "timeline: no decision points",
    "contributing_factors": "contributing_factors: missing",
    "detection_gaps": "detection_gaps: missing",
    "recovery_steps": "recovery_steps: missing",
    "action_items": "action_items: missing",
}

MEASURABLE = "p99 latency below 300 ms for 7 days"


# --- helpers --------------------------------------------------------------------------------------


def make_incident(policy: Policy, **overrides: Any) -> Incident:
    return parse_incident(incident_data(NOW, **overrides), policy)


def problems_of(
    policy: Policy, draft: dict[str, Any], incident: Incident | None = None
) -> list[str]:
    return draft_problems(
        parse_draft(draft), incident or make_incident(policy), policy, today=TODAY
    )


def action_item(**overrides: Any) -> dict[str, Any]:
    """A valid action item for bob (payments); None as a value removes the key."""
    item: dict[str, Any] = {
        "title": "Alert on checkout 5xx ratio",
        "owner": "bob",
        "team": "payments",
        "due": (TODAY + timedelta(days=14)).isoformat(),
        "priority": "P1",
        "acceptance_criterion": {"description": MEASURABLE},
    }
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not None}


def draft_with_items(*items: dict[str, Any]) -> dict[str, Any]:
    return draft_data(NOW, action_items=list(items))


def item_problems(policy: Policy, *items: dict[str, Any]) -> list[str]:
    """Only the action-item problems of a draft that is otherwise complete."""
    problems = problems_of(policy, draft_with_items(*items))
    assert all(p.startswith("action_items[") for p in problems), problems
    return problems


def at(hours_before_now: float) -> str:
    return (NOW - timedelta(hours=hours_before_now)).isoformat()


# --- parse_draft and the missing sections ---------------------------------------------------------


def test_factory_draft_has_no_problems(policy: Policy) -> None:
    assert problems_of(policy, draft_data(NOW)) == []


def test_empty_draft_names_every_missing_section_at_once(policy: Policy) -> None:
    incident = make_incident(policy)
    draft = parse_draft({})

    problems = draft_problems(draft, incident, policy, today=TODAY)

    assert len(problems) == len(MANDATORY_SECTIONS)
    for section, message in MANDATORY_SECTIONS.items():
        assert any(p.startswith(message) for p in problems), f"{section} not named: {problems}"

    # The owner reads them in one refusal, not one at a time.
    pm = open_postmortem(incident, policy, NOW)
    refusal = submit_refusal(pm, DraftSubmission(by="alice", draft=draft), policy, TODAY)
    assert refusal is not None
    assert refusal.startswith(f"draft for {pm.id} rejected: 6 problems:")
    for message in MANDATORY_SECTIONS.values():
        assert message in refusal


def test_parse_draft_treats_none_as_empty() -> None:
    assert parse_draft(None) == parse_draft({})


def test_parse_draft_rejects_non_mapping() -> None:
    with pytest.raises(InvalidDraft) as caught:
        parse_draft(["impact"])
    assert caught.value.problems == ["the draft must be a mapping of sections"]


def test_parse_draft_lists_every_shape_error() -> None:
    data = draft_data(NOW, lessons="typo of a section name")
    data["timeline"] = [{"at": "2025-03-10T10:00:00", "kind": "decision", "description": "x"}]
    data["action_items"][0]["ownr"] = "bob"

    with pytest.raises(InvalidDraft) as caught:
        parse_draft(data, origin="draft.yaml")

    message = str(caught.value)
    assert message.startswith("draft.yaml: 3 problems:")
    assert "lessons: unknown field" in message
    assert "timeline[0].at: Input should have timezone info" in message
    assert "action_items[0].ownr: unknown field" in message


# --- action items ---------------------------------------------------------------------------------


def test_missing_fields_are_named_per_item(policy: Policy) -> None:
    first = action_item(owner=None, team=None)
    second = action_item(title="Canary lb-config pushes", due=None, priority=None)

    problems = item_problems(policy, first, second)

    assert problems == [
        "action_items[0] 'Alert on checkout 5xx ratio': owner is missing",
        "action_items[0] 'Alert on checkout 5xx ratio': team is missing",
        "action_items[1] 'Canary lb-config pushes': due date is missing",
        "action_items[1] 'Canary lb-config pushes': priority is missing (one of P0, P1, P2, P3)",
    ]


def test_item_without_title_or_criterion(policy: Policy) -> None:
    problems = item_problems(policy, action_item(title=None, acceptance_criterion=None))
    assert problems == [
        "action_items[0]: title is missing",
        "action_items[0]: acceptance criterion is missing",
    ]


def test_empty_list_of_criteria_is_missing(policy: Policy) -> None:
    problems = item_problems(policy, action_item(acceptance_criterion=[]))
    assert problems == [
        "action_items[0] 'Alert on checkout 5xx ratio': acceptance criterion is missing"
    ]


def test_owner_must_be_in_the_team(policy: Policy) -> None:
    problems = item_problems(policy, action_item(owner="bob", team="platform"))
    assert problems == [
        "action_items[0] 'Alert on checkout 5xx ratio': owner 'bob' is not in team 'platform'"
    ]


def test_team_manager_counts_as_in_the_team(policy: Policy) -> None:
    assert item_problems(policy, action_item(owner="maria", team="payments")) == []


def test_unknown_owner_is_named(policy: Policy) -> None:
    problems = item_problems(policy, action_item(owner="mallory"))
    assert problems == [
        "action_items[0] 'Alert on checkout 5xx ratio': "
        "owner 'mallory' is not in the policy's directory"
    ]


def test_unknown_team_is_named(policy: Policy) -> None:
    problems = item_problems(policy, action_item(team="growth"))
    assert problems == [
        "action_items[0] 'Alert on checkout 5xx ratio': team 'growth' is not in the policy"
    ]


@pytest.mark.parametrize("days_from_today", [0, -1, -30])
def test_due_date_must_be_in_the_future(policy: Policy, days_from_today: int) -> None:
    due = TODAY + timedelta(days=days_from_today)
    problems = item_problems(policy, action_item(due=due.isoformat()))
    assert problems == [
        f"action_items[0] 'Alert on checkout 5xx ratio': due date {due.isoformat()} "
        "is not in the future"
    ]


def test_due_tomorrow_is_fine(policy: Policy) -> None:
    assert item_problems(policy, action_item(due=(TODAY + timedelta(days=1)).isoformat())) == []


@pytest.mark.parametrize("priority", ["P4", "p1", "high", "urgent"])
def test_bad_priority_is_named_with_the_valid_ones(policy: Policy, priority: str) -> None:
    problems = item_problems(policy, action_item(priority=priority))
    assert problems == [
        f"action_items[0] 'Alert on checkout 5xx ratio': priority '{priority}' "
        "is not one of P0, P1, P2, P3"
    ]


@pytest.mark.parametrize("priority", list(Priority))
def test_every_priority_is_accepted(policy: Policy, priority: Priority) -> None:
    assert item_problems(policy, action_item(priority=priority.value)) == []


def test_two_acceptance_criteria_are_refused(policy: Policy) -> None:
    criteria = [
        {"description": MEASURABLE},
        {"description": "Zero 502s from checkout during the next 3 config pushes"},
    ]
    problems = item_problems(policy, action_item(acceptance_criterion=criteria))
    assert len(problems) == 1
    assert "has 2 acceptance criteria; exactly one per action item" in problems[0]
    assert "split it into separate items" in problems[0]


def test_a_list_of_one_criterion_is_fine(policy: Policy) -> None:
    one = [{"description": MEASURABLE}]
    assert item_problems(policy, action_item(acceptance_criterion=one)) == []


@pytest.mark.parametrize(
    ("criterion", "why"),
    [
        ("Improve monitoring", "too short to check"),
        ("Investigate the root cause better", "is not measurable ('Investigate' promises effort"),
        ("Consider adding more robust retries", "is not measurable ('Consider' promises effort"),
        (
            "Make the deploy pipeline more robust",
            "is not measurable ('more robust' promises effort",
        ),
    ],
)
def test_vague_criterion_is_named_as_not_checkable(
    policy: Policy, criterion: str, why: str
) -> None:
    problems = item_problems(policy, action_item(acceptance_criterion={"description": criterion}))
    assert len(problems) == 1
    assert problems[0].startswith(
        f"action_items[0] 'Alert on checkout 5xx ratio': acceptance criterion '{criterion}' "
    )
    assert why in problems[0]


@pytest.mark.parametrize(
    "criterion",
    [
        MEASURABLE,
        "Improve p99 latency to below 300 ms",  # a vague word rescued by a number
        "The checkout 5xx alert fires in every staging game day",
    ],
)
def test_measurable_criterion_passes(policy: Policy, criterion: str) -> None:
    assert vagueness(Manual(description=criterion)) is None
    assert item_problems(policy, action_item(acceptance_criterion={"description": criterion})) == []


@pytest.mark.parametrize(
    "criterion",
    ["Improving the alerting for the checkout service", "Investigating why the canary was skipped"],
)
def test_inflected_vague_words_are_flagged(criterion: str) -> None:
    assert vagueness(Manual(description=criterion)) is not None


def test_verifier_must_not_be_the_owner(policy: Policy) -> None:
    criterion = {"description": MEASURABLE, "verifier": "bob"}
    problems = item_problems(policy, action_item(acceptance_criterion=criterion))
    assert problems == [
        "action_items[0] 'Alert on checkout 5xx ratio': the verifier must not be the owner"
    ]


def test_unknown_verifier_is_named(policy: Policy) -> None:
    criterion = {"description": MEASURABLE, "verifier": "mallory"}
    problems = item_problems(policy, action_item(acceptance_criterion=criterion))
    assert problems == [
        "action_items[0] 'Alert on checkout 5xx ratio': "
        "verifier 'mallory' is not in the policy's directory"
    ]


def test_duplicate_titles_are_refused_case_insensitively(policy: Policy) -> None:
    problems = item_problems(
        policy,
        action_item(),
        action_item(title="  alert on CHECKOUT 5xx ratio "),
    )
    assert problems == [
        "action_items[1] '  alert on CHECKOUT 5xx ratio ': same title as action_items[0]"
    ]


def test_approved_draft_yields_numbered_specs() -> None:
    draft = parse_draft(
        draft_data(
            NOW,
            action_items=[
                action_item(acceptance_criterion=[{"description": MEASURABLE}]),
                action_item(title=" Canary pushes ", owner="carol", team="platform", priority="P2"),
            ],
        )
    )
    specs = action_item_specs(draft)
    assert [(s.number, s.title, s.owner, s.priority) for s in specs] == [
        (1, "Alert on checkout 5xx ratio", "bob", Priority.P1),
        (2, "Canary pushes", "carol", Priority.P2),
    ]
    assert specs[0].acceptance_criterion == Manual(description=MEASURABLE)


# --- the timeline ---------------------------------------------------------------------------------


def test_prefilled_timeline_comes_from_the_incident(policy: Policy) -> None:
    incident = make_incident(policy, communicated_at=at(3))
    entries = prefilled_timeline(incident)
    assert [(e.kind, e.at) for e in entries] == [
        ("started", incident.started_at),
        ("detected", incident.detected_at),
        ("acknowledged", incident.acknowledged_at),
        ("mitigated", incident.mitigated_at),
        ("resolved", incident.resolved_at),
        ("communicated", incident.communicated_at),
    ]
    assert all(e.description == f"{e.kind} (from the incident)" for e in entries)


def test_prefilled_timeline_skips_absent_milestones(policy: Policy) -> None:
    incident = make_incident(policy, started_at=None, acknowledged_at=None)
    assert [e.kind for e in prefilled_timeline(incident)] == ["detected", "mitigated", "resolved"]


def test_merged_timeline_is_in_time_order(policy: Policy) -> None:
    incident = make_incident(policy)
    draft = parse_draft(draft_data(NOW))
    merged = merged_timeline(incident, draft)
    assert [e.kind for e in merged] == [
        "started",
        "detected",
        "acknowledged",
        "decision",
        "mitigated",
        "resolved",
    ]
    assert [e.at for e in merged] == sorted(e.at for e in merged)


def test_missing_detection_time_is_reported(policy: Policy) -> None:
    incident = make_incident(policy, detected_at=None)
    problems = problems_of(policy, draft_data(NOW), incident)
    assert problems == ["timeline: missing detected"]


def test_every_missing_required_milestone_is_named(policy: Policy) -> None:
    incident = parse_incident(
        {"id": "INC-1", "title": "t", "severity": "SEV2", "resolved_at": at(1)}, policy
    )
    assert problems_of(policy, draft_data(NOW), incident) == [
        "timeline: missing started, detected, mitigated"
    ]


def test_draft_can_supply_the_missing_milestone(policy: Policy) -> None:
    incident = make_incident(policy, detected_at=None)
    timeline = [
        *draft_data(NOW)["timeline"],
        {"at": at(3.6), "kind": "detected", "description": "a customer emailed support"},
    ]
    assert problems_of(policy, draft_data(NOW, timeline=timeline), incident) == []


def test_draft_milestone_corrects_the_incidents(policy: Policy) -> None:
    incident = make_incident(policy)
    corrected = NOW - timedelta(hours=3, minutes=50)
    draft = parse_draft(
        draft_data(
            NOW,
            timeline=[
                *draft_data(NOW)["timeline"],
                {"at": corrected.isoformat(), "kind": "detected", "description": "synthetic check"},
            ],
        )
    )

    merged = merged_timeline(incident, draft)

    detected = [e for e in merged if e.kind == "detected"]
    assert [(e.at, e.description) for e in detected] == [(corrected, "synthetic check")]
    assert incident.detected_at != corrected
    assert draft_problems(draft, incident, policy, today=TODAY) == []


def test_out_of_order_milestones_are_reported(policy: Policy) -> None:
    incident = make_incident(policy)
    mitigated = NOW - timedelta(hours=3, minutes=50)  # before detection and acknowledgement
    timeline = [
        *draft_data(NOW)["timeline"],
        {"at": mitigated.isoformat(), "kind": "mitigated", "description": "rolled back"},
    ]

    problems = problems_of(policy, draft_data(NOW, timeline=timeline), incident)

    assert problems == [
        f"timeline: mitigated ({mitigated.isoformat()}) is before acknowledged "
        f"({incident.acknowledged_at.isoformat() if incident.acknowledged_at else ''})"
    ]


def test_decision_needs_a_description(policy: Policy) -> None:
    timeline = [*draft_data(NOW)["timeline"], {"at": at(2.5), "kind": "decision"}]
    problems = problems_of(policy, draft_data(NOW, timeline=timeline))
    assert problems == ["timeline[1]: a decision needs a description"]


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


# --- the policy -----------------------------------------------------------------------------------


def default_policy_data() -> dict[str, Any]:
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return copy.deepcopy(data)


def policy_problems(data: Any) -> str:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy(data)
    return str(caught.value)


def test_default_policy_is_valid() -> None:
    policy = load_policy()
    assert list(policy.severities) == ["SEV1", "SEV2", "SEV3", "SEV4"]
    required = {name for name, sev in policy.severities.items() if sev.postmortem_required}
    assert required == {"SEV1", "SEV2"}
    assert policy.default_owner in policy.people
    assert all(team in policy.teams for team in policy.services.values())


def test_unknown_team_in_services() -> None:
    data = default_policy_data()
    data["services"]["search"] = "growth"
    assert "services.search: unknown team 'growth'" in policy_problems(data)


def test_unknown_severity_in_source_severities() -> None:
    data = default_policy_data()
    data["source_severities"]["pagerduty"]["P1"] = "SEV0"
    assert "source_severities.pagerduty.P1: unknown severity 'SEV0'" in policy_problems(data)


def test_default_owner_not_in_directory() -> None:
    data = default_policy_data()
    data["default_owner"] = "nobody"
    message = policy_problems(data)
    assert "default_owner: 'nobody' is not a member or manager of any team" in message


def test_every_reference_problem_is_named_together() -> None:
    data = default_policy_data()
    data["services"]["search"] = "growth"
    data["default_owner"] = "nobody"
    data["source_severities"]["grafana"]["critical"] = "SEV0"
    message = policy_problems(data)
    assert "services.search: unknown team 'growth'" in message
    assert "default_owner: 'nobody'" in message
    assert "source_severities.grafana.critical: unknown severity 'SEV0'" in message


@pytest.mark.parametrize("data", [None, [1, 2], "severities: {}", 7])
def test_policy_must_be_a_mapping(data: Any) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy(data)
    assert caught.value.problems == ["the policy must be a YAML mapping"]


def test_extra_fields_are_named() -> None:
    data = default_policy_data()
    data["paging"] = "page everyone"
    data["severities"]["SEV1"]["sla_hours"] = 4
    data["teams"]["sre"]["slack"] = "#sre"
    message = policy_problems(data)
    assert "paging: unknown field" in message
    assert "severities.SEV1.sla_hours: unknown field" in message
    assert "teams.sre.slack: unknown field" in message


def test_severity_numbers_are_checked() -> None:
    data = default_policy_data()
    data["severities"]["SEV2"]["approvals_required"] = 0
    assert "severities.SEV2.approvals_required" in policy_problems(data)


def test_load_policy_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(InvalidPolicy) as caught:
        load_policy(path)
    assert caught.value.subject == str(path)
    assert caught.value.problems == ["cannot read the file: No such file or directory"]


def test_load_policy_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("severities: [SEV1\nteams: {", encoding="utf-8")
    with pytest.raises(InvalidPolicy) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: 1 problem:")
    assert caught.value.problems[0].startswith("not valid YAML:")


def test_load_policy_reports_problems_under_the_file_name(tmp_path: Path) -> None:
    data = default_policy_data()
    data["default_owner"] = "nobody"
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(InvalidPolicy, match=re.escape(f"{path}: 1 problem:")):
        load_policy(path)


def test_load_policy_reads_a_copy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_policy(path) == load_policy()


# --- who owns a postmortem, and what its severity demands -----------------------------------------


def test_owner_is_the_commander(policy: Policy) -> None:
    pm = open_postmortem(make_incident(policy, commander="dan"), policy, NOW)
    assert (pm.owner, pm.team) == ("dan", "payments")


def test_owner_is_the_manager_of_the_first_services_team(policy: Policy) -> None:
    incident = make_incident(
        policy, commander=None, services=["unlisted", "api-gateway", "checkout"]
    )
    pm = open_postmortem(incident, policy, NOW)
    assert (pm.owner, pm.team) == ("pat", "platform")


def test_owner_falls_back_to_the_default_owner(policy: Policy) -> None:
    for services in ([], ["unlisted"]):
        pm = open_postmortem(make_incident(policy, commander=None, services=services), policy, NOW)
        assert (pm.owner, pm.team) == ("sam", None)


@pytest.mark.parametrize(
    ("severity", "required", "state", "approvals", "draft_days"),
    [
        ("SEV1", True, PostmortemState.DRAFTING, 2, 5),
        ("SEV2", True, PostmortemState.DRAFTING, 1, 7),
        ("SEV3", False, PostmortemState.OPTIONAL, 1, 10),
        ("SEV4", False, PostmortemState.OPTIONAL, 1, 14),
    ],
)
def test_severity_shapes_the_postmortem(
    policy: Policy,
    severity: str,
    required: bool,
    state: PostmortemState,
    approvals: int,
    draft_days: int,
) -> None:
    incident = make_incident(policy, severity=severity, id="INC-7")
    pm = open_postmortem(incident, policy, NOW)
    assert pm.id == "postmortem-generic-INC-7"
    assert (pm.required, pm.state, pm.approvals_required) == (required, state, approvals)
    # Counted in business days on the policy's calendar, due at the start of that workday.
    calendar = policy.calendar
    due_day = calendar.add_business_days(calendar.local_date(incident.resolved_at), draft_days)
    assert pm.draft_due == calendar.start_of(due_day)
    assert calendar.business_days_between(incident.resolved_at.date(), due_day) == draft_days
    assert pm.opened_at == NOW
    assert (pm.draft, pm.draft_version, pm.reviews, pm.last_seq) == (None, 0, [], 0)


# --- submitting -----------------------------------------------------------------------------------


def drafting(policy: Policy, **overrides: Any) -> Postmortem:
    return open_postmortem(make_incident(policy, **overrides), policy, NOW)


def submission(by: str) -> DraftSubmission:
    return DraftSubmission(by=by, draft=parse_draft(draft_data(NOW)))


def test_owner_may_submit_a_good_draft(policy: Policy) -> None:
    assert submit_refusal(drafting(policy), submission("alice"), policy, TODAY) is None


def test_only_the_owner_submits_a_required_postmortem(policy: Policy) -> None:
    refusal = submit_refusal(drafting(policy), submission("erin"), policy, TODAY)
    assert refusal == "only the postmortem owner (alice) can submit its draft"


def test_owner_may_resubmit_after_changes_requested(policy: Policy) -> None:
    pm = drafting(policy).model_copy(update={"state": PostmortemState.CHANGES_REQUESTED})
    assert submit_refusal(pm, submission("alice"), policy, TODAY) is None


def test_anyone_in_the_directory_may_opt_in(policy: Policy) -> None:
    pm = drafting(policy, severity="SEV3")
    assert pm.state is PostmortemState.OPTIONAL
    for person in ("erin", "grace", "maria", "alice"):
        assert submit_refusal(pm, submission(person), policy, TODAY) is None


def test_stranger_cannot_opt_in(policy: Policy) -> None:
    pm = drafting(policy, severity="SEV4")
    refusal = submit_refusal(pm, submission("mallory"), policy, TODAY)
    assert refusal == "'mallory' is not in the policy's directory and cannot opt in"


@pytest.mark.parametrize(
    "state",
    [
        PostmortemState.IN_REVIEW,
        PostmortemState.TRACKING,
        PostmortemState.CLOSED,
        PostmortemState.NOT_REQUIRED,
    ],
)
def test_no_submission_outside_drafting(policy: Policy, state: PostmortemState) -> None:
    pm = drafting(policy).model_copy(update={"state": state})
    refusal = submit_refusal(pm, submission("alice"), policy, TODAY)
    assert refusal == f"{pm.id} is {state.value}; a draft can be submitted only while drafting"


def test_bad_draft_is_refused_with_its_problems(policy: Policy) -> None:
    pm = drafting(policy)
    bad = DraftSubmission(by="alice", draft=parse_draft(draft_data(NOW, impact=" ")))
    refusal = submit_refusal(pm, bad, policy, TODAY)
    assert refusal is not None
    assert refusal.startswith(f"draft for {pm.id} rejected: 1 problem:")
    assert "impact: missing" in refusal


# --- reviewing ------------------------------------------------------------------------------------


def in_review(policy: Policy, *, commander: str = "alice", version: int = 1) -> Postmortem:
    return drafting(policy, commander=commander).model_copy(
        update={
            "state": PostmortemState.IN_REVIEW,
            "draft": parse_draft(draft_data(NOW)),
            "draft_version": version,
            "submitted_at": NOW,
        }
    )


def test_reviewers_and_council_may_approve(policy: Policy) -> None:
    pm = in_review(policy)
    for reviewer in ("erin", "pat", "grace", "heidi"):
        assert approval_refusal(pm, Approval(by=reviewer), policy) is None


def test_author_cannot_approve_own_draft(policy: Policy) -> None:
    pm = in_review(policy, commander="erin")  # a reviewer who wrote this one
    refusal = approval_refusal(pm, Approval(by="erin"), policy)
    assert refusal == "erin wrote this draft and cannot review it"


def test_non_reviewer_cannot_approve(policy: Policy) -> None:
    refusal = approval_refusal(in_review(policy), Approval(by="bob"), policy)
    assert refusal == "bob is not a reviewer in the policy"


def test_double_approval_is_refused(policy: Policy) -> None:
    review = Review(reviewer="erin", verdict=Verdict.APPROVED, at=NOW, draft_version=2)
    pm = in_review(policy, version=2).model_copy(update={"reviews": [review]})
    refusal = approval_refusal(pm, Approval(by="erin"), policy)
    assert refusal == "erin already approved draft version 2"
    assert approval_refusal(pm, Approval(by="frank"), policy) is None


def test_approval_of_an_older_version_does_not_count(policy: Policy) -> None:
    review = Review(reviewer="erin", verdict=Verdict.APPROVED, at=NOW, draft_version=1)
    pm = in_review(policy, version=2).model_copy(update={"reviews": [review]})
    assert pm.approvals() == set()
    assert approval_refusal(pm, Approval(by="erin"), policy) is None


@pytest.mark.parametrize(
    "state", [PostmortemState.DRAFTING, PostmortemState.CHANGES_REQUESTED, PostmortemState.TRACKING]
)
def test_approval_only_in_review(policy: Policy, state: PostmortemState) -> None:
    pm = in_review(policy).model_copy(update={"state": state})
    refusal = approval_refusal(pm, Approval(by="erin"), policy)
    assert refusal == f"{pm.id} is {state.value}, not in review"


def test_change_request_needs_a_reason(policy: Policy) -> None:
    pm = in_review(policy)
    refusal = change_request_refusal(pm, ChangeRequest(by="erin", reason="  "), policy)
    assert refusal == "say what needs to change (a reason is required)"
    ok = ChangeRequest(by="erin", reason="Name the config system")
    assert change_request_refusal(pm, ok, policy) is None


def test_change_request_follows_the_review_rules(policy: Policy) -> None:
    pm = in_review(policy)
    request = ChangeRequest(by="bob", reason="More detail")
    assert change_request_refusal(pm, request, policy) == "bob is not a reviewer in the policy"
    drafting_pm = pm.model_copy(update={"state": PostmortemState.DRAFTING})
    request = ChangeRequest(by="erin", reason="More detail")
    assert change_request_refusal(drafting_pm, request, policy) == (
        f"{pm.id} is drafting, not in review"
    )


# --- following through on action items ------------------------------------------------------------


def make_item(state: ActionItemState, number: int = 1) -> ActionItem:
    """Item 1 of the factory draft is bob's, anyone may verify; item 2 is carol's, pat verifies."""
    spec = action_item_specs(parse_draft(draft_data(NOW)))[number - 1]
    return ActionItem(
        id=f"postmortem-generic-INC-7-item-{number}",
        postmortem_id="postmortem-generic-INC-7",
        spec=spec,
        owner=spec.owner,
        team=spec.team,
        due=spec.due,
        state=state,
        opened_at=NOW,
    )


def test_owner_claims_done_with_evidence() -> None:
    item = make_item(ActionItemState.OPEN)
    assert claim_refusal(item, DoneClaim(by="bob", evidence="https://ci/run/42")) is None


def test_only_the_owner_can_claim() -> None:
    item = make_item(ActionItemState.OPEN)
    refusal = claim_refusal(item, DoneClaim(by="alice", evidence="https://ci/run/42"))
    assert refusal == f"only the owner (bob) can claim {item.id} done"


def test_claim_needs_evidence() -> None:
    refusal = claim_refusal(make_item(ActionItemState.OPEN), DoneClaim(by="bob", evidence=" "))
    assert refusal is not None and refusal.startswith("evidence is required")


@pytest.mark.parametrize("state", [ActionItemState.DONE_CLAIMED, ActionItemState.VERIFIED])
def test_claim_only_when_open(state: ActionItemState) -> None:
    item = make_item(state)
    refusal = claim_refusal(item, DoneClaim(by="bob", evidence="https://ci/run/42"))
    assert refusal == f"{item.id} is {state.value}; only an open item can be claimed done"


def test_owner_cannot_verify_own_work(policy: Policy) -> None:
    item = make_item(ActionItemState.DONE_CLAIMED)
    refusal = verifier_refusal(item, "bob", policy)
    assert refusal == f"bob owns {item.id} and cannot verify their own work"


def test_anyone_in_the_directory_verifies_when_none_is_named(policy: Policy) -> None:
    item = make_item(ActionItemState.DONE_CLAIMED)
    assert verifier_refusal(item, "maria", policy) is None
    assert verifier_refusal(item, "mallory", policy) == "'mallory' is not in the policy's directory"


def test_only_the_named_verifier_verifies(policy: Policy) -> None:
    item = make_item(ActionItemState.DONE_CLAIMED, number=2)
    criterion = item.spec.acceptance_criterion
    assert isinstance(criterion, Manual) and criterion.verifier == "pat"
    assert verifier_refusal(item, "pat", policy) is None
    refusal = verifier_refusal(item, "maria", policy)
    assert refusal == f"only the named verifier (pat) can verify {item.id}"


@pytest.mark.parametrize("state", [ActionItemState.OPEN, ActionItemState.VERIFIED])
def test_verify_only_when_done_claimed(policy: Policy, state: ActionItemState) -> None:
    item = make_item(state)
    refusal = verifier_refusal(item, "maria", policy)
    assert refusal == (
        f"{item.id} is {state.value}; only an item claimed done can be verified or rejected"
    )


def test_rejection_needs_a_reason(policy: Policy) -> None:
    item = make_item(ActionItemState.DONE_CLAIMED, number=2)
    refusal = rejection_refusal(item, Rejection(by="pat", reason=""), policy)
    assert refusal == "say why the acceptance criterion is not met (a reason is required)"
    assert rejection_refusal(item, Rejection(by="pat", reason="No canary yet"), policy) is None


def test_rejection_follows_the_verifier_rules(policy: Policy) -> None:
    item = make_item(ActionItemState.DONE_CLAIMED, number=2)
    refusal = rejection_refusal(item, Rejection(by="carol", reason="not done"), policy)
    assert refusal == f"carol owns {item.id} and cannot verify their own work"


# --- properties -----------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(removed=st.sets(st.sampled_from(sorted(MANDATORY_SECTIONS))))
def test_removed_sections_are_named_exactly(policy: Policy, removed: set[str]) -> None:
    data = draft_data(NOW)
    for section in removed:
        del data[section]

    problems = problems_of(policy, data)

    named = {
        section
        for section, message in MANDATORY_SECTIONS.items()
        if any(p.startswith(message) for p in problems)
    }
    assert named == removed
    assert len(problems) == len(removed)


_VAGUE_WORDS = [
    "improve",
    "better",
    "investigate",
    "consider",
    "TBD",
    "todo",
    "some",
    "various",
    "etc",
    "monitoring",
    "more",
    "robust",
    "look",
    "into",
    "try",
    "to",
]
_word = st.one_of(
    st.sampled_from(_VAGUE_WORDS),
    st.text(st.characters(blacklist_categories=("Z", "C")), min_size=1, max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(_word, min_size=4, max_size=12),
    digit=st.integers(min_value=0, max_value=9),
    where=st.integers(min_value=0),
    suffix=st.booleans(),
)
def test_a_number_in_four_words_is_never_vague(
    words: list[str], digit: int, where: int, suffix: bool
) -> None:
    i = where % len(words)
    words[i] = f"{words[i]}{digit}" if suffix else f"{digit}{words[i]}"
    description = " ".join(words)
    assert vagueness(Manual(description=description)) is None


_any_text = st.text(max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    summary=_any_text,
    impact=_any_text,
    factor=_any_text,
    gaps=st.lists(_any_text, max_size=3),
    steps=st.lists(_any_text, max_size=3),
    note=_any_text,
    title=_any_text,
    owner=_any_text,
    team=_any_text,
    priority=_any_text,
    criterion=_any_text,
    verifier=st.none() | _any_text,
)
def test_draft_problems_never_raises_on_arbitrary_text(
    policy: Policy,
    summary: str,
    impact: str,
    factor: str,
    gaps: list[str],
    steps: list[str],
    note: str,
    title: str,
    owner: str,
    team: str,
    priority: str,
    criterion: str,
    verifier: str | None,
) -> None:
    data = draft_data(
        NOW,
        summary=summary,
        impact=impact,
        timeline=[{"at": at(2.5), "kind": "note", "description": note}],
        contributing_factors=[{"description": factor}],
        detection_gaps=gaps,
        recovery_steps=steps,
        action_items=[
            {
                "title": title,
                "owner": owner,
                "team": team,
                "priority": priority,
                "due": (TODAY + timedelta(days=3)).isoformat(),
                "acceptance_criterion": {"description": criterion, "verifier": verifier},
            }
        ],
    )

    problems = problems_of(policy, data)

    assert all(isinstance(p, str) and p for p in problems)
    assert ("impact: missing; say who was affected, how, and for how long" in problems) == (
        not impact.strip()
    )


# --- the policy's calendar, escalation, caps and addresses ----------------------------------------


def test_default_policy_has_a_calendar_escalation_and_caps() -> None:
    policy = load_policy()
    calendar = policy.calendar
    assert calendar.timezone == "UTC"
    assert calendar.working_days == ["mon", "tue", "wed", "thu", "fri"]
    assert calendar.workday_starts.isoformat() == "09:00:00"
    assert {date(2026, 12, 25), date(2027, 1, 1)} <= set(calendar.holidays)
    assert not calendar.is_business_day(date(2026, 12, 25))

    default = policy.escalation.ladder("P2")
    assert [(s.name, s.business_days, s.notify) for s in default] == [
        ("reminder", -2, "owner"),
        ("due", 0, "owner"),
        ("manager", 2, "manager"),
        ("council", 5, "council"),
    ]
    p0 = policy.escalation.ladder("P0")
    assert [s.name for s in p0] == ["reminder", "due", "manager", "council"]
    assert p0[-1].business_days < default[-1].business_days

    assert policy.max_extensions == 2
    assert {team: t.wip_cap for team, t in policy.teams.items()} == {
        "payments": 3,
        "platform": 5,
        "sre": 4,
    }


def test_a_policy_without_the_new_sections_gets_the_defaults() -> None:
    data = default_policy_data()
    for key in ("calendar", "escalation", "max_extensions", "email_domain", "emails"):
        del data[key]
    for team in data["teams"].values():
        del team["wip_cap"]
    policy = parse_policy(data)
    assert policy.calendar.timezone == "UTC"
    assert policy.calendar.holidays == []
    assert [s.business_days for s in policy.escalation.ladder("P0")] == [-2, 0, 2, 5]
    assert policy.max_extensions == 2
    assert all(team.wip_cap is None for team in policy.teams.values())
    assert policy.email_of("bob") == "bob@example.com"


def test_email_of_uses_overrides_then_the_domain() -> None:
    data = default_policy_data()
    data["email_domain"] = "corp.test"
    data["emails"] = {"maria": "maria.lopez@payments.corp.test"}
    policy = parse_policy(data)
    assert policy.email_of("maria") == "maria.lopez@payments.corp.test"
    assert policy.email_of("bob") == "bob@corp.test"
    assert policy.council_emails() == ["grace@corp.test", "heidi@corp.test"]


def test_manager_of_team(policy: Policy) -> None:
    assert policy.manager_of_team("payments") == "maria"
    with pytest.raises(KeyError, match="unknown team 'growth'"):
        policy.manager_of_team("growth")


def test_email_for_a_stranger_is_refused() -> None:
    data = default_policy_data()
    data["emails"] = {"mallory": "mallory@example.com"}
    message = policy_problems(data)
    assert "emails.mallory: 'mallory' is not a member, manager, reviewer or council member" in (
        message
    )


def test_bad_addresses_are_named_with_the_other_reference_problems() -> None:
    data = default_policy_data()
    data["email_domain"] = "@example.com"
    data["emails"] = {"bob": "bob at example.com"}
    data["default_owner"] = "nobody"
    message = policy_problems(data)
    assert "email_domain: '@example.com' is not a domain (write it without '@')" in message
    assert "emails.bob: 'bob at example.com' is not an email address" in message
    assert "default_owner: 'nobody'" in message


@pytest.mark.parametrize(
    ("where", "value", "problem"),
    [
        (("teams", "sre", "wip_cap"), 0, "teams.sre.wip_cap: Input should be greater than"),
        (("max_extensions",), -1, "max_extensions: Input should be greater than or equal to 0"),
        (("calendar", "timezone"), "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        (("calendar", "working_days"), [], "calendar.working_days: at least one"),
        (("escalation", "by_priority", "P7"), [], "'P7' is not a priority"),
    ],
)
def test_new_policy_sections_are_checked(where: tuple[str, ...], value: Any, problem: str) -> None:
    data = default_policy_data()
    target = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    assert problem in policy_problems(data)


def test_policy_with_calendar_survives_a_json_round_trip(policy: Policy) -> None:
    # The policy travels to workflows as JSON.
    assert Policy.model_validate_json(policy.model_dump_json()) == policy


# --- the contributing-factor taxonomy and themes --------------------------------------------------


def test_a_tag_outside_the_taxonomy_is_named_with_the_known_ones(policy: Policy) -> None:
    draft = draft_data(NOW)
    draft["contributing_factors"] = [
        {"description": "A deploy skipped canary", "tags": ["deploy", "deploys"]},
        {"description": "Nobody was paged", "tags": ["alerting"]},
    ]
    draft["impact"] = ""
    problems = problems_of(policy, draft)
    known = ", ".join(policy.contributing_factor_tags)
    assert (
        f"contributing_factors[0]: tag 'deploys' is not in the policy's taxonomy (known: {known})"
        in problems
    )
    assert any(p.startswith("contributing_factors[1]: tag 'alerting'") for p in problems)
    assert any(p.startswith("impact:") for p in problems)  # in the same round
    assert "deploy" in policy.contributing_factor_tags


def test_an_empty_taxonomy_leaves_tags_free(policy: Policy) -> None:
    free = policy.model_copy(update={"contributing_factor_tags": []})
    draft = draft_data(NOW)
    draft["contributing_factors"] = [{"description": "Anything", "tags": ["whatever-we-like"]}]
    assert problems_of(free, draft) == []


@pytest.mark.parametrize(
    ("themes", "problem"),
    [
        ({"threshold": 1}, "themes.threshold"),
        ({"window_days": 0}, "themes.window_days"),
    ],
)
def test_theme_rule_is_validated(themes: dict[str, int], problem: str) -> None:
    data = default_policy_data()
    data["themes"] = themes
    assert problem in policy_problems(data)


def test_a_tag_listed_twice_is_a_policy_problem() -> None:
    data = default_policy_data()
    data["contributing_factor_tags"] = ["deploy", "deploy"]
    assert "contributing_factor_tags: 'deploy' is listed more than once" in policy_problems(data)
