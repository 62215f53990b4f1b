"""Council decisions: the domain's rules (who decides, what a decision must say, what lifts it),
and the decisions API around a real Temporal server (proposal, decline, a freeze lifted by hand).

The end to end (a theme opens it, Prometheus lifts it) is test_council_decisions_end_to_end.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from followthrough.cli import app
from followthrough.domain.decisions import (
    Choice,
    Decision,
    DecisionRequest,
    DecisionState,
    InitiativeProposal,
    LiftCondition,
    LiftKind,
    LiftRequest,
    Opening,
    Trigger,
    decide,
    decide_refusal,
    freezes_of,
    initiative_decision_id,
    lift,
    lift_refusal,
    next_check,
    proposal_problems,
    service_problem,
    unknown_services,
)
from followthrough.domain.policy import Policy
from followthrough.domain.problems import RefusalKind
from followthrough.integrations.jira import JiraConfig
from followthrough.storage import Store
from tests.api_support import Api, api_for, api_settings, link_mailer
from tests.conftest import eventually, running_worker
from tests.servers.jira_server import JiraServer
from tests.test_dashboard import browser, csrf_of, flash, text_of

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
JIRA_USER, JIRA_TOKEN = "followthrough@example.com", "jira-s3cret-token"
BUDGET = LiftCondition(kind=LiftKind.BUDGET_ABOVE, slo_id="checkout-availability", level=0.5)


def opened() -> Decision:
    return Decision(
        opening=Opening(
            decision_id="decision-theme-deploy-20261203",
            trigger=Trigger.THEME,
            subject="Recurring contributing factor 'deploy' (3 postmortems)",
            services=["checkout"],
            opened_by="followthrough",
            opened_at=NOW,
        )
    )


def freeze(**changes: object) -> DecisionRequest:
    request = DecisionRequest(
        by="grace",
        choice=Choice.FREEZE_RELEASES,
        services=["checkout"],
        lifts_when=BUDGET,
        reason="three deploy incidents",
    )
    return request.model_copy(update=changes)


def test_only_the_council_decides(policy: Policy) -> None:
    refusal = decide_refusal(opened(), freeze(by="erin"), policy, NOW)
    assert refusal is not None and refusal.kind is RefusalKind.FORBIDDEN
    assert "erin is not on it" in refusal
    assert decide_refusal(opened(), freeze(), policy, NOW) is None


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (freeze(services=[]), "services: name the services to freeze"),
        (freeze(services=["chekout"]), "services[0]: 'chekout' is not a service in the policy"),
        (freeze(lifts_when=None), "lifts_when: say what lifts it"),
        (
            freeze(lifts_when=BUDGET.model_copy(update={"level": 1.5})),
            "lifts_when.level: a budget remaining above 0 and at most 1",
        ),
        (
            freeze(lifts_when=BUDGET.model_copy(update={"level": float("nan")})),
            "lifts_when.level",
        ),
        (freeze(lifts_when=BUDGET.model_copy(update={"slo_id": None})), "lifts_when.slo_id"),
        (
            freeze(lifts_when=LiftCondition(kind=LiftKind.ITEMS_VERIFIED)),
            "lifts_when.item_ids: name the action items",
        ),
        (
            freeze(lifts_when=LiftCondition(kind=LiftKind.DATE, on=NOW - timedelta(hours=1))),
            "lifts_when.on: 2026-12-03T11:00:00+00:00 must be after now",
        ),
        (
            freeze(lifts_when=LiftCondition(kind=LiftKind.DATE, on=NOW + timedelta(days=400))),
            "at most 366 days ahead",
        ),
        (
            freeze(lifts_when=LiftCondition(kind=LiftKind.DATE, on=NOW, level=0.5)),
            "slo_id and level belong to a budget_above condition",
        ),
        (freeze(reason="a\x00b"), "reason"),
        (freeze(choice=Choice.DECLINE, lifts_when=None, reason=" "), "reason: say why"),
        (freeze(choice=Choice.DECLINE, reason="no"), "lifts_when: only a pause or a freeze"),
        (freeze(choice=Choice.RETIRE_ALERT, lifts_when=None), "alert: name the alert"),
    ],
)
def test_a_decision_that_cannot_hold_is_refused_naming_the_field(
    policy: Policy, request_: DecisionRequest, says: str
) -> None:
    refusal = decide_refusal(opened(), request_, policy, NOW)
    assert refusal is not None and refusal.kind is RefusalKind.INVALID
    assert says in refusal, refusal


def test_a_freeze_holds_its_services_until_lifted(policy: Policy) -> None:
    decided = decide(opened(), freeze(), NOW)
    assert decided.state is DecisionState.IN_FORCE
    assert decide_refusal(decided, freeze(), policy, NOW) is not None  # decided already
    [held] = freezes_of(decided)
    assert held.service == "checkout" and held.kind is Choice.FREEZE_RELEASES
    assert held.lifts_when == "error budget of checkout-availability back above 50%"
    assert held.lifted_at is None

    by_hand = LiftRequest(by="erin", reason="shipping a fix")
    refusal = lift_refusal(decided, by_hand, policy)
    assert refusal is not None and refusal.kind is RefusalKind.FORBIDDEN
    lifted = lift(decided, "heidi", "the fix is out", NOW + timedelta(hours=2))
    assert [f.lifted_at for f in freezes_of(lifted)] == [NOW + timedelta(hours=2)]
    refusal = lift_refusal(lifted, by_hand.model_copy(update={"by": "heidi"}), policy)
    assert refusal is not None and refusal.kind is RefusalKind.CONFLICT

    declined = decide(opened(), freeze(choice=Choice.DECLINE, lifts_when=None), NOW)
    assert declined.state is DecisionState.DECIDED and freezes_of(declined) == []


def test_the_next_check_is_an_interval_away_or_on_the_lift_date() -> None:
    hour = timedelta(hours=1)
    assert next_check(decide(opened(), freeze(), NOW), hour, NOW) == NOW + hour
    soon = LiftCondition(kind=LiftKind.DATE, on=NOW + timedelta(minutes=10))
    dated = decide(opened(), freeze(lifts_when=soon), NOW)
    assert next_check(dated, hour, NOW) == NOW + timedelta(minutes=10)


def test_one_decision_per_proposal_and_bounded_proposals(policy: Policy) -> None:
    assert initiative_decision_id("Canary every deploy") == initiative_decision_id(
        "  canary   EVERY deploy "
    )
    assert initiative_decision_id("Canary every deploy") != initiative_decision_id("Other")
    with pytest.raises(ValidationError, match="title"):
        InitiativeProposal(title="Canary\nevery deploy")
    proposal = InitiativeProposal.model_construct(title="Canary\nevery", detail="", items=["x\ty"])
    problems = proposal_problems(proposal)
    assert any(p.startswith("title") for p in problems), problems
    assert any(p.startswith("items[0]") for p in problems), problems
    assert unknown_services(["checkout", "nope"], policy) == [
        "services[1]: 'nope' is not a service in the policy"
    ]
    assert service_problem("checkout") is None
    assert service_problem("check out") is not None and service_problem("x" * 65) is not None


async def test_the_decisions_api(api: Api) -> None:
    proposal = {
        "title": "Canary every load-balancer change",
        "detail": "Three incidents came from unguarded config pushes.",
        "services": ["checkout", "api-gateway"],
        "items": ["Canary stage in the lb pipeline", "Config diff review bot"],
    }
    started = await api.post("/api/decisions", "bob", json=proposal)
    assert started.status_code == 201, started.text
    decision_id = started.json()["workflow_id"]
    again = await api.post("/api/decisions", "carol", json=proposal)
    assert again.json() == {"workflow_id": decision_id, "outcome": "already open"}
    bad = await api.post("/api/decisions", "bob", json={**proposal, "services": ["nope"]})
    assert bad.status_code == 404 and "services[0]" in bad.text
    bad = await api.post("/api/decisions", "bob", json={**proposal, "title": "a\x0cb"})
    assert bad.status_code == 422 and "title" in bad.text

    store = api.services.store
    await eventually(lambda: store.decisions.get(decision_id))
    listed = (await api.get("/api/decisions?state=open", "bob")).json()
    assert [d["opening"]["decision_id"] for d in listed] == [decision_id]
    assert listed[0]["opening"]["opened_by"] == "bob"

    decide = f"/api/decisions/{decision_id}/decide"
    assert (await api.post(decide, "bob", json={"choice": "decline"})).status_code == 403
    missing_reason = await api.post(decide, "grace", json={"choice": "decline"})
    assert missing_reason.status_code == 422 and "reason" in missing_reason.text
    pause = {
        "choice": "pause_feature_work",
        "services": ["api-gateway"],
        "reason": "until the canary exists",
        "lifts_when": {"kind": "items_verified", "item_ids": ["postmortem-x-item-1"]},
    }
    decided = await api.post(decide, "heidi", json=pause)
    assert decided.status_code == 200, decided.text
    frozen = (await api.get("/api/freezes?service=api-gateway", "bob")).json()
    assert frozen["frozen"] is True and frozen["freezes"][0]["kind"] == "pause_feature_work"
    assert (await api.post(decide, "grace", json=pause)).status_code == 409

    lift_it = f"/api/decisions/{decision_id}/lift"
    assert (await api.post(lift_it, "bob", json={"reason": "x"})).status_code == 403
    lifted = await api.post(lift_it, "grace", json={"reason": "the canary shipped early"})
    assert lifted.status_code == 200 and lifted.json()["state"] == "lifted", lifted.text
    assert (await api.get("/api/freezes?service=api-gateway", "bob")).json()["frozen"] is False
    shown = (await api.get(f"/api/decisions/{decision_id}", "bob")).json()
    assert shown["lifted_by"] == "grace" and shown["lift_reason"] == "the canary shipped early"
    assert (await api.get("/api/decisions/decision-nope", "bob")).status_code == 404
    assert (await api.get("/api/freezes?service=a%20b", "bob")).status_code == 422


async def test_the_council_decides_in_the_browser(api: Api) -> None:
    proposal = {"title": "Retire the noisy disk alert", "services": ["monitoring"]}
    decision_id = (await api.post("/api/decisions", "dan", json=proposal)).json()["workflow_id"]
    store = api.services.store
    await eventually(lambda: store.decisions.get(decision_id))
    async with browser(api, "heidi") as heidi, browser(api, "dan") as dan:
        seen = await dan.get("/council")
        assert seen.status_code == 200 and "Retire the noisy disk alert" in seen.text
        assert 'action="/council/decisions/' not in seen.text  # dan is not on the council
        page = await heidi.get("/council")
        assert f'action="/council/decisions/{decision_id}/decide"' in page.text
        form = {"csrf": csrf_of(page), "choice": "freeze_releases", "services": "monitoring"}
        path = f"/council/decisions/{decision_id}/decide"
        refused = await flash(heidi, await heidi.post(path, data=form | {"lift": "budget_above"}))
        assert "level: '' is not a percentage" in refused["error"], refused
        form |= {"choice": "retire_alert", "alert": "DiskAlmostFull", "reason": "pages nobody"}
        said = await flash(heidi, await heidi.post(path, data=form))
        assert said == {"done": f"Recorded: {decision_id} is decided."}, said
        # The council hears of it, though the workflow ends with the decision.
        await eventually(lambda: store.outbox.message(f"{decision_id}/decided"))
        shown = text_of(await dan.get(f"/council/decisions/{decision_id}"))
        assert "retire alert" in shown and "DiskAlmostFull" in shown and "heidi" in shown
        recent = text_of(await dan.get("/council"))
        assert "Nothing waits for the council." in recent and "No service is frozen." in recent


def test_freeze_check_exits_2_when_it_cannot_tell(sqlite_store: Store) -> None:
    env = {"FOLLOWTHROUGH_DATABASE_URL": str(sqlite_store.engine.url)}
    runner = CliRunner()
    unknown = runner.invoke(app, ["freeze", "check", "chekout"], env=env)
    assert unknown.exit_code == 2 and "'chekout' is not in the policy's services" in unknown.output
    malformed = runner.invoke(app, ["freeze", "check", "a b"], env=env)
    assert malformed.exit_code == 2 and "service:" in malformed.output
    free = runner.invoke(app, ["freeze", "check", "billing", "--json"], env=env)
    assert free.exit_code == 0, free.output
    assert json.loads(free.output) == {"service": "billing", "frozen": False, "freezes": []}
    sqlite_store.decisions.save(decide(opened(), freeze(services=["billing"]), NOW))
    frozen = runner.invoke(app, ["freeze", "check", "billing"], env=env)
    assert frozen.exit_code == 1
    assert frozen.output.startswith("billing is frozen: freeze releases by grace on 2026-12-03")
    assert "lifts when error budget of checkout-availability back above 50%" in frozen.output


async def test_a_ci_gate_reads_freezes_with_the_gate_token_and_nothing_else(api: Api) -> None:
    api.services.settings = api.services.settings.model_copy(update={"gate_token": "gate-s3cret"})
    gate = {"Authorization": "Bearer gate-s3cret"}
    answer = await api.http.get("/api/freezes?service=checkout", headers=gate)
    assert answer.status_code == 200, answer.text
    assert answer.json()["service"] == "checkout"
    assert (await api.http.get("/api/decisions", headers=gate)).status_code == 401
    wrong = {"Authorization": "Bearer gate-s3cre"}
    assert (await api.http.get("/api/freezes?service=checkout", headers=wrong)).status_code == 401


async def test_an_approved_initiative_becomes_an_epic_with_its_items_in_jira(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    with JiraServer(users={JIRA_USER: JIRA_TOKEN}, deployment_type="Cloud") as jira:
        config = JiraConfig(
            url=jira.url, user=JIRA_USER, token=JIRA_TOKEN, project="PM", timeout=5.0, epics=True
        )
        client, store = time_skipping.client, sqlite_store
        mailer = link_mailer(tmp_path / "outbox")
        async with (
            running_worker(client, store, mailer, jira=config) as queue,
            api_for(client, store, api_settings(tmp_path, queue)) as api,
        ):
            proposal = {  # not the API test's title: that decision exists on this server
                "title": "Canary every load-balancer config push",
                "items": ["Canary stage in the lb pipeline", "Config diff review bot"],
            }
            started = await api.post("/api/decisions", "bob", json=proposal)
            assert started.json()["outcome"] == "started", started.text
            decision_id = started.json()["workflow_id"]
            await eventually(lambda: store.decisions.get(decision_id))
            decide = f"/api/decisions/{decision_id}/decide"
            approved = await api.post(decide, "grace", json={"choice": "approve_initiative"})
            assert approved.status_code == 200, approved.text
            decided = await eventually(
                lambda: (d := store.decisions.get(decision_id)) and d.tickets and d, seconds=30
            )
    assert decided.state is DecisionState.DECIDED and len(decided.tickets) == 2
    epics = [k for k, i in jira.issues.items() if i["fields"]["issuetype"]["name"] == "Epic"]
    [epic] = epics
    assert "Canary every load-balancer config push" in jira.issue(epic)["fields"]["summary"]
    for ticket, title in zip(decided.tickets, proposal["items"], strict=True):
        fields = jira.issue(ticket.key)["fields"]
        assert fields["summary"] == title and fields["parent"]["key"] == epic
