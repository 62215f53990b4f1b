"""Every action item is a Jira ticket, kept in sync both ways, end to end.

The real worker (time-skipping Temporal server, SQLite) talks to the Jira-compatible server in
tests/servers/jira_server.py through the real `jira` library; people act through the real API. An
incident's postmortem is approved, each item gets its ticket with the right fields, a ticket
moved to Done through a signed webhook (or found by the reconciliation) claims its item done,
which is verified, and the postmortem closes. Faults: a lost reply to a create, a 429 storm,
bad credentials, and Jira down for a while.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from followthrough.checks import CheckConfig
from followthrough.domain.tickets import item_label
from followthrough.integrations.jira import JiraConfig
from followthrough.storage import Store
from tests.api_support import Api, api_for, api_settings, link_mailer
from tests.conftest import eventually, running_worker, skip
from tests.servers.jira_server import JiraServer
from tests.test_api import expect, stored_item, stored_postmortem, tracked_postmortem
from tests.test_jira import DONE_STARTS_THE_CHECK
from tests.test_verification import approved_with
from workflows.ticket_reconciliation import TicketReconciliationWorkflow

JIRA_SECRET = "jira-webhook-secret-for-tests"
PEOPLE = ("alice", "bob", "carol")


@pytest.fixture
def jira() -> Iterator[JiraServer]:
    people = {p: {"displayName": p.title(), "emailAddress": f"{p}@example.com"} for p in PEOPLE}
    with JiraServer(
        users={"followthrough-bot": "api-token"}, people=people, projects={"PAY": "Payments"}
    ) as server:
        yield server


@pytest.fixture
async def time_skipping(own_time_skipping: WorkflowEnvironment) -> WorkflowEnvironment:
    """A server of each test's own: these tests skip days and hours of Jira retries, and the
    test server cannot skip time while another test's leftovers have tasks outstanding."""
    return own_time_skipping


@pytest.fixture
async def synced(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path, jira: JiraServer
) -> AsyncIterator[Api]:
    config = JiraConfig(
        url=jira.url,
        user="followthrough-bot",
        token="api-token",
        project="PAY",
        deployment="server",
    )
    client = time_skipping.client
    settings = api_settings(tmp_path, "unused", webhook_secret_jira=JIRA_SECRET)
    async with running_worker(
        client,
        sqlite_store,
        link_mailer(tmp_path / "outbox"),
        jira=config,
        checks=CheckConfig(
            jira_url=jira.url, jira_user="followthrough-bot", jira_token="api-token"
        ),
        public_url="http://followthrough.test",
    ) as queue:
        settings = api_settings(
            tmp_path,
            queue,
            webhook_secret_jira=JIRA_SECRET,
            jira_url=jira.url,  # the API refuses ticket_resolved criteria when no Jira is set
            jira_user="followthrough-bot",
            jira_token="api-token",
        )
        async with api_for(client, sqlite_store, settings) as api:
            yield api


def tickets_of(api: Api, *item_ids: str) -> list[str] | None:
    items = [stored_item(api, i) for i in item_ids]
    if any(item.ticket is None for item in items):
        return None
    return [item.ticket.key for item in items if item.ticket]


def webhook(
    jira: JiraServer, key: str, delivery: str, secret: str = JIRA_SECRET
) -> tuple[bytes, dict[str, str]]:
    """What Jira's admin webhook sends when an issue moves to Done: the issue as it is now."""
    issue = jira.issue(key)
    payload: dict[str, Any] = {
        "timestamp": int(datetime.now(UTC).timestamp() * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"name": "bob", "displayName": "Bob"},
        "issue": {"id": issue.get("id", "1"), "key": key, "fields": issue["fields"]},
        "changelog": {
            "id": "10042",
            "items": [
                {
                    "field": "status",
                    "fieldtype": "jira",
                    "fieldId": "status",
                    "from": "1",
                    "fromString": "To Do",
                    "to": "3",
                    "toString": "Done",
                }
            ],
        },
    }
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature": f"sha256={signature}",
        "X-Atlassian-Webhook-Identifier": delivery,
    }
    return body, headers


