"""The human HTTP API: tokens, who may do what, one-click links, health and metrics.

Real Temporal (time-skipping server), a real worker and SQLite; requests go through the real app.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from followthrough.domain.access import LinkAction, OneClickLink, sign_link
from followthrough.domain.incident import parse_incident
from followthrough.domain.postmortem import ActionItem, Postmortem
from followthrough.storage import Store
from followthrough.temporal.client import start_postmortem
from tests.api_support import LINK_SECRET, Api
from tests.conftest import eventually
from tests.factories import draft_data, incident_data


async def open_postmortem(api: Api, env: WorkflowEnvironment, **overrides: Any) -> str:
    now = await env.get_current_time()
    policy = api.services.policy
    incident = parse_incident(incident_data(now, **overrides), policy)
    started = await start_postmortem(
        api.services.client, incident, policy, task_queue=api.services.task_queue
    )
    await eventually(lambda: api.services.store.records.postmortem(started.workflow_id))
    return started.workflow_id


async def tracked_postmortem(api: Api, env: WorkflowEnvironment) -> tuple[str, str, str]:
    """A SEV2 postmortem approved through the API; its two items recorded."""
    pm_id = await open_postmortem(api, env)
    now = await env.get_current_time()
    assert (await api.post(f"/api/postmortems/{pm_id}/draft", "alice", draft_data(now))).is_success
    assert (await api.post(f"/api/postmortems/{pm_id}/approve", "erin", {})).is_success
    store = api.services.store
    bob_item, carol_item = f"{pm_id}-item-1", f"{pm_id}-item-2"
    await eventually(
        lambda: store.records.action_item(bob_item) and store.records.action_item(carol_item)
    )
    return pm_id, bob_item, carol_item


def stored_item(api: Api, item_id: str) -> ActionItem:
    found = api.services.store.records.action_item(item_id)
    assert found is not None, item_id
    return found


def stored_postmortem(api: Api, pm_id: str) -> Postmortem:
    found = api.services.store.records.postmortem(pm_id)
    assert found is not None, pm_id
    return found


def expect(response: Any, status: int, detail: str | None = None) -> Any:
    assert response.status_code == status, response.text
    if detail is not None:
        assert re.search(detail, response.json()["detail"]), response.json()["detail"]
    return response.json()


# --- tokens ------------------------------------------------------------------------------------


async def test_requests_need_a_valid_unrevoked_token(api: Api) -> None:
    missing = await api.get("/api/postmortems")
    expect(missing, 401, "Authorization: Bearer")
    assert missing.headers["www-authenticate"] == "Bearer"
    forged = await api.http.get("/api/postmortems", headers={"Authorization": "Bearer ft_nope"})
    expect(forged, 401, "unknown or revoked")

    expect(await api.get("/api/me", "maria"), 200)
    me = (await api.get("/api/me", "maria")).json()
    assert me == {
        "person": "maria",
        "email": "maria@example.com",
        "teams": ["payments"],
        "manages": ["payments"],
        "reviewer": True,
        "council": False,
    }
    store = api.services.store
    (token,) = store.tokens.all("maria")
    assert token.last_used_at is not None
    assert all(api.token("maria") not in str(row) for row in store.tokens.all())  # only a hash
    store.tokens.revoke(token.id, datetime.now(UTC), by="sam")
    expect(await api.get("/api/me", "maria"), 401, "unknown or revoked")


async def test_tokens_are_only_for_people_in_the_directory(api: Api) -> None:
    with pytest.raises(LookupError, match="'mallory' is not in the policy's directory"):
        api.token("mallory")
    api.token("dan")
    shrunk = api.services.policy.model_copy(deep=True)
    shrunk.teams["platform"].members.remove("dan")
    api.services.settings.__dict__["loaded_policy"] = shrunk  # dan left the company
    expect(await api.get("/api/me", "dan"), 403, "no longer in the policy's directory")


# --- who may do what ----------------------------------------------------------------------------


async def test_every_review_action_is_authorized(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id = await open_postmortem(api, time_skipping)
    now = await time_skipping.get_current_time()
    draft = f"/api/postmortems/{pm_id}/draft"
    expect(
        await api.post(draft, "bob", draft_data(now)), 403, r"only the postmortem owner \(alice\)"
    )
    bad = expect(await api.post(draft, "alice", draft_data(now, impact="", action_items=[])), 422)
    assert "impact" in bad["detail"] and "action_items" in bad["detail"]
    expect(await api.post(draft, "alice", {"summary": 3, "nonsense": True}), 422)
    assert stored_postmortem(api, pm_id).state.value == "drafting"  # nothing changed

    expect(await api.post(draft, "alice", draft_data(now)), 200)
    expect(await api.post(draft, "alice", draft_data(now)), 409, "only while drafting")
    approve = f"/api/postmortems/{pm_id}/approve"
    changes = f"/api/postmortems/{pm_id}/request-changes"
    expect(await api.post(approve, "alice", {}), 403, "wrote this draft and cannot review it")
    expect(await api.post(approve, "bob", {}), 403, "not a reviewer")
    expect(await api.post(changes, "erin", {"reason": " "}), 422, "a reason is required")
    expect(await api.post(approve, "erin", {"by": "grace"}), 422)  # the actor is the token's
    approved = expect(await api.post(approve, "erin", {"comment": "clear"}), 200)
    assert approved["state"] == "tracking"
    expect(await api.post(approve, "frank", {}), 409, "not in review")
    expect(await api.post("/api/postmortems/INC-nope/approve", "erin", {}), 404, "no postmortem")

    tail = pm_id.removeprefix("postmortem-generic-")  # what people type: INC-...
    shown = expect(await api.get(f"/api/postmortems/{tail}", "dan"), 200)
    assert shown["postmortem"]["id"] == pm_id
    assert [e["action"] for e in shown["audit"]][:3] == [
        "postmortem.opened",
        "draft.submitted",
        "draft.approved",
    ]


async def test_every_action_item_action_is_authorized(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id, bob_item, carol_item = await tracked_postmortem(api, time_skipping)
    item = f"/api/action-items/{bob_item}"

    expect(await api.post(f"{item}/acknowledge", "carol"), 403, r"only the owner \(bob\)")
    expect(await api.post(f"{item}/acknowledge", "bob"), 200)
    expect(await api.post(f"{item}/acknowledge", "bob"), 409, "already acknowledged")

    expect(await api.post(f"{item}/claim-done", "carol", {"evidence": "x"}), 403, "only the owner")
    expect(await api.post(f"{item}/claim-done", "bob", {"evidence": ""}), 422, "evidence")
    expect(await api.post(f"{item}/claim-done", "bob", {"evidence": "PR 42"}), 200)
    expect(await api.post(f"{item}/verify", "bob", {}), 403, "cannot verify their own work")
    expect(await api.post(f"{item}/reject", "erin", {"reason": ""}), 422, "a reason is required")
    reopened = expect(await api.post(f"{item}/reject", "erin", {"reason": "no alert yet"}), 200)
    assert reopened["state"] == "open"

    later = (datetime.fromisoformat(reopened["due"]) + timedelta(days=10)).date().isoformat()
    earlier = (datetime.fromisoformat(reopened["due"]) - timedelta(days=1)).date().isoformat()
    ask = f"{item}/extension"
    expect(await api.post(ask, "erin", {"until": later, "reason": "r"}), 403, "only the owner")
    expect(await api.post(ask, "bob", {"until": earlier, "reason": "r"}), 422, "must be after")
    expect(await api.post(ask, "bob", {"until": "not a date", "reason": "r"}), 422)
    expect(await api.post(ask, "bob", {"until": later, "reason": "vendor delay"}), 200)
    expect(await api.post(ask, "bob", {"until": later, "reason": "again"}), 409, "already has")
    decide = f"{item}/extension/decision"
    expect(await api.post(decide, "bob", {"approve": True}), 403, "cannot decide their own")
    expect(await api.post(decide, "erin", {"approve": True}), 403, r"manager \(maria\)")
    expect(await api.post(decide, "maria", {"approve": False}), 422, "why the extension is denied")
    extended = expect(await api.post(decide, "maria", {"approve": True}), 200)
    assert extended["due"] == later

    move = f"{item}/reassign"
    expect(await api.post(move, "dan", {"to": "alice"}), 403, "can reassign")
    expect(await api.post(move, "bob", {"to": "mallory"}), 422, "not in the policy's directory")
    moved = expect(await api.post(move, "bob", {"to": "alice", "reason": "bob is on leave"}), 200)
    assert moved["owner"] == "alice" and moved["acknowledged_at"] is None

    risk = f"/api/action-items/{carol_item}/accept-risk"
    expect(
        await api.post(risk, "pat", {"reason": "we accept this risk"}),
        403,
        "only the reliability council",
    )
    expect(await api.post(risk, "grace", {"reason": "fine"}), 422, "write down why")
    expect(await api.post(risk, "grace", {"reason": "canary tooling is a Q3 project"}), 200)

    expect(await api.post(f"{item}/claim-done", "alice", {"evidence": "alert PR 77"}), 200)
    expect(await api.post(f"{item}/verify", "erin", {"note": "paged in drill"}), 200)
    await eventually(lambda: stored_postmortem(api, pm_id).state.value == "closed")
    expect(await api.post(f"{item}/acknowledge", "alice"), 409)

    mine = expect(await api.get("/api/action-items?owner=alice", "alice"), 200)
    assert [i["id"] for i in mine] == [bob_item]
    shown = expect(await api.get(f"/api/action-items/{bob_item}", "dan"), 200)
    actions = [e["action"] for e in shown["audit"]]
    assert actions.count("item.acknowledged") == 1 and actions[-1] == "item.verified"
    expect(await api.get("/api/action-items?state=bogus", "dan"), 422)
    expect(await api.get("/api/action-items/nope-item-9", "dan"), 404)


# --- one-click links ---------------------------------------------------------------------------


def links_in_outbox(store: Store, item_id: str, to: str | None = None) -> dict[str, str]:
    """The one-click links in the item's emails (with `to`, only in those to that address: the
    previous owner's "item assigned" email carries links of their own)."""
    found: dict[str, str] = {}
    for message in store.outbox.messages(action_item_id=item_id, recipient=to):
        for action, path in re.findall(r"(Acknowledge|more time):\s+\S+?(/act/\S+)", message.text):
            found.setdefault("acknowledge" if action == "Acknowledge" else "extend", path)
    return found


