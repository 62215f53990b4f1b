"""The impact score, worked out by hand; the backlog's ranking, ties, sprint marks and cursor;
the policy's `impact:` and `failure_classes:` sections and the draft fields they read."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from followthrough.domain.backlog import (
    InvalidCursor,
    OpenItem,
    backlog_page,
    rank_backlog,
)
from followthrough.domain.draft import InvalidDraft
from followthrough.domain.draft_form import draft_from_form, form_rows
from followthrough.domain.impact import (
    BudgetBurn,
    ImpactFacts,
    ImpactPolicy,
    impact_score,
    most_recurring,
    priority_for,
)
from followthrough.domain.policy import Policy, parse_policy
from tests.domain.examples import problems_of
from tests.domain.test_draft import action_item, draft_with_items
from tests.domain.test_policy import default_policy_data, policy_problems

CHECKOUT = BudgetBurn(
    slo="checkout-availability",
    name="Checkout availability",
    service="checkout",
    budget_consumed=0.5,
    period_days=30,
)


def facts(**overrides: Any) -> ImpactFacts:
    values: dict[str, Any] = {"severity": "SEV3"}
    values.update(overrides)
    return ImpactFacts(**values)


# --- the score, by hand ---------------------------------------------------------------------------


def test_every_component_counts_as_the_default_policy_weighs_it(policy: Policy) -> None:
    # Weights 30/25/15/15/15 (of 100): half the budget 15, SEV1 25, 5,000 of 10,000 users 7.5,
    # three postmortems sharing 'deploy' 15, a class removed 15.
    score = impact_score(
        facts(
            severity="SEV1",
            slo_burns=[CHECKOUT],
            users_affected=5_000,
            recurring_tag="deploy",
            recurrence=3,
            removes_class="unsafe-rollout",
        ),
        policy.impact,
        policy.failure_classes,
    )
    assert score.score == 77.5
    assert [(c.name, c.points) for c in score.components] == [
        ("budget", 15.0),
        ("severity", 25.0),
        ("users", 7.5),
        ("recurrence", 15.0),
        ("failure_class", 15.0),
    ]
    budget, severity, users, recurrence, failure_class = score.components
    assert budget.figure == "50 % of the 30-day budget burned"
    assert "SLO 'Checkout availability' of checkout" in budget.reason
    assert severity.reason == "the policy counts SEV1 at 100 %"
    assert users.figure == "5,000 users"
    assert recurrence.figure == "3 postmortems"
    assert "'deploy' was a contributing factor in 2 other approved postmortems" in recurrence.reason
    assert failure_class.figure == "removes 'unsafe-rollout'"
    assert "covers deploy, config-change" in failure_class.reason
    assert [c.name for c in score.top_reasons()] == ["severity", "budget"]
    assert priority_for(score.score, policy.impact) == "P0"
    assert "Severity: SEV1 (the policy counts SEV1 at 100 %), 25 points." in score.explanation()


def test_an_item_with_nothing_known_stands_on_its_severity_only(policy: Policy) -> None:
    score = impact_score(facts(severity="SEV3"), policy.impact, policy.failure_classes)
    assert score.score == 10.0  # 25 x 0.4
    by_name = {c.name: c for c in score.components}
    assert by_name["budget"].figure == "none measured"
    assert by_name["users"].figure == "not stated"
    assert by_name["recurrence"].figure == "first time"
    assert by_name["failure_class"].figure == "patches one defect"
    assert priority_for(score.score, policy.impact) == "P3"


def test_shares_saturate_and_a_second_postmortem_counts_half(policy: Policy) -> None:
    burned_twice = CHECKOUT.model_copy(update={"budget_consumed": 2.0})
    score = impact_score(
        facts(
            severity="SEV4",
            slo_burns=[burned_twice],
            users_affected=10**9,
            recurring_tag="capacity",
            recurrence=2,
        ),
        policy.impact,
        policy.failure_classes,
    )
    # 30 (budget over 100 % counts in full) + 2.5 (SEV4 0.1) + 15 (users capped) + 7.5 (1 of 2)
    assert score.score == 55.0
    assert priority_for(score.score, policy.impact) == "P1"


def test_the_worst_slo_is_the_one_counted(policy: Policy) -> None:
    small = CHECKOUT.model_copy(update={"slo": "a", "name": "Small", "budget_consumed": 0.1})
    score = impact_score(facts(slo_burns=[small, CHECKOUT]), policy.impact, {})
    assert score.components[0].points == 15.0
    assert "Checkout availability" in score.components[0].reason


@pytest.mark.parametrize(
    ("score", "priority"), [(75, "P0"), (74.9, "P1"), (50, "P1"), (25, "P2"), (24.9, "P3")]
)
def test_priority_thresholds(policy: Policy, score: float, priority: str) -> None:
    assert priority_for(score, policy.impact) == priority


def test_most_recurring_counts_postmortems_within_the_window() -> None:
    at = datetime(2026, 6, 1, tzinfo=UTC)
    seen = {
        "deploy": [("a", at), ("b", at - timedelta(days=80)), ("c", at - timedelta(days=100))],
        "capacity": [("a", at), ("d", at + timedelta(days=10))],
    }
    # 'c' is outside 90 days; both tags have two; the first by name wins the tie.
    assert most_recurring(["deploy", "capacity"], at, seen, timedelta(days=90)) == ("capacity", 2)
    assert most_recurring([], at, seen, timedelta(days=90)) == (None, 0)


# --- ranking --------------------------------------------------------------------------------------


def open_item(item_id: str, *, team: str = "payments", due: int = 10, **fact: Any) -> OpenItem:
    return OpenItem(
        id=item_id,
        postmortem_id=f"pm-{item_id}",
        postmortem_title="Checkout down",
        title=f"Item {item_id}",
        owner="bob",
        team=team,
        due=date(2026, 1, 1) + timedelta(days=due),
        priority="P2",
        state="open",
        services=["checkout"] if team == "payments" else ["search"],
        facts=facts(**fact),
    )


SEVERITIES = ["SEV1", "SEV2", "SEV3", "SEV4"]


def test_ties_go_to_the_worse_severity_then_the_sooner_due_then_the_id() -> None:
    flat = ImpactPolicy(weights={"severity": 0, "budget": 1}, sprint_suggestions=1)
    items = [
        open_item("d", severity="SEV2", due=5),
        open_item("c", severity="SEV1", due=9),
        open_item("b", severity="SEV2", due=5),
        open_item("a", severity="SEV2", due=7),
        open_item("top", severity="SEV4", slo_burns=[CHECKOUT]),
    ]
    ranked = rank_backlog(items, flat, {}, SEVERITIES)
    assert [r.item.id for r in ranked] == ["top", "c", "b", "d", "a"]
    assert [r.rank for r in ranked] == [1, 2, 3, 4, 5]
    assert [r.this_sprint for r in ranked] == [True, False, False, False, False]


def test_each_team_gets_its_own_sprint_suggestions(policy: Policy) -> None:
    items = [open_item(f"p{i}", severity="SEV1") for i in range(5)] + [
        open_item("s1", team="search", severity="SEV4")
    ]
    ranked = rank_backlog(items, policy.impact, policy.failure_classes, SEVERITIES)
    suggested = [r.item.id for r in ranked if r.this_sprint]
    assert suggested == ["p0", "p1", "p2", "s1"]  # 3 per team by default


def test_pages_follow_the_cursor_and_filters(policy: Policy) -> None:
    items = [open_item(f"p{i}", due=i) for i in range(5)] + [open_item("s", team="search")]
    ranked = rank_backlog(items, policy.impact, policy.failure_classes, SEVERITIES)
    seen, cursor = [], None
    while True:
        page = backlog_page(ranked, SEVERITIES, team="payments", cursor=cursor, limit=2)
        assert page.total == 5
        seen += [r.item.id for r in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == ["p0", "p1", "p2", "p3", "p4"]
    by_service = backlog_page(ranked, SEVERITIES, service="search", limit=10)
    assert [r.item.id for r in by_service.items] == ["s"]


@pytest.mark.parametrize("cursor", ["x", "e30", "W10", "WzEsMiwzXQ", "WyJhIiwxLCIyMDI2IiwieCJd"])
def test_a_cursor_not_handed_out_is_refused_naming_it(policy: Policy, cursor: str) -> None:
    with pytest.raises(InvalidCursor, match=r"^cursor: "):
        backlog_page([], SEVERITIES, cursor=cursor, limit=10)


# --- the policy and the draft ---------------------------------------------------------------------


def test_the_impact_section_names_each_wrong_field() -> None:
    data = default_policy_data()
    data["impact"]["severities"]["SEV2"] = 1.5
    data["impact"]["priorities"] = {"P0": 20, "P1": 50, "P2": 25}
    problems = policy_problems(data)
    assert "impact.priorities: P0 >= P1 >= P2" in problems
    assert "impact.severities.SEV2: " in problems


def test_names_the_policy_lacks_are_named() -> None:
    data = default_policy_data()
    data["impact"]["severities"]["SEV9"] = 0.5
    data["failure_classes"]["unsafe-rollout"]["tags"].append("cosmic-rays")
    problems = policy_problems(data)
    assert "impact.severities.SEV9: unknown severity 'SEV9'" in problems
    assert "failure_classes.unsafe-rollout.tags: 'cosmic-rays'" in problems


def test_weights_that_are_all_zero_are_refused() -> None:
    data = default_policy_data()
    data["impact"]["weights"] = dict.fromkeys(data["impact"]["weights"], 0)
    assert "at least one weight must be above 0" in policy_problems(data)


def test_removes_class_must_be_a_failure_class_of_the_policy(policy: Policy) -> None:
    draft = draft_with_items(action_item(removes_class="cosmic-rays"))
    problems = problems_of(policy, draft)
    assert any(
        p.startswith("action_items[0] 'Alert on checkout 5xx ratio': removes_class 'cosmic-rays'")
        for p in problems
    ), problems
    assert problems_of(policy, draft_with_items(action_item(removes_class="silent-failure"))) == []


@pytest.mark.parametrize("users", [-1, 10**11, 10**400])
def test_users_affected_is_bounded_naming_the_field(policy: Policy, users: int) -> None:
    draft = {**draft_with_items(action_item()), "users_affected": users}
    assert [p for p in problems_of(policy, draft) if p.startswith("users_affected: ")]


def test_the_draft_editor_reads_and_shows_users_and_classes() -> None:
    form = {
        "users_affected": "5000",
        "item-0-title": "Canary every rollout",
        "item-0-removes_class": "unsafe-rollout",
    }
    draft = draft_from_form(form, "UTC")
    assert draft.users_affected == 5_000
    assert draft.action_items[0].removes_class == "unsafe-rollout"
    assert form_rows(draft, "UTC")["items"][0]["removes_class"] == "unsafe-rollout"
    for typed in ("many", "\u00b2", "-3"):
        with pytest.raises(InvalidDraft, match=r"users_affected: '.*' is not a whole number"):
            draft_from_form({"users_affected": typed}, "UTC")


def test_a_policy_without_severity_shares_counts_them_by_rank() -> None:
    data = default_policy_data()
    del data["impact"]
    assert parse_policy(data).impact.severities == {
        "SEV1": 1.0,
        "SEV2": 0.75,
        "SEV3": 0.5,
        "SEV4": 0.25,
    }
    data["impact"] = {"severities": {"SEV1": 1.0}}  # named: only those count
    assert parse_policy(data).impact.severities == {"SEV1": 1.0}