async def test_approved_items_become_tickets_and_a_done_ticket_starts_verification(
    synced: Api, time_skipping: WorkflowEnvironment, jira: JiraServer
) -> None:
    api = synced
    pm_id, bob_item, carol_item = await tracked_postmortem(api, time_skipping)
    keys = await eventually(lambda: tickets_of(api, bob_item, carol_item), seconds=30)
    bob_key, carol_key = keys
    fields = jira.issue(bob_key)["fields"]
    bob = stored_item(api, bob_item)
    assert fields["summary"] == bob.spec.title
    assert {"postmortem", "reliability", item_label(bob_item)} <= set(fields["labels"])
    # The ticket's priority follows the item's impact score (a SEV2 with nothing else known:
    # 17.5 of 100, P3); the author's P1 stays on the item, and the ticket says why they differ.
    assert bob.spec.priority.value == "P1"
    assert fields["priority"]["name"] == "Low"  # P3
    assert (
        "Priority P3, not the postmortem's P1: it follows the item's impact score, 17.5 of 100.\n"
        "* Severity: SEV2 (the policy counts SEV2 at 70 %), 17.5 points"
    ) in fields["description"]
    assert fields["duedate"] == bob.due.isoformat()
    assert fields["assignee"]["name"] == "bob"
    assert bob.spec.acceptance_criterion.summary() in fields["description"]
    assert pm_id in fields["description"]
    assert fields["description"].count(DONE_STARTS_THE_CHECK) == 1  # one text: the tracker's
    issue_id = jira.issue(bob_key)["id"]
    links = [link["object"]["url"] for link in jira.remote_links.get(issue_id, [])]
    assert links == [f"http://followthrough.test/api/postmortems/{pm_id}"]
    assert jira.count("create_issue") == 2

    # Moved to Done in Jira: the signed webhook claims the item done; verification follows.
    body, headers = webhook(jira, bob_key, "delivery-1")
    forged = await api.http.post(
        "/webhooks/jira", content=body, headers={**headers, "X-Hub-Signature": "sha256=00"}
    )
    assert forged.status_code == 401
    jira.set_status(bob_key, "Done", resolution="Done")
    body, headers = webhook(jira, bob_key, "delivery-1")
    claimed = await api.http.post("/webhooks/jira", content=body, headers=headers)
    assert (claimed.status_code, claimed.json()["status"]) == (202, "claimed done")
    again = await api.http.post("/webhooks/jira", content=body, headers=headers)
    assert again.json()["status"] == "duplicate"
    item = await eventually(
        lambda: (i := stored_item(api, bob_item)).state.value == "done_claimed" and i
    )
    assert item.claims[-1].by == "jira" and bob_key in item.claims[-1].evidence
    expect(await api.post(f"/api/action-items/{bob_item}/verify", "erin", {}), 200)

    # Carol's webhook was missed; the reconciliation finds her ticket done.
    jira.set_status(carol_key, "Done", resolution="Fixed")
    reconciled = await api.services.client.execute_workflow(
        TicketReconciliationWorkflow.run,
        "-1d",
        id=f"reconcile-{pm_id}",
        task_queue=api.services.task_queue,
    )
    assert reconciled == [carol_item]
    await eventually(lambda: stored_item(api, carol_item).state.value == "done_claimed")
    expect(await api.post(f"/api/action-items/{carol_item}/verify", "pat", {}), 200)
    await eventually(lambda: stored_postmortem(api, pm_id).state.value == "closed")


async def test_a_ticket_resolved_criterion_checks_the_items_own_ticket(
    synced: Api, time_skipping: WorkflowEnvironment, jira: JiraServer
) -> None:
    api = synced
    item_id = await approved_with(api, time_skipping, {"kind": "ticket_resolved"})
    (key,) = await eventually(lambda: tickets_of(api, item_id), seconds=30)
    jira.set_status(key, "Done", resolution="Fixed")
    body, headers = webhook(jira, key, "delivery-own-ticket")
    assert (await api.http.post("/webhooks/jira", content=body, headers=headers)).status_code == 202
    item = await eventually(
        lambda: (i := stored_item(api, item_id)).state.value == "verified" and i, seconds=30
    )
    (check,) = item.checks
    assert check.result.passed and key in check.result.asked
    await eventually(lambda: stored_postmortem(api, item.postmortem_id).state.value == "closed")