async def test_one_click_links_from_an_email_work_once_for_their_person(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    _, bob_item, _ = await tracked_postmortem(api, time_skipping)
    store = api.services.store
    expect(await api.post(f"/api/action-items/{bob_item}/reassign", "maria", {"to": "alice"}), 200)
    # The "You now own ..." email to alice
    links = await eventually(lambda: links_in_outbox(store, bob_item, "alice@example.com"))
    assert set(links) == {"acknowledge", "extend"}

    page = await api.http.get(links["acknowledge"])
    assert page.status_code == 200 and "Acknowledge" in page.text and "alice" in page.text
    assert stored_item(api, bob_item).acknowledged_at is None  # opening the link does nothing

    tampered = links["acknowledge"][:-2] + (
        "AA" if not links["acknowledge"].endswith("AA") else "BB"
    )
    assert (await api.http.post(tampered)).status_code == 403

    used = await api.http.post(links["acknowledge"])
    assert used.status_code == 200 and "Acknowledged" in used.text
    assert stored_item(api, bob_item).acknowledged_by == "alice"
    replay = await api.http.post(links["acknowledge"])
    assert replay.status_code == 410 and "already used" in replay.text
    assert (await api.http.get(links["acknowledge"])).status_code == 410

    no_date = await api.http.post(links["extend"], data={"reason": "waiting on vendor"})
    assert no_date.status_code == 422 and "choose the new due date" in no_date.text
    due = stored_item(api, bob_item).due
    asked = await api.http.post(
        links["extend"], data={"until": (due + timedelta(days=7)).isoformat(), "reason": "vendor"}
    )
    assert asked.status_code == 200 and "maria" in asked.text, asked.text
    assert stored_item(api, bob_item).pending_extension is not None
    assert (await api.http.post(links["extend"], data={"until": "2099-01-01"})).status_code == 410


async def test_expired_and_misdirected_links_change_nothing(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    _, bob_item, _ = await tracked_postmortem(api, time_skipping)
    now = datetime.now(UTC)

    def link(person: str, expires: datetime, nonce: str) -> str:
        made = OneClickLink(
            action=LinkAction.ACKNOWLEDGE,
            action_item_id=bob_item,
            person=person,
            expires_at=expires,
            nonce=nonce,
        )
        return f"/act/{sign_link(made, LINK_SECRET)}"

    expired = await api.http.post(link("bob", now - timedelta(minutes=1), "n1"))
    assert expired.status_code == 410 and "expired" in expired.text
    other_secret = OneClickLink(
        action=LinkAction.ACKNOWLEDGE,
        action_item_id=bob_item,
        person="bob",
        expires_at=now + timedelta(days=1),
        nonce="n2",
    )
    forged = await api.http.post(f"/act/{sign_link(other_secret, 'guessed-secret')}")
    assert forged.status_code == 403 and "signature" in forged.text
    misdirected = await api.http.post(link("carol", now + timedelta(days=1), "n3"))
    assert misdirected.status_code == 403 and "only the owner (bob)" in misdirected.text
    assert api.services.store.links.use("n3") is None  # refused: the link was given back
    assert stored_item(api, bob_item).acknowledged_at is None


# --- operations -------------------------------------------------------------------------------


async def test_health_metrics_and_openapi(api: Api, time_skipping: WorkflowEnvironment) -> None:
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    await open_postmortem(api, time_skipping)
    await api.get("/api/postmortems", "dan")
    metrics = (await api.get("/metrics", "dan")).text
    assert 'followthrough_open_postmortems{state="drafting"} 1.0' in metrics
    assert (
        'followthrough_http_requests_total{method="GET",route="/api/postmortems",status="200"} 1.0'
        in metrics
    )
    spec = (await api.http.get("/openapi.json")).json()
    assert "/webhooks/{source}" in spec["paths"]
    assert "/api/action-items/{item}/claim-done" in spec["paths"]
    assert (await api.http.get("/docs")).status_code == 200


async def test_the_reliability_figures_come_from_the_approved_reviewed_timeline(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    """A PagerDuty-like incident (start and resolution only): no acknowledgement counts until
    the approved draft's timeline says when it was acknowledged; each figure has its count."""
    now = await time_skipping.get_current_time()
    pm_id = await open_postmortem(
        api, time_skipping, detected_at=None, acknowledged_at=None, mitigated_at=None
    )  # started 4 h before now, resolved 1 h before

    def coverage(figures: dict[str, Any]) -> dict[str, tuple[int, int]]:
        return {c["duration"]: (c["count"], c["incidents"]) for c in figures["coverage"]}

    drafting = expect(await api.get("/api/reliability", "dan"), 200)
    assert coverage(drafting)["acknowledge"] == (0, 1)
    assert coverage(drafting)["resolve"] == (1, 1) and drafting["reviewed"] == 0

    started = stored_postmortem(api, pm_id).incident.started_at
    assert started is not None

    def entry(minutes_after_start: int, kind: str) -> dict[str, str]:
        at = started + timedelta(minutes=minutes_after_start)
        return {"at": at.isoformat(), "kind": kind, "description": kind}

    draft = draft_data(now)
    draft["timeline"] += [
        entry(10, "alert"),  # a candidate: no detection
        entry(15, "detected"),
        entry(18, "acknowledged"),  # 3 min after detection
        entry(30, "status_update"),  # the first communication
        entry(90, "mitigated"),
    ]
    assert (await api.post(f"/api/postmortems/{pm_id}/draft", "alice", draft)).is_success
    assert (await api.post(f"/api/postmortems/{pm_id}/approve", "erin", {})).is_success
    await eventually(lambda: stored_postmortem(api, pm_id).state.value == "tracking")

    approved = expect(await api.get("/api/reliability", "dan"), 200)
    assert coverage(approved) == {
        "detect": (1, 1),
        "acknowledge": (1, 1),
        "mitigate": (1, 1),
        "resolve": (1, 1),
        "communicate": (1, 1),
    }
    assert approved["reviewed"] == 1
    sev2 = next(s for s in approved["severities"] if s["severity"] == "SEV2")
    assert sev2["acknowledge"]["count"] == 1 and sev2["incidents"] == 1
    assert sev2["detect"]["median"] == "PT15M"
    assert sev2["acknowledge"]["median"] == "PT3M"
    assert sev2["communicate"]["median"] == "PT30M"
    refused = expect(await api.get("/api/reliability", "dan", params={"period": "2026Q9"}), 422)
    assert refused["detail"][0]["loc"] == ["query", "period"]
    quarter = expect(await api.get("/api/reliability", "dan", params={"period": "2026Q4"}), 200)
    assert quarter["period_start"].startswith("2026-10-01")
