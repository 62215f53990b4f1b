"""The SLO review of a submitted draft (followthrough/domain/slo_review.py), from data alone.

The incident is the reference's worked example: 99.9 % over 30 days, 1,000 rps on average;
14:00-14:45 at 30 % errors and 1,200 rps; the page arrived at 14:21.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from followthrough.domain.draft import Draft, parse_draft
from followthrough.domain.incident import Incident
from followthrough.domain.policy import InvalidPolicy, Policy, load_policy, parse_policy
from followthrough.domain.slo import BudgetMeasurement, Slo
from followthrough.domain.slo_review import (
    SloEvidence,
    SloQuestion,
    proposed_changes,
    review_slos,
    slo_question,
)
from followthrough.domain.slo_rules import alert_name
from tests.factories import draft_data, incident_data
from tests.servers.sli import CHECKOUT

START = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
END = START + timedelta(minutes=45)
NOW = START + timedelta(hours=3)
POLICY = load_policy()

SLO = CHECKOUT


def incident(**overrides: Any) -> Incident:
    data = incident_data(
        NOW,
        id="INC-7",
        started_at=START.isoformat(),
        detected_at=(START + timedelta(minutes=21)).isoformat(),
        acknowledged_at=(START + timedelta(minutes=22)).isoformat(),
        mitigated_at=END.isoformat(),
        resolved_at=(END + timedelta(minutes=15)).isoformat(),
    )
    data.update(overrides)
    return Incident.model_validate(data)


def draft(*, items: list[dict[str, Any]] | None = None, **sections: Any) -> Draft:
    data = draft_data(NOW)
    data["timeline"] = [
        {
            "at": (START + timedelta(minutes=25)).isoformat(),
            "kind": "decision",
            "description": "Rolled back the config",
        }
    ]
    if items is not None:
        data["action_items"] = items
    data.update(sections)
    return parse_draft(data)


def item(title: str, priority: str = "P1", **extra: Any) -> dict[str, Any]:
    return {
        "title": title,
        "owner": "bob",
        "team": "payments",
        "due": (NOW.date() + timedelta(days=14)).isoformat(),
        "priority": priority,
        "acceptance_criterion": {"kind": "alert_rule_present", "alert": alert_name(SLO, "page")},
        **extra,
    }


ALERTING = {"slo": SLO.id, "change": "alerting"}
MET = [item("Page on the checkout burn rate", "P0", slo_change=ALERTING)]


def measured(error_ratio_before: float = 0.0005, slo: Slo = SLO) -> SloEvidence:
    return SloEvidence(
        slo=slo,
        measurement=BudgetMeasurement(
            slo_id=slo.id,
            start=START,
            end=END,
            bad_events=0.30 * 1_200 * 2_700,
            total_events=1_200 * 2_700,
            total_events_in_period=1_000 * 2_592_000,
            error_ratio_before=error_ratio_before,
        ),
    )


def review(
    the_draft: Draft,
    evidence: list[SloEvidence],
    the_incident: Incident | None = None,
    policy: Policy = POLICY,
) -> Any:
    inc = the_incident or incident()
    question = slo_question("postmortem-generic-INC-7", inc, the_draft)
    assert question is not None
    return review_slos(the_draft, inc, policy, question, evidence)


def test_the_question_is_the_impact_window_from_started_to_mitigated() -> None:
    question = slo_question("pm", incident(), draft())
    assert question == SloQuestion(
        postmortem_id="pm", services=["checkout"], slo_ids=None, start=START, end=END
    )
    named = draft(slo_impact={"slos": ["a", "b"]})
    assert slo_question("pm", incident(), named).slo_ids == ["a", "b"]  # type: ignore[union-attr]


def test_measured_worked_example_records_the_budget_and_names_every_duty() -> None:
    result = review(draft(), [measured()])
    [assessment] = result.assessments
    impact = assessment.impact
    assert assessment.method == "measured"
    assert impact.basis == "events"
    assert impact.error_ratio == pytest.approx(0.30)
    assert impact.burn_rate == pytest.approx(300)
    assert impact.budget_consumed == pytest.approx(0.375)
    assert impact.budget_remaining_before == pytest.approx(0.5)
    assert impact.budget_remaining_after == pytest.approx(0.125)
    assert impact.actual_detection == timedelta(minutes=21)
    assert {f.kind for f in assessment.findings} == {"postmortem_required", "late_detection"}
    assert not assessment.freeze_recommended
    assert "groups:" in assessment.proposed_change  # the alerting should change: rules proposed
    p0, alerting = result.problems
    assert p0 == (
        "slo 'checkout-availability': the incident consumed 37.5% of the error budget (>= 20%); "
        "at least one action item must be P0"
    )
    assert alerting.startswith("slo 'checkout-availability': detected after 21.0 min")
    assert "slo_change {slo: checkout-availability, change: alerting}" in alerting
    assert "CheckoutAvailabilityBudgetBurnPage" in alerting
    assert "2.9 min" in alerting  # when the 14.4x page would have fired
    assert assessment.summary() == (
        "checkout-availability (measured): burn rate 300.0x, consumed 37.5% of the 30-day "
        "budget, remaining 50.0% -> 12.5%; postmortem_required, late_detection"
    )


def test_a_p0_alerting_item_meets_both_and_carries_the_proposed_rules() -> None:
    the_draft = draft(items=[*MET, item("Canary config pushes", "P2")])
    result = review(the_draft, [measured()])
    assert result.problems == []
    specs = the_draft.action_items
    assert specs[0].slo_change is not None
    from followthrough.domain.draft import action_item_specs

    first, second = action_item_specs(the_draft, proposed_changes(result.assessments))
    assert first.proposed_change == result.assessments[0].proposed_change != ""
    assert second.proposed_change == ""  # it changes no SLO's alerting


def test_an_item_changing_the_sli_does_not_meet_the_alerting_duty() -> None:
    sli = item("Review the SLI", "P0", slo_change={"slo": SLO.id, "change": "sli"})
    result = review(draft(items=[sli]), [measured()])
    [problem] = result.problems
    assert "change: alerting" in problem


def test_an_exhausted_budget_recommends_a_freeze_and_refuses_nothing_for_it() -> None:
    result = review(draft(items=MET), [measured(error_ratio_before=0.0008)])
    [assessment] = result.assessments
    assert assessment.impact.budget_remaining_before == pytest.approx(0.2)
    assert assessment.impact.budget_remaining_after == pytest.approx(-0.175)
    assert assessment.freeze_recommended
    assert result.problems == []


def test_without_a_measurement_the_drafts_estimate_is_used_and_the_reason_noted() -> None:
    estimate = {"fraction_affected": 0.30, "traffic_weight": 1.2}
    not_measured = SloEvidence(slo=SLO, problem="no Prometheus to ask")
    result = review(draft(items=MET, slo_impact=estimate), [not_measured])
    [assessment] = result.assessments
    assert assessment.method == "estimated"
    assert assessment.impact.basis == "estimated"
    assert assessment.impact.budget_consumed == pytest.approx(0.375)  # f * w * d / (b * P)
    assert assessment.impact.budget_remaining_before == 1.0
    assert assessment.notes == [
        "estimated from the draft: no Prometheus to ask",
        "budget remaining before the incident assumed whole",
    ]
    assert result.problems == []


def test_the_drafts_remaining_budget_is_used_when_nothing_measured_it() -> None:
    estimate = {"fraction_affected": 0.30, "traffic_weight": 1.2, "budget_remaining_before": 0.3}
    result = review(draft(items=MET, slo_impact=estimate), [SloEvidence(slo=SLO, problem="x")])
    assert result.assessments[0].impact.budget_remaining_after == pytest.approx(-0.075)
    assert result.assessments[0].freeze_recommended


def test_an_slo_neither_measured_nor_estimated_is_a_problem_that_says_what_to_add() -> None:
    result = review(draft(items=MET), [SloEvidence(slo=SLO, problem="Prometheus timed out")])
    assert result.assessments == []
    assert result.problems == [
        "slo_impact: SLO 'checkout-availability' (checkout) could not be measured (Prometheus "
        "timed out); estimate it with slo_impact.fraction_affected (the share of requests that "
        "failed between 'started' and 'mitigated') and traffic_weight"
    ]


def test_unknown_slos_are_named() -> None:
    the_draft = draft(
        items=[*MET, item("Other", slo_change={"slo": "nope", "change": "alerting"})],
        slo_impact={"slos": [SLO.id, "missing-slo"]},
    )
    problems = review(the_draft, [measured()]).problems
    assert "slo_impact.slos: there is no SLO 'missing-slo'" in problems
    assert (
        "action_items[1] 'Other': slo_change names 'nope', which is not one of this incident's "
        "SLOs (checkout-availability)"
    ) in problems


def test_a_high_severity_incident_that_burned_nothing_needs_an_sli_review() -> None:
    quiet = SloEvidence(
        slo=SLO,
        measurement=BudgetMeasurement(
            slo_id=SLO.id,
            start=START,
            end=END,
            bad_events=10,
            total_events=1_000 * 2_700,
            total_events_in_period=1_000 * 2_592_000,
            error_ratio_before=0.0001,
        ),
    )
    sev1 = incident(severity="SEV1")
    [problem] = review(draft(), [quiet], sev1).problems
    assert problem.startswith(
        "slo 'checkout-availability': a high-severity incident consumed only 0.00% of the budget"
    )
    assert "slo_change {slo: checkout-availability, change: sli}" in problem
    sli = item("Review the SLI", slo_change={"slo": SLO.id, "change": "sli"})
    assert review(draft(items=[sli]), [quiet], sev1).problems == []
    # SEV3 is not high severity by default (the worst two are); the policy can say otherwise.
    assert review(draft(), [quiet], incident(severity="SEV3")).problems == []
    policy = POLICY.model_copy(
        update={"slo_review": POLICY.slo_review.model_copy(update={"high_severities": ["SEV3"]})}
    )
    assert review(draft(), [quiet], incident(severity="SEV3"), policy).problems != []


def test_a_page_window_that_cannot_fire_is_flagged_with_a_retune_but_refuses_nothing() -> None:
    low = SLO.model_copy(update={"objective": 0.9})
    result = review(draft(items=[item("Canary", "P0")]), [measured(0.01, slo=low)])
    [assessment] = result.assessments
    assert "page_unreachable" in {f.kind for f in assessment.findings}
    assert assessment.proposed_change != ""
    assert result.problems == []


def test_policy_high_severities_must_exist() -> None:
    data = POLICY.model_dump(mode="json")
    data["slo_review"] = {"high_severities": ["SEV9"]}
    with pytest.raises(InvalidPolicy, match=r"high_severities: unknown severity .SEV9."):
        parse_policy(data)


@given(
    fraction=st.floats(min_value=0, max_value=1),
    weight=st.floats(min_value=0.01, max_value=100),
    before=st.floats(min_value=-1, max_value=1),
)
def test_remaining_after_is_remaining_before_less_what_was_consumed(
    fraction: float, weight: float, before: float
) -> None:
    estimate = {
        "fraction_affected": fraction,
        "traffic_weight": weight,
        "budget_remaining_before": before,
    }
    result = review(draft(items=MET, slo_impact=estimate), [SloEvidence(slo=SLO, problem="x")])
    [assessment] = result.assessments
    impact = assessment.impact
    assert impact.budget_remaining_after == pytest.approx(before - impact.budget_consumed)
    assert impact.budget_consumed >= 0
    assert assessment.freeze_recommended == (impact.budget_remaining_after < 0)
    p0_needed = any("must be P0" in p for p in result.problems)
    assert not p0_needed  # MET has a P0 item


def test_pages_for_an_incident_that_burned_nothing_are_paged_too_early_and_refuse_nothing() -> None:
    # 10 bad of 1,000 x 2,700 events over the window, in a period of 1,000 x 2,592,000 at 99.9%:
    # 10 / 2,592,000 = 0.0004% of the budget, under the 0.1% the policy calls negligible.
    quiet = SloEvidence(
        slo=SLO,
        measurement=BudgetMeasurement(
            slo_id=SLO.id,
            start=START,
            end=END,
            bad_events=10,
            total_events=1_000 * 2_700,
            total_events_in_period=1_000 * 2_592_000,
            error_ratio_before=0.0001,
        ),
        pages=["CheckoutLatencyHigh", "CheckoutLatencyHigh"],
    )
    result = review(draft(), [quiet], incident(severity="SEV3"))
    assert result.problems == []  # recorded for the council, not a duty of the draft
    [assessment] = result.assessments
    [finding] = [f for f in assessment.findings if f.kind == "paged_too_early"]
    assert finding.evidence.startswith(
        "2 page(s) (CheckoutLatencyHigh) for an incident that consumed only 0.00% of the budget"
    )
    assert "burn-rate" in finding.recommended_action
    assert "checkout-availability" in assessment.proposed_change  # the generated rules
    # No page, or a page for an incident that burned budget: no such finding.
    unpaged = quiet.model_copy(update={"pages": []})
    assert (
        not review(draft(), [unpaged], incident(severity="SEV3"))
        .assessments[0]
        .has("paged_too_early")
    )
    burned = measured().model_copy(update={"pages": ["CheckoutLatencyHigh"]})
    assert not review(draft(), [burned]).assessments[0].has("paged_too_early")