async def test_escalations_comment_and_extensions_move_the_due_date(
    synced: Api, time_skipping: WorkflowEnvironment, jira: JiraServer
) -> None:
    api = synced
    _, bob_item, carol_item = await tracked_postmortem(api, time_skipping)
    bob_key, _ = await eventually(lambda: tickets_of(api, bob_item, carol_item), seconds=30)
    due = stored_item(api, bob_item).due
    later = (due + timedelta(days=14)).isoformat()
    ask = {"until": later, "reason": "waiting on the vendor"}
    expect(await api.post(f"/api/action-items/{bob_item}/extension", "bob", ask), 200)
    expect(
        await api.post(
            f"/api/action-items/{bob_item}/extension/decision", "maria", {"approve": True}
        ),
        200,
    )
    await eventually(lambda: jira.issue(bob_key)["fields"]["duedate"] == later)

    await skip(time_skipping, timedelta(days=27))  # past the new due date's reminder
    comments = await eventually(
        lambda: [
            c
            for c in jira.issue(bob_key)["fields"]["comment"]["comments"]
            if "reminder" in c["body"]
        ],
        seconds=30,
    )
    assert len(comments) == 1 and "Followthrough" in comments[0]["body"]
    assert comments[0]["body"].startswith(
        f"Followthrough: reminder (due {later}); bob told by email."
    )


async def test_an_extension_granted_before_the_ticket_exists_moves_its_due_date(
    synced: Api, time_skipping: WorkflowEnvironment, jira: JiraServer
) -> None:
    api = synced
    jira.down()  # the tickets cannot be opened yet
    _, bob_item, carol_item = await tracked_postmortem(api, time_skipping)
    later = (stored_item(api, bob_item).due + timedelta(days=14)).isoformat()
    ask = {"until": later, "reason": "waiting on the vendor"}
    expect(await api.post(f"/api/action-items/{bob_item}/extension", "bob", ask), 200)
    decision = {"approve": True}
    expect(
        await api.post(f"/api/action-items/{bob_item}/extension/decision", "maria", decision), 200
    )
    assert tickets_of(api, bob_item, carol_item) is None
    jira.up()
    await skip(time_skipping, timedelta(minutes=6))  # the retries back off to 5 minutes apart
    bob_key, _ = await eventually(lambda: tickets_of(api, bob_item, carol_item), seconds=60)
    await eventually(lambda: jira.issue(bob_key)["fields"]["duedate"] == later, seconds=30)


async def test_a_lost_reply_and_a_429_storm_make_exactly_one_ticket_each(
    synced: Api, time_skipping: WorkflowEnvironment, jira: JiraServer
) -> None:
    api = synced
    # The first create succeeds in Jira but its reply is lost (503); then Jira rate-limits.
    jira.faults.fail_next(
        1, status=503, method="POST", path=r"/rest/api/2/issue", after_serving=True
    )
    jira.faults.fail_next(4, status=429, retry_after=1, method="POST", path=r"/rest/api/2/issue")
    _, bob_item, carol_item = await tracked_postmortem(api, time_skipping)
    keys = await eventually(lambda: tickets_of(api, bob_item, carol_item), seconds=60)
    assert len(set(keys)) == 2
    for item_id, key in zip((bob_item, carol_item), keys, strict=True):
        label = item_label(item_id)
        mine = [k for k, issue in jira.issues.items() if label in issue["fields"]["labels"]]
        assert mine == [key], (item_id, mine)


async def test_bad_credentials_are_surfaced_on_the_item_and_not_retried(
    synced: Api, time_skipping: WorkflowEnvironment, jira: JiraServer
) -> None:
    api = synced
    jira.faults.bad_credentials()
    _, bob_item, _ = await tracked_postmortem(api, time_skipping)
    item = await eventually(lambda: (i := stored_item(api, bob_item)).ticket_problem and i)
    assert "401" in item.ticket_problem or "credentials" in item.ticket_problem.lower()
    trail = api.services.store.records.audit_trail(item.postmortem_id)
    assert any(e.action == "item.ticket_refused" and e.workflow_id == bob_item for e in trail)
    creates_then = jira.count("create_issue")
    expect(await api.post(f"/api/action-items/{bob_item}/acknowledge", "bob"), 200)  # still works
    assert jira.count("create_issue") == creates_then


async def test_jira_down_for_a_while_delays_tickets_and_loses_none(
    synced: Api, time_skipping: WorkflowEnvironment, jira: JiraServer
) -> None:
    api = synced
    jira.down()
    _, bob_item, carol_item = await tracked_postmortem(api, time_skipping)
    await skip(time_skipping, timedelta(hours=1))  # an hour of retries against a dead Jira
    assert tickets_of(api, bob_item, carol_item) is None
    jira.up()
    await skip(time_skipping, timedelta(minutes=6))  # the retries back off to 5 minutes apart
    keys = await eventually(lambda: tickets_of(api, bob_item, carol_item), seconds=60)
    assert len(set(keys)) == 2 and jira.count("create_issue") == 2
