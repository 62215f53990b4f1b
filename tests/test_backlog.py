"""The reliability backlog from the record, on SQLite and PostgreSQL: open items with the facts
their score stands on, ranked; GET /api/backlog (filters, cursor, bounds), the CSV (formulas
escaped), and the item's score on its API view."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from followthrough.domain.draft import Draft, Priority
from followthrough.domain.incident import parse_incident
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    SYSTEM_ACTOR,
    ActionItem,
    ActionItemState,
    AuditEvent,
    Postmortem,
    PostmortemChange,
    PostmortemState,
    open_postmortem,
)
from followthrough.domain.slo import budget_findings, incident_impact
from followthrough.domain.slo_review import SloAssessment
from followthrough.reporting.backlog import item_impact, read_backlog
from followthrough.storage import Store
from tests.api_support import Api, api_for, api_settings
from tests.factories import incident_data
from tests.recorded import at, note_tags, record_item
from tests.servers.sli import CHECKOUT
from tests.test_dashboard import browser, text_of

RESOLVED = at(2026, 11, 2)
FORMULA = '=HYPERLINK("http://127.0.0.1/x","click")'


def burned_checkout() -> SloAssessment:
    impact = incident_impact(
        CHECKOUT,
        duration=timedelta(minutes=45),
        error_ratio=0.3,
        traffic_weight=1.2,
        budget_remaining_before=0.2,
    )
    return SloAssessment(
        slo=CHECKOUT,
        method="estimated",
        impact=impact,
        findings=budget_findings(impact, CHECKOUT),
        notes=[],
    )


def postmortem(
    store: Store, policy: Policy, incident_id: str, severity: str, **updates: Any
) -> Postmortem:
    data = incident_data(RESOLVED, id=incident_id, severity=severity, services=["checkout"])
    pm = open_postmortem(parse_incident(data, policy), policy, RESOLVED)
    pm = pm.model_copy(update={"state": PostmortemState.TRACKING, "last_seq": 1, **updates})
    event = AuditEvent(
        workflow_id=pm.id,
        postmortem_id=pm.id,
        seq=1,
        at=RESOLVED,
        actor=SYSTEM_ACTOR,
        action="opened",
    )
    store.records.record_postmortem(PostmortemChange(postmortem=pm, event=event))
    return pm


def item(
    store: Store,
    pm: Postmortem,
    number: int,
    *,
    title: str = "",
    team: str = "payments",
    owner: str = "bob",
    due: date = date(2026, 12, 1),
    state: ActionItemState = ActionItemState.OPEN,
    removes_class: str | None = None,
) -> ActionItem:
    return record_item(
        store,
        pm,
        number,
        state=state,
        opened=RESOLVED,
        due=due,
        title=title,
        owner=owner,
        team=team,
        priority=Priority.P2,
        accepted_when="p99 below 300 ms for 7 days",
        removes_class=removes_class,
    )


def record(store: Store, policy: Policy) -> dict[str, str]:
    """INC-1 (SEV1, 37.5 % of checkout's budget, 5,000 users) and INC-2 (SEV3) share the factor
    'deploy' with INC-3 (no open items) within the theme window."""
    first = postmortem(
        store,
        policy,
        "INC-1",
        "SEV1",
        slo_review=[burned_checkout()],
        draft=Draft(users_affected=5_000),
    )
    second = postmortem(store, policy, "INC-2", "SEV3")
    third = postmortem(store, policy, "INC-3", "SEV4")
    for pm, days in ((first, 0), (second, 10), (third, 20)):
        note_tags(store, pm.id, RESOLVED - timedelta(days=days), RESOLVED, "deploy")
    ids = {
        "canary": item(
            store, first, 1, title="Canary every rollout", removes_class="unsafe-rollout"
        ).id,
        "formula": item(store, first, 2, title=FORMULA, team="platform", owner="carol").id,
        "done": item(store, first, 3, state=ActionItemState.VERIFIED).id,
        "small": item(store, second, 1, due=date(2026, 11, 20)).id,
    }
    return ids


def test_open_items_carry_what_their_score_stands_on(store: Store, policy: Policy) -> None:
    ids = record(store, policy)
    items, truncated = store.facts.open_items(window=timedelta(days=90), most=100)
    assert not truncated
    by_id = {i.id: i for i in items}
    assert set(by_id) == {ids["canary"], ids["formula"], ids["small"]}  # not the verified one
    canary = by_id[ids["canary"]].facts
    assert canary.severity == "SEV1" and canary.users_affected == 5_000
    assert canary.removes_class == "unsafe-rollout"
    assert (canary.recurring_tag, canary.recurrence) == ("deploy", 3)
    assert [b.slo for b in canary.slo_burns] == [CHECKOUT.id]
    assert by_id[ids["small"]].facts.users_affected is None
    assert by_id[ids["small"]].services == ["checkout"]
    # The ticket's read (the impact_facts activity): the incident's facts, without an item's.
    ninety = timedelta(days=90)
    incident = store.facts.postmortem_impact(by_id[ids["canary"]].postmortem_id, window=ninety)
    assert incident == canary.model_copy(update={"removes_class": None})
    assert store.facts.postmortem_impact("postmortem-generic-nope", window=ninety) is None
    # Bounded: the soonest due first, and it says more were left.
    few, cut = store.facts.open_items(window=timedelta(days=90), most=1)
    assert [i.id for i in few] == [ids["small"]] and cut


def test_the_ranking_and_an_items_score(store: Store, policy: Policy) -> None:
    ids = record(store, policy)
    ranked = read_backlog(store, policy).items
    assert [r.item.id for r in ranked] == [ids["canary"], ids["formula"], ids["small"]]
    top = ranked[0]
    # 37.5 % of 30 = 11.2 (11.25 rounded to even), SEV1 25, 5,000 users 7.5, deploy in 3
    # postmortems 15, a class removed 15.
    assert [c.points for c in top.impact.components] == [11.2, 25.0, 7.5, 15.0, 15.0]
    assert top.impact.score == 73.7 and top.suggested_priority == "P1"
    assert top.impact.components[0].figure == "37.5 % of the 30-day budget burned"
    assert [r.this_sprint for r in ranked] == [True, True, True]
    # The same score on the item's own view, with its explanation.
    alone = item_impact(store, policy, ids["canary"], top.item.postmortem_id)
    assert alone is not None and alone.impact == top.impact
    assert "Class of failure: removes 'unsafe-rollout'" in alone.explanation
    assert item_impact(store, policy, "no-such-item", top.item.postmortem_id) is None


# --- over HTTP --------------------------------------------------------------------------------


@pytest.fixture
async def backlog_api(
    time_skipping: WorkflowEnvironment, store: Store, policy: Policy, tmp_path: Path
) -> AsyncIterator[tuple[Api, dict[str, str]]]:
    ids = record(store, policy)
    settings = api_settings(tmp_path, "unused")  # reads only: no worker needed
    async with api_for(time_skipping.client, store, settings) as api:
        yield api, ids


async def test_the_backlog_api_pages_filters_and_bounds(
    backlog_api: tuple[Api, dict[str, str]],
) -> None:
    api, ids = backlog_api
    assert (await api.get("/api/backlog")).status_code == 401  # like every /api read
    whole = (await api.get("/api/backlog", "bob")).json()
    ranked = [r["item"]["id"] for r in whole["items"]]
    assert ranked == [ids["canary"], ids["formula"], ids["small"]]
    assert whole["total"] == 3 and whole["next_cursor"] is None and not whole["truncated"]
    assert whole["items"][0]["impact"]["score"] == 73.7

    seen, cursor = [], ""
    while True:
        page = (await api.get("/api/backlog", "bob", params={"limit": 1, "cursor": cursor})).json()
        seen += [r["item"]["id"] for r in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ranked

    platform = (await api.get("/api/backlog", "bob", params={"team": "platform"})).json()
    assert [r["item"]["id"] for r in platform["items"]] == [ids["formula"]]
    elsewhere = (await api.get("/api/backlog", "bob", params={"service": "search"})).json()
    assert elsewhere["items"] == [] and elsewhere["total"] == 0

    unknown = await api.get("/api/backlog", "bob", params={"team": "nobody"})
    assert unknown.status_code == 404 and unknown.json()["detail"].startswith("team: ")
    forged = await api.get("/api/backlog", "bob", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert forged.status_code == 404 and forged.json()["detail"].startswith("cursor: ")
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 10_000}, "limit"),
        ({"team": "x" * 65}, "team"),
        ({"service": "a\x00b"}, "service"),
    ):
        refused = await api.get("/api/backlog", "bob", params=params)
        assert refused.status_code == 422, params
        assert field in refused.text


async def test_the_csv_escapes_formulas(backlog_api: tuple[Api, dict[str, str]]) -> None:
    api, ids = backlog_api
    answer = await api.get("/api/backlog.csv", "bob")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0][:5] == ["rank", "score", "suggested_priority", "this_sprint", "item"]
    formula_row = next(r for r in rows[1:] if r[4] == ids["formula"])
    assert formula_row[5] == "'" + FORMULA
    assert rows[1][4] == ids["canary"] and rows[1][1] == "73.7"
    only_platform = await api.get("/api/backlog.csv", "bob", params={"team": "platform"})
    assert len(list(csv.reader(io.StringIO(only_platform.text)))) == 2


async def test_the_item_view_explains_its_score(backlog_api: tuple[Api, dict[str, str]]) -> None:
    api, ids = backlog_api
    view = (await api.get(f"/api/action-items/{ids['small']}", "bob")).json()
    impact = view["impact"]
    # SEV3 at 40 % of 25 = 10, deploy in 3 postmortems 15: 25, P2's threshold.
    assert impact["impact"]["score"] == 25.0 and impact["suggested_priority"] == "P2"
    assert "Recurrence: 3 postmortems" in impact["explanation"]


async def test_the_backlog_page_ranks_and_the_item_shows_why(
    backlog_api: tuple[Api, dict[str, str]],
) -> None:
    api, ids = backlog_api
    async with browser(api, "bob") as client:
        page = await client.get("/backlog")
        assert page.status_code == 200
        assert 'href="/backlog" class="here"' in page.text  # in the nav
        rows = re.findall(r'<tr data-item="([^"]+)">', page.text)
        assert rows == [ids["canary"], ids["formula"], ids["small"]]
        words = text_of(page)
        assert "73.7 P1 (set P2)" in words
        assert "Canary every rollout suggested for this sprint" in words
        assert "Severity: SEV1 Recurrence: 3 postmortems" in words  # its top two reasons
        csv_link = re.search(r'<a href="([^"]+)">CSV</a>', page.text)
        assert csv_link is not None and csv_link.group(1) == "/backlog.csv"
        spreadsheet = await client.get("/backlog.csv")  # the browser's session is enough
        assert spreadsheet.status_code == 200
        assert spreadsheet.text == (await api.get("/api/backlog.csv", "bob")).text
        platform = await client.get("/backlog", params={"team": "platform"})
        assert re.findall(r'<tr data-item="([^"]+)">', platform.text) == [ids["formula"]]
        assert (await client.get("/backlog", params={"team": "nobody"})).status_code == 422
        assert (await client.get("/backlog", params={"cursor": "x"})).status_code == 422

        pm_id = ids["canary"].removesuffix("-item-1")
        item_page = text_of(await client.get(f"/postmortems/{pm_id}"))
        assert "Impact 73.7 of 100 · earns P1 (the author chose P2)" in item_page
        assert "Class of failure: removes 'unsafe-rollout'" in item_page
        review = text_of(await client.get(f"/postmortems/{pm_id}/review"))
        assert "Users affected: 5,000" in review
