"""Where each team plans: the policy's routing, objectives and tech-debt backlog, checked together;
the route an item's ticket takes; an item's objective and sprint judged with the draft."""

from __future__ import annotations

import copy
from typing import Any

from followthrough.domain.draft_form import draft_from_form, form_rows
from followthrough.domain.policy import Policy, parse_policy
from followthrough.domain.routing import ticket_route
from followthrough.domain.tickets import TicketRoute
from tests.domain.examples import NOW, make_incident, problems_of
from tests.domain.test_policy import default_policy_data, policy_problems
from tests.factories import draft_data

ROUTED: dict[str, Any] = {
    "routing": {
        "teams": {
            "payments": {
                "tracker": {"kind": "jira", "project": "PAY", "labels": ["payments"], "board": 12},
                "tech_debt": "PAY-7",
            },
            "platform": {"tracker": {"kind": "github", "project": "acme/platform"}},
        },
        "services": {
            "billing": {"tracker": {"kind": "jira", "project": "BIL", "board": 14}},
        },
    },
    "objectives": {
        "checkout-availability": {
            "title": "Checkout at 99.95% availability",
            "jira": "REL-100",
            "github": "Checkout 99.95%",
        },
        "faster-deploys": {"title": "Deploys under 10 minutes", "jira": "REL-200"},
    },
    "tech_debt": {"jira": "REL-7", "github": "Tech debt"},
}


def routed_data(**changes: Any) -> dict[str, Any]:
    data = default_policy_data() | copy.deepcopy(ROUTED)
    data.update(changes)
    return data


def routed() -> Policy:
    return parse_policy(routed_data())


# --- the policy ----------------------------------------------------------------------------------


def test_the_routing_sections_load() -> None:
    policy = routed()
    assert policy.routing.teams["payments"].tracker.board == 12
    assert policy.objectives["faster-deploys"].github is None
    assert parse_policy(default_policy_data()).routing.teams == {}  # optional: no routing


def test_routing_problems_name_their_fields() -> None:
    data = routed_data()
    teams = data["routing"]["teams"]
    teams["growth"] = {"tracker": {"project": "GRO"}}
    teams["payments"]["tracker"]["project"] = "pay-team"
    teams["payments"]["tracker"]["labels"] = ["has space"]
    teams["payments"]["tech_debt"] = "seven"
    teams["platform"]["tracker"]["project"] = "not a repo"
    teams["platform"]["tracker"]["board"] = 3
    data["routing"]["services"]["search"] = {"tracker": {"project": "SRCH"}}
    data["objectives"]["tech-debt"] = {"title": "Mine", "jira": "REL-1"}
    data["objectives"]["No Spaces"] = {"title": "x", "jira": "REL-2"}
    data["objectives"]["empty"] = {"title": "Nowhere"}
    data["objectives"]["bad-epic"] = {"title": "Bad", "jira": "rel-9"}
    data["tech_debt"]["jira"] = "REL"
    said = policy_problems(data)
    for expected in (
        "routing.teams.growth: unknown team 'growth'",
        "routing.teams.payments.tracker.project: 'pay-team' is not a Jira project key",
        "routing.teams.payments.tracker.labels[0]: 'has space' must be 1 to 50 characters",
        "routing.teams.payments.tech_debt: 'seven' is not a Jira issue key",
        "routing.teams.platform.tracker.project: 'not a repo' is not a GitHub repository",
        "routing.teams.platform.tracker.board: a board is Jira's",
        "routing.services.search: unknown service (not in services) 'search'",
        "objectives.tech-debt: 'tech-debt' is the tech-debt backlog's name",
        "objectives.No Spaces: a key is lowercase letters",
        "objectives.empty: name its jira epic, its github milestone, or both",
        "objectives.bad-epic.jira: 'rel-9' is not a Jira issue key",
        "tech_debt.jira: 'REL' is not a Jira issue key",
    ):
        assert expected in said, expected


def test_an_unknown_tracker_kind_is_refused() -> None:
    data = routed_data()
    data["routing"]["teams"]["payments"]["tracker"]["kind"] = "trello"
    assert "routing.teams.payments.tracker.kind" in policy_problems(data)


# --- ticket_route --------------------------------------------------------------------------------


def test_a_routed_team_gets_its_project_labels_board_and_objective_epic() -> None:
    route = ticket_route(routed(), "payments", ["checkout"], "checkout-availability", True)
    assert route == TicketRoute(
        tracker="jira",
        project="PAY",
        labels=["payments"],
        board=12,
        epic="REL-100",
        this_sprint=True,
    )


