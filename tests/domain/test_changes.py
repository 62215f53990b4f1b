"""Deploys and the change metrics, with hand-computed expectations (domain/changes.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from followthrough.domain.changes import (
    ChangeFigures,
    ChangePolicy,
    Deploy,
    IncidentChange,
    caused_by_change_problem,
    change_metrics,
    deploy_problems,
    suspects,
)
from followthrough.domain.draft import Draft, draft_bounds
from followthrough.domain.draft_form import draft_from_form
from followthrough.domain.policy import Policy
from tests.domain.test_policy import default_policy_data

SERVICES = {"checkout": "payments", "billing": "payments", "api-gateway": "platform"}
POLICY = ChangePolicy()  # six hours, production only


def at(day: int, hour: int = 12, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def deploy(
    id: str,
    when: datetime,
    service: str = "checkout",
    version: str | None = None,
    **more: object,
) -> Deploy:
    fields: dict[str, object] = {
        "source": "generic",
        "id": id,
        "service": service,
        "version": version or f"v-{id}",
        "environment": "production",
        "status": "succeeded",
        "finished_at": when,
    }
    fields.update(more)
    return Deploy.model_validate(fields)


def test_the_policy_has_a_six_hour_suspect_window_by_default() -> None:
    policy = Policy.model_validate(default_policy_data())
    assert policy.changes.suspect_window_hours == 6
    assert policy.changes.environments == ["production"]


def test_change_failure_rate_counts_incidents_in_the_window_named_causes_and_rollbacks() -> None:
    deploys = [
        # March, checkout: five counted deploys
        deploy("c1", at(1), version="1.0"),
        deploy("c2", at(2, 9), version="1.1"),  # incident at 2nd 14:00: 5 h after -> led to it
        deploy("c3", at(3), version="1.2"),  # rolled back by c4
        deploy("c4", at(3, 13), version="1.1", rollback_of="1.2"),  # a rollback
        deploy("c5", at(10), version="1.3"),  # incident 7 h later: outside the window
        # not counted: failed, staging, unfinished
        deploy("x1", at(4), status="failed"),
        deploy("x2", at(4), environment="staging"),
        deploy("x3", at(4), status="in_progress"),
        # March, billing: two; the postmortem names b1 though an incident followed b2
        deploy("b1", at(5), service="billing"),
        deploy("b2", at(20, 10), service="billing"),
        # April, api-gateway: one, its incident's postmortem says no change caused it
        deploy("g1", at(1, 8, month=4), service="api-gateway"),
        # a service with no team
        deploy("u1", at(6), service="unowned"),
    ]
    incidents = [
        IncidentChange(services=["checkout"], started_at=at(2, 14), resolved_at=at(2, 16)),
        IncidentChange(services=["checkout"], started_at=at(10, 19), resolved_at=at(10, 23)),
        IncidentChange(
            services=["billing"],
            started_at=at(20, 11),
            resolved_at=at(20, 12),
            caused_by_change="b1",
        ),
        IncidentChange(
            services=["api-gateway"], started_at=at(1, 9, month=4), caused_by_change="none"
        ),
    ]
    metrics = change_metrics(deploys, incidents, SERVICES, POLICY)

    by_service = {(f.month, f.service): f for f in metrics.by_service}
    checkout = by_service[("2026-03", "checkout")]
    assert (checkout.deploys, checkout.led_to_incident, checkout.rolled_back) == (5, 1, 1)
    assert (checkout.failed_changes, checkout.rollbacks) == (2, 1)
    assert checkout.change_failure_rate == 2 / 5
    assert checkout.rollback_rate == 1 / 5
    assert checkout.team == "payments"
    assert (checkout.incidents, checkout.time_to_restore) == (2, timedelta(hours=3))  # 2 h, 4 h

    billing = by_service[("2026-03", "billing")]
    assert (billing.deploys, billing.failed_changes) == (2, 1)  # b1 named; b2 not
    gateway = by_service[("2026-04", "api-gateway")]
    assert (gateway.deploys, gateway.failed_changes, gateway.change_failure_rate) == (1, 0, 0.0)
    assert by_service[("2026-03", "unowned")].team is None

    by_team = {(f.month, f.team): f for f in metrics.by_team}
    payments = by_team[("2026-03", "payments")]
    assert (payments.deploys, payments.failed_changes, payments.rollbacks) == (7, 3, 1)
    assert payments.change_failure_rate == 3 / 7
    # checkout's 2 h and 4 h, billing's 1 h: the middle one
    assert (payments.incidents, payments.time_to_restore) == (3, timedelta(hours=2))
    assert set(by_team) == {("2026-03", "payments"), ("2026-04", "platform")}


def test_a_deploy_that_led_to_an_incident_and_was_rolled_back_is_one_failed_change() -> None:
    deploys = [
        deploy("a", at(1, 8), version="2.0"),
        deploy("b", at(1, 10), version="1.9", rollback_of="2.0"),
    ]
    incidents = [IncidentChange(services=["checkout"], started_at=at(1, 9))]
    (figures,) = change_metrics(deploys, incidents, SERVICES, POLICY).by_service
    assert (figures.deploys, figures.led_to_incident, figures.rolled_back) == (2, 1, 1)
    assert figures.failed_changes == 1


def test_months_are_read_in_the_calendars_zone() -> None:
    late = deploy("n", datetime(2026, 3, 31, 23, 30, tzinfo=UTC))
    (utc,) = change_metrics([late], [], SERVICES, POLICY).by_service
    (berlin,) = change_metrics([late], [], SERVICES, POLICY, zone="Europe/Berlin").by_service
    assert (utc.month, berlin.month) == ("2026-03", "2026-04")


def test_no_deploys_means_no_rate_not_zero() -> None:
    metrics = change_metrics([], [], SERVICES, POLICY)
    assert metrics.by_service == [] and metrics.by_team == []
    empty = ChangeFigures(
        month="2026-03", deploys=0, led_to_incident=0, rolled_back=0, failed_changes=0, rollbacks=0
    )
    assert (empty.change_failure_rate, empty.rollback_rate) == (None, None)


def test_the_editor_reads_the_change_that_caused_it() -> None:
    assert draft_from_form({"caused_by_change": " 42 "}, "UTC").caused_by_change == "42"
    assert draft_from_form({"caused_by_change": " "}, "UTC").caused_by_change is None
    bad = Draft(caused_by_change="x\ny")
    assert any(
        p.startswith("caused_by_change: contains a line break")
        for p in draft_bounds(bad, today=date(2026, 3, 1))
    )


def test_suspects_are_the_services_deploys_in_the_window_oldest_first() -> None:
    started = at(2, 14)
    deploys = [
        deploy("late", at(2, 13)),
        deploy("early", at(2, 8)),  # exactly six hours before: in
        deploy(
            "old",
            at(
                2,
                7,
            ),
        ),  # seven hours: out
        deploy("after", at(2, 15)),  # after the start: out
        deploy("other", at(2, 12), service="billing"),
        deploy("failed", at(2, 12), status="failed"),
    ]
    found = suspects(deploys, ["checkout"], started, POLICY)
    assert [d.id for d in found] == ["early", "late"]
    wider = ChangePolicy(suspect_window_hours=8)
    assert [d.id for d in suspects(deploys, ["checkout"], started, wider)] == [
        "old",
        "early",
        "late",
    ]


def test_caused_by_change_names_a_deploy_of_the_incident_or_none() -> None:
    candidates = [deploy("c2", at(2))]
    assert caused_by_change_problem(None, candidates) is None
    assert caused_by_change_problem("none", candidates) is None
    assert caused_by_change_problem("c2", candidates) is None
    problem = caused_by_change_problem("c9", candidates)
    assert problem is not None and problem.startswith("caused_by_change: 'c9'")


def test_deploy_problems_name_the_field() -> None:
    good = deploy("d1", at(1))
    assert deploy_problems(good) == []
    bad = deploy(
        "d" * 201,
        at(1),
        version="v" * 129,
        link="ftp://x",
        by="a\nb",
        started_at=at(1) + timedelta(hours=1),
    )
    problems = deploy_problems(bad)
    assert any(p.startswith("id: at most 200") for p in problems)
    assert any(p.startswith("version: at most 128") for p in problems)
    assert "link: must be an http(s) URL" in problems
    assert any(p.startswith("by: contains a line break") for p in problems)
    assert "finished_at: before started_at" in problems
    far = deploy("d2", datetime(1990, 1, 1, tzinfo=UTC))
    assert any(p.startswith("finished_at: 1990-01-01") for p in deploy_problems(far))
