"""Deploys arrive signed, from the generic deploy webhook, GitHub's deployment_status and Argo CD's
notifications; a redelivery is stored once, a later status updates the deploy, a late earlier
status never un-finishes it; forged or bad input is refused naming the problem, storing nothing.
Signatures and tokens are made here with the standard library, as each sender makes them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.timeline import TimelineActivities
from followthrough.domain.changes import ChangePolicy, Deploy
from followthrough.domain.draft import Draft
from followthrough.domain.incident import Incident
from followthrough.domain.policy import load_policy
from followthrough.domain.timeline import (
    EventKind,
    TimelineRequest,
    cause_in_words,
    proposed_entry,
)
from followthrough.integrations.timeline.deploys import DeploysCollector
from followthrough.notices.delivery import Mailer
from followthrough.reporting.document import postmortem_document, render_html, render_markdown
from followthrough.reporting.report import quarterly_report
from followthrough.storage import Store
from tests.api_support import Api, api_for, api_settings, loopback_policy
from tests.conftest import eventually, running_worker
from tests.factories import draft_data
from tests.lifecycle import start
from tests.test_api import open_postmortem, stored_postmortem
from tests.test_dashboard import browser, text_of

DEPLOY_SECRET = "deploy-secret-for-tests"
GITHUB_SECRET = "github-secret-for-tests"
ARGO_SECRET = "argocd-token-for-tests"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def deploy_api(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> AsyncIterator[Api]:
    settings = api_settings(
        tmp_path,
        "deploys-tests",
        webhook_secret_deploy=DEPLOY_SECRET,
        webhook_secret_argocd=ARGO_SECRET,
        github_webhook_secret=GITHUB_SECRET,
    )
    async with api_for(time_skipping.client, sqlite_store, settings) as api:
        yield api


def generic_signed(
    body: bytes, secret: str = DEPLOY_SECRET, at: int | None = None
) -> dict[str, str]:
    timestamp = str(int(time.time()) if at is None else at)
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Followthrough-Timestamp": timestamp,
        "X-Followthrough-Signature": f"v1={digest.hexdigest()}",
    }


def generic_deploy(**changes: Any) -> bytes:
    payload: dict[str, Any] = {
        "id": "checkout-1842",
        "service": "checkout",
        "version": "v2.14.0",
        "environment": "production",
        "status": "in_progress",
        "started_at": (NOW - timedelta(minutes=30)).isoformat(),
        "by": "alice",
        "link": "https://ci.example.com/runs/1842",
    }
    payload.update(changes)
    return json.dumps({k: v for k, v in payload.items() if v is not None}).encode()


def github_delivery(state: str, *, secret: str = GITHUB_SECRET) -> tuple[bytes, dict[str, str]]:
    """GitHub's deployment_status event as documented (octokit/webhooks' payload example),
    trimmed to what matters and with our own values."""
    created = (NOW - timedelta(minutes=20)).isoformat().replace("+00:00", "Z")
    payload = {
        "action": "created",
        "deployment_status": {
            "url": "https://api.github.com/repos/acme/billing/deployments/145988746/statuses/7",
            "id": 209916254,
            "state": state,
            "creator": {"login": "octo-deployer", "id": 1, "type": "Bot"},
            "description": "",
            "environment": "production",
            "target_url": "https://ci.example.com/billing/77",
            "log_url": "https://github.com/acme/billing/actions/runs/77",
            "created_at": (NOW - timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
            "updated_at": (NOW - timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
            "deployment_url": "https://api.github.com/repos/acme/billing/deployments/145988746",
        },
        "deployment": {
            "url": "https://api.github.com/repos/acme/billing/deployments/145988746",
            "id": 145988746,
            "node_id": "MDEwOkRlcGxveW1lbnQxNDU5ODg3NDY=",
            "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
            "ref": "main",
            "task": "deploy",
            "payload": {"rollback_of": "0a1b2c3d"},
            "original_environment": "production",
            "environment": "production",
            "description": None,
            "creator": {"login": "bob", "id": 2, "type": "User"},
            "created_at": created,
            "updated_at": created,
        },
        "repository": {"id": 186853002, "name": "billing", "full_name": "acme/billing"},
        "sender": {"login": "bob", "id": 2, "type": "User"},
    }
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/json",
        "X-GitHub-Event": "deployment_status",
        "X-GitHub-Delivery": f"guid-{state}",
        "X-Hub-Signature-256": f"sha256={signature}",
    }


def argo_body(phase: str, *, finished: str = "<no value>", by: str = "<no value>") -> bytes:
    """What the README's Argo CD template renders (a field the Application lacks prints as
    "<no value>" in Go's templates)."""
    started = (NOW - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "app": "api-gateway",
            "service": "api-gateway",
            "environment": "production",
            "revision": "9f8e7d6c5b4a",
            "phase": phase,
            "started_at": started,
            "finished_at": finished,
            "by": by,
            "rollback_of": "<no value>",
            "link": "https://argocd.example.com/applications/api-gateway",
        }
    ).encode()


