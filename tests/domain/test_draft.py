"""parse_draft and draft_problems: the problems a postmortem's author reads, with hypothesis
properties."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
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
from followthrough.domain.incident import parse_incident
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import DraftSubmission, open_postmortem, submit_refusal
from tests.domain.examples import NOW, TODAY, at, make_incident, problems_of
from tests.factories import draft_data

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


# --- the contributing-factor taxonomy -------------------------------------------------------------


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