def test_the_service_route_wins_over_its_team() -> None:
    route = ticket_route(routed(), "payments", ["checkout", "billing"], None, False)
    assert route is not None and route.project == "BIL" and route.board == 14
    # A service another team owns does not take this team's items.
    route = ticket_route(routed(), "platform", ["billing"], None, False)
    assert route is not None and (route.tracker, route.project) == ("github", "acme/platform")


def test_tech_debt_is_the_teams_own_epic_else_the_global_one_in_its_tracker() -> None:
    policy = routed()
    assert ticket_route(policy, "payments", [], "tech-debt", False).epic == "PAY-7"  # type: ignore[union-attr]
    assert ticket_route(policy, "platform", [], "tech-debt", False).epic == "Tech debt"  # type: ignore[union-attr]
    assert ticket_route(policy, "sre", [], "tech-debt", False) == TicketRoute(epic="REL-7")
    github = ticket_route(policy, "platform", [], "checkout-availability", False)
    assert github is not None and github.epic == "Checkout 99.95%"


def test_nothing_routed_is_no_route_the_default_project() -> None:
    policy = routed()
    assert ticket_route(policy, "sre", ["monitoring"], None, False) is None
    assert ticket_route(parse_policy(default_policy_data()), "payments", [], None, False) is None
    # An objective that has gone from the policy links nothing (the workflow must not fail).
    assert ticket_route(policy, "sre", [], "gone", False) is None


# --- an item's objective and sprint, judged with its draft ----------------------------------------


def _items(*changes: dict[str, Any]) -> dict[str, Any]:
    draft = draft_data(NOW)
    for item, change in zip(draft["action_items"], changes, strict=False):
        item.update(change)
    return draft


def test_an_items_objective_and_sprint_are_accepted_when_the_policy_routes_them() -> None:
    policy = routed()
    draft = _items(
        {"objective": "checkout-availability", "this_sprint": True},
        {"objective": "tech-debt"},
    )
    assert problems_of(policy, draft, make_incident(policy)) == []


def test_unknown_objective_and_a_sprint_without_a_board_are_refused_naming_the_item() -> None:
    policy = routed()
    draft = _items(
        {"objective": "world-peace"},
        {"objective": "faster-deploys", "this_sprint": True},
    )
    problems = problems_of(policy, draft, make_incident(policy))
    assert problems == [
        "action_items[0] 'Alert on checkout 5xx ratio': objective 'world-peace' is not one of "
        "the policy's objectives (known: checkout-availability, faster-deploys, tech-debt)",
        "action_items[1] 'Canary load-balancer config pushes': objective 'faster-deploys' has "
        "no GitHub milestone in the policy, where team 'platform' plans",
        "action_items[1] 'Canary load-balancer config pushes': this_sprint: team 'platform' "
        "has no Jira board in the policy's routing (routing.teams.<team>.tracker.board)",
    ]


def test_tech_debt_needs_a_backlog_somewhere() -> None:
    policy = parse_policy(default_policy_data())
    problems = problems_of(policy, _items({"objective": "tech-debt"}))
    assert problems == [
        "action_items[0] 'Alert on checkout 5xx ratio': objective 'tech-debt' has no Jira epic "
        "in the policy, where team 'payments' plans"
    ]


def test_an_objective_is_bounded_like_any_name() -> None:
    policy = routed()
    problems = problems_of(policy, _items({"objective": "x\n" * 100}))
    assert any(p.startswith("action_items[0].objective: at most 128 characters") for p in problems)


def test_the_editor_reads_and_shows_an_items_objective_and_sprint() -> None:
    form = {
        "item-0-title": "Alert on checkout 5xx ratio",
        "item-0-objective": "tech-debt",
        "item-0-this_sprint": "on",
        "item-1-title": "Canary load-balancer config pushes",
    }
    draft = draft_from_form(form, "UTC")
    first, second = draft.action_items
    assert (first.objective, first.this_sprint) == ("tech-debt", True)
    assert (second.objective, second.this_sprint) == (None, False)
    rows = form_rows(draft, "UTC")["items"]
    assert (rows[0]["objective"], rows[0]["this_sprint"]) == ("tech-debt", "on")
    assert (rows[1]["objective"], rows[1]["this_sprint"]) == ("", "")