def stored(api: Api, source: str, deploy_id: str) -> Deploy | None:
    return api.services.store.deploys.get(source, deploy_id)


async def test_generic_deploys_are_stored_once_and_updated_by_a_later_status(
    deploy_api: Api,
) -> None:
    post = deploy_api.http.post
    body = generic_deploy()
    first = await post("/webhooks/deploy", content=body, headers=generic_signed(body))
    assert (first.status_code, first.json()["status"]) == (202, "recorded")
    again = await post("/webhooks/deploy", content=body, headers=generic_signed(body))
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")

    done = generic_deploy(status="succeeded", finished_at=NOW.isoformat())
    updated = await post("/webhooks/deploy", content=done, headers=generic_signed(done))
    assert updated.json() == {"status": "updated", "deploy_id": "checkout-1842", "reason": None}
    deploy = stored(deploy_api, "generic", "checkout-1842")
    assert deploy is not None
    assert (deploy.status, deploy.finished_at, deploy.by) == ("succeeded", NOW, "alice")

    # The in-progress status redelivered late does not un-finish it.
    late = await post("/webhooks/deploy", content=body, headers=generic_signed(body))
    assert late.json()["status"] == "duplicate"
    assert (d := stored(deploy_api, "generic", "checkout-1842")) and d.status == "succeeded"


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"X-Followthrough-Timestamp": "1"}, "missing X-Followthrough-Signature"),
        ("wrong secret", "does not match the body"),
        ("old", "minutes old"),
    ],
)
async def test_generic_deploys_unsigned_forged_or_stale_are_refused(
    deploy_api: Api, headers: dict[str, str] | str, fragment: str
) -> None:
    body = generic_deploy(id="forged")
    if headers == "wrong secret":
        sent = generic_signed(body, secret="another")
    elif headers == "old":
        sent = generic_signed(body, at=int(time.time()) - 3600)
    else:
        assert isinstance(headers, dict)
        sent = headers
    answer = await deploy_api.http.post("/webhooks/deploy", content=body, headers=sent)
    assert answer.status_code == 401 and fragment in answer.json()["detail"]
    assert stored(deploy_api, "generic", "forged") is None


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"service": None}, "service: missing"),
        ({"status": "done"}, "status: 'done' is not one of pending, in_progress"),
        ({"started_at": "yesterday"}, "started_at: 'yesterday' is not an ISO 8601 time"),
        ({"started_at": "2026-03-01T10:00:00"}, "has no time zone"),
        ({"version": "v" * 129}, "version: at most 128 characters"),
        ({"by": "eve\r\nBcc: x"}, "by: contains a line break"),
        ({"link": "javascript:alert(1)"}, "link: must be an http(s) URL"),
        ({"started_at": "2099-01-01T00:00:00Z"}, "started_at: 2099-01-01T00:00:00+00:00 is in"),
        ({"id": 7}, "id: must be a string"),
    ],
)
async def test_generic_deploys_bad_fields_are_refused_by_name(
    deploy_api: Api, changes: dict[str, Any], problem: str
) -> None:
    body = generic_deploy(id="bad", **changes) if "id" not in changes else generic_deploy(**changes)
    answer = await deploy_api.http.post(
        "/webhooks/deploy", content=body, headers=generic_signed(body)
    )
    assert answer.status_code == 422, answer.text
    assert problem in answer.json()["detail"]
    assert stored(deploy_api, "generic", "bad") is None


async def test_github_deployment_status_records_the_deployment_and_its_later_state(
    deploy_api: Api,
) -> None:
    post = deploy_api.http.post
    body, headers = github_delivery("in_progress")
    forged = {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
    assert (await post("/webhooks/github", content=body, headers=forged)).status_code == 401
    assert stored(deploy_api, "github", "145988746") is None

    first = await post("/webhooks/github", content=body, headers=headers)
    assert (first.status_code, first.json()["status"]) == (202, "recorded")
    body, headers = github_delivery("success")
    assert (await post("/webhooks/github", content=body, headers=headers)).json()[
        "status"
    ] == "updated"
    assert (await post("/webhooks/github", content=body, headers=headers)).json()[
        "status"
    ] == "duplicate"
    deploy = stored(deploy_api, "github", "145988746")
    assert deploy is not None
    assert (deploy.service, deploy.version, deploy.environment, deploy.status) == (
        "billing",
        "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
        "production",
        "succeeded",
    )
    assert (deploy.rollback_of, deploy.by) == ("0a1b2c3d", "bob")
    assert deploy.link == "https://github.com/acme/billing/actions/runs/77"
    assert deploy.finished_at == NOW - timedelta(minutes=5)

    inactive_body, inactive = github_delivery("inactive")
    answer = await post("/webhooks/github", content=inactive_body, headers=inactive)
    assert (answer.status_code, answer.json()["status"]) == (200, "ignored")
    assert (d := stored(deploy_api, "github", "145988746")) and d.status == "succeeded"


async def test_argocd_notifications_authenticate_with_a_bearer_token_or_basic_auth(
    deploy_api: Api,
) -> None:
    post = deploy_api.http.post
    running = argo_body("Running")
    bearer = {"Content-Type": "application/json", "Authorization": f"Bearer {ARGO_SECRET}"}
    wrong = {**bearer, "Authorization": "Bearer nope"}
    refused = await post("/webhooks/argocd", content=running, headers=wrong)
    assert refused.status_code == 401 and "do not match" in refused.json()["detail"]
    assert (await post("/webhooks/argocd", content=running, headers={})).status_code == 401

    first = await post("/webhooks/argocd", content=running, headers=bearer)
    assert (first.status_code, first.json()["status"]) == (202, "recorded")
    deploy_id = first.json()["deploy_id"]
    assert deploy_id.startswith("api-gateway@")

    finished = NOW.isoformat().replace("+00:00", "Z")
    done = argo_body("Succeeded", finished=finished, by="carol")
    basic = base64.b64encode(f"argocd:{ARGO_SECRET}".encode()).decode()
    answer = await post(
        "/webhooks/argocd",
        content=done,
        headers={"Content-Type": "application/json", "Authorization": f"Basic {basic}"},
    )
    assert answer.json()["status"] == "updated"
    deploy = stored(deploy_api, "argocd", deploy_id)
    assert deploy is not None
    assert (deploy.status, deploy.finished_at, deploy.by, deploy.rollback_of) == (
        "succeeded",
        NOW,
        "carol",
        None,
    )

    bad = await post("/webhooks/argocd", content=argo_body("Synced"), headers=bearer)
    assert bad.status_code == 422 and "phase: 'Synced' is not one of" in bad.json()["detail"]


def test_the_store_keeps_one_row_per_deploy_and_reads_a_services_window(store: Store) -> None:
    def make(id: str, service: str, minutes_ago: int, status: str = "succeeded") -> Deploy:
        return Deploy.model_validate(
            {
                "source": "generic",
                "id": id,
                "service": service,
                "version": id,
                "environment": "production",
                "status": status,
                "finished_at": NOW - timedelta(minutes=minutes_ago),
            }
        )

    assert store.deploys.record(make("a", "checkout", 300), NOW) == "recorded"
    assert store.deploys.record(make("a", "checkout", 300), NOW) == "duplicate"
    assert store.deploys.record(make("a", "checkout", 300, "in_progress"), NOW) == "duplicate"
    assert store.deploys.record(make("a", "checkout", 290, "failed"), NOW) == "updated"
    store.deploys.record(make("b", "checkout", 30), NOW)
    store.deploys.record(make("c", "billing", 30), NOW)
    store.deploys.record(make("d", "checkout", 600), NOW)
    found = store.deploys.of_services(["checkout"], NOW - timedelta(hours=6), NOW)
    assert [(d.id, d.status) for d in found] == [("a", "failed"), ("b", "succeeded")]
    assert [d.id for d in store.deploys.between(NOW - timedelta(hours=11), NOW)] == [
        "d",
        "a",
        "b",
        "c",
    ]


async def test_the_incidents_timeline_shows_its_services_deploys_the_latest_a_suspect(
    sqlite_store: Store,
) -> None:
    store = sqlite_store
    started = NOW - timedelta(hours=1)

    def make(id: str, service: str, hours_before: float, **more: Any) -> Deploy:
        fields = {
            "source": "github",
            "id": id,
            "service": service,
            "version": f"v-{id}",
            "environment": "production",
            "status": "succeeded",
            "finished_at": started - timedelta(hours=hours_before),
            "by": "bob",
        }
        return Deploy.model_validate(fields | more)

    incident = Incident.model_validate(
        {
            "source": "generic",
            "id": "P77",
            "title": "checkout 5xx",
            "severity": "SEV2",
            "services": ["checkout"],
            "started_at": started,
            "resolved_at": NOW,
        }
    )
    request = TimelineRequest(postmortem_id="postmortem-generic-P77", incident=incident)
    activities = TimelineActivities(store, [DeploysCollector(store, ChangePolicy())])
    assert await activities.collect_timeline(request) == []  # no deploys: the source says nothing

    for deploy in (
        make("1", "checkout", 7),  # outside the six hours
        make("2", "checkout", 5),
        make("3", "checkout", 2, rollback_of="v-2"),
        make("4", "checkout", 1.5, status="failed"),  # changed nothing
        make("5", "billing", 1),  # another service
        make("6", "checkout", -0.5),  # after the start
    ):
        store.deploys.record(deploy, NOW)
    reports = await activities.collect_timeline(request)
    assert [(r.source, r.status, r.events) for r in reports] == [("deploys", "collected", 2)]
    events = store.timeline.events(request.postmortem_id)
    assert [(e.source_id, e.kind, e.author) for e in events] == [
        ("2", EventKind.DEPLOY, "bob"),
        ("3", EventKind.DEPLOY, "bob"),
    ]
    assert events[0].text == "checkout v-2 deployed to production"
    assert events[1].text == (
        "Suspect (the last change before the incident started): "
        "checkout v-3 deployed to production, rolling back v-2"
    )
    assert proposed_entry(events[1]).kind == "deploy"


async def test_the_draft_names_the_change_that_caused_it_checked_against_the_stored_deploys(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id = await open_postmortem(api, time_skipping, services=["checkout"])
    now = await time_skipping.get_current_time()
    store, draft = api.services.store, f"/api/postmortems/{pm_id}/draft"
    ours = Deploy.model_validate(
        {
            "source": "github",
            "id": "145988746",
            "service": "checkout",
            "version": "v2.14.0",
            "environment": "production",
            "status": "succeeded",
            "finished_at": now - timedelta(hours=5),  # an hour before the incident started
        }
    )
    store.deploys.record(ours, now)
    store.deploys.record(ours.model_copy(update={"id": "other", "service": "billing"}), now)

    for wrong in ("999", "other"):  # unknown; a deploy of another service
        refused = await api.post(draft, "alice", draft_data(now, caused_by_change=wrong))
        assert refused.status_code == 422, refused.text
        assert (
            f"caused_by_change: '{wrong}' is not a deploy of the incident's services"
            in (refused.json()["detail"])
        )
    too_long = await api.post(draft, "alice", draft_data(now, caused_by_change="x" * 201))
    assert too_long.status_code == 422 and "caused_by_change: at most 200" in too_long.text
    assert stored_postmortem(api, pm_id).state.value == "drafting"

    entry = {
        "at": (now - timedelta(hours=5)).isoformat(),
        "kind": "deploy",
        "description": "Suspect (the last change before the incident started): "
        "checkout v2.14.0 deployed to production",
        "source": "deploys",
        "source_id": "145988746",
    }
    data = draft_data(now, caused_by_change="145988746")
    data["timeline"] = [entry, *data["timeline"]]
    accepted = await api.post(draft, "alice", data)
    assert accepted.status_code == 200, accepted.text
    pm = stored_postmortem(api, pm_id)
    assert pm.draft is not None and pm.draft.caused_by_change == "145988746"
    words = "Deploy 145988746: checkout v2.14.0 deployed to production"
    document = postmortem_document(pm, [], api.services.policy, now)
    assert document.caused_by == words
    assert f"## The change that caused it\n\n{words}" in render_markdown(document)
    assert f"<p>{words}</p>" in render_html(document)


def test_a_draft_may_say_no_change_caused_it() -> None:
    draft = Draft(caused_by_change="none")
    assert cause_in_words(draft) == "No change caused it."
    assert cause_in_words(Draft()) is None
    assert cause_in_words(Draft(caused_by_change="42")) == "Deploy 42"


async def test_the_reliability_page_and_api_show_the_change_figures_with_their_counts(
    api: Api, time_skipping: WorkflowEnvironment
) -> None:
    pm_id = await open_postmortem(api, time_skipping, services=["checkout"])  # started 4 h ago
    now = await time_skipping.get_current_time()
    pm = stored_postmortem(api, pm_id)
    assert pm.incident.started_at is not None
    started = pm.incident.started_at
    store = api.services.store

    def make(id: str, before_start: timedelta, **more: Any) -> Deploy:
        fields = {
            "source": "generic",
            "id": id,
            "service": "checkout",
            "version": id,
            "environment": "production",
            "status": "succeeded",
            "finished_at": started - before_start,
        }
        return Deploy.model_validate(fields | more)

    store.deploys.record(make("v2", timedelta(hours=1)), now)  # the suspect: led to it
    store.deploys.record(make("v1", -timedelta(hours=1), rollback_of="v2"), now)  # rolls v2 back
    store.deploys.record(make("s1", timedelta(hours=1), environment="staging"), now)  # not counted
    month = started.astimezone(ZoneInfo(api.services.policy.calendar.timezone)).strftime("%Y-%m")

    answer = await api.get("/api/reliability", "alice")
    assert answer.status_code == 200, answer.text
    changes = answer.json()["changes"]
    [team] = [f for f in changes["by_team"] if f["month"] == month]
    [service] = [f for f in changes["by_service"] if f["month"] == month]
    expected = {
        "deploys": 2,
        "led_to_incident": 1,
        "rolled_back": 1,
        "failed_changes": 1,  # v2, once though it did both
        "rollbacks": 1,
        "change_failure_rate": 0.5,
        "rollback_rate": 0.5,
        "incidents": 1,
        "time_to_restore": "PT3H",  # started 4 h ago, resolved 1 h ago
    }
    assert {k: team[k] for k in expected} == expected and team["team"] == "payments"
    assert {k: service[k] for k in expected} == expected and service["service"] == "checkout"

    async with browser(api, "alice") as alice:
        page = text_of(await alice.get("/reliability"))
        assert f"{month} payments 2 50% (1 of 2: 1 led to an incident, 1 rolled back) 1 (50%)" in (
            page
        )
        assert f"{month} checkout 2 50%" in page
        # A deploy is on the page at once: the kept figures know the deploys changed.
        store.deploys.record(make("v3", -timedelta(hours=2)), now)
        page = text_of(await alice.get("/reliability"))
        assert f"{month} payments 3 33% (1 of 3" in page


def test_the_quarterly_report_shows_each_teams_changes(store: Store) -> None:
    policy = load_policy(None)
    started = datetime(2026, 8, 12, 10, 0, tzinfo=UTC)
    for id, hours, more in (
        ("a", 30, {}),
        ("b", 20, {}),
        ("c", 10, {"rollback_of": "a"}),
        ("d", 2, {"service": "api-gateway"}),
    ):
        fields = {
            "source": "generic",
            "id": id,
            "service": "checkout",
            "version": id,
            "environment": "production",
            "status": "succeeded",
            "finished_at": started - timedelta(hours=hours),
        }
        store.deploys.record(Deploy.model_validate(fields | more), started)
    report = quarterly_report(store, policy, "2026Q3", datetime(2026, 10, 5, tzinfo=UTC))
    # payments: a (rolled back), b, c: 1 of 3; platform: d, no incident, 0 of 1
    assert "| 2026-08 | payments | 3 | 33% (1 of 3) | 1 (33%) | — (0 incidents) |" in (
        report.markdown
    )
    assert "| 2026-08 | platform | 1 | 0% (0 of 1) | 0 (0%) | — (0 incidents) |" in report.markdown
    assert '<td>2026-08</td><td>payments</td><td class="num">3</td>' in report.html
    empty = quarterly_report(store, policy, "2026Q1", datetime(2026, 10, 5, tzinfo=UTC))
    assert "No deploys were received for this quarter." in empty.markdown


async def test_the_readmes_deploy_example_is_answered_as_it_shows(deploy_api: Api) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("**The generic deploy**") :]
    body = re.search(r"^body='(.*)'$", section, re.MULTILINE)
    shown = re.search(r"^(\{\"status\":\"recorded\".*\})$", section, re.MULTILINE)
    assert body is not None and shown is not None
    sent = body.group(1).encode()
    answer = await deploy_api.http.post(
        "/webhooks/deploy", content=sent, headers=generic_signed(sent)
    )
    assert answer.status_code == 202
    assert answer.json() == json.loads(shown.group(1))


async def test_the_worker_collects_the_deploys_onto_a_new_postmortems_timeline(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, mailer: Mailer
) -> None:
    client, policy = time_skipping.client, loopback_policy()
    now = await time_skipping.get_current_time()
    suspect = Deploy.model_validate(
        {
            "source": "argocd",
            "id": "checkout@2026-11-20T09:00:00Z",
            "service": "checkout",
            "version": "9f8e7d6",
            "environment": "production",
            "status": "succeeded",
            "finished_at": now - timedelta(hours=5),  # the factories' incident started 4 h ago
        }
    )
    sqlite_store.deploys.record(suspect, now)
    async with running_worker(client, sqlite_store, mailer) as queue:
        pm_id = await start(client, policy, queue, now, services=["checkout"])
        events = await eventually(lambda: sqlite_store.timeline.events(pm_id))
    assert [(e.source, e.source_id, e.kind) for e in events] == [
        ("deploys", suspect.id, EventKind.DEPLOY)
    ]
    assert events[0].text.startswith("Suspect (the last change before the incident started)")
