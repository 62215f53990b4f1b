"""GitHub Issues as a second tracker: items routed there become issues, kept in sync both ways.

The tracker talks to the GitHub-REST-compatible server in tests/servers/github_server.py through
`githubkit`, as production talks to api.github.com: created once with labels, assignee and
milestone, found again on a retry, one issue kept when two attempts raced, comments once,
refusals permanent and rate limits transient with GitHub's delay. End to end (the time-skipping
Temporal server, a real worker and the API): a signed `issues.closed` webhook claims the item
done, forged or unsigned deliveries change nothing, and the reconciliation finds a closed issue
whose webhook was missed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.tickets import TicketActivities
from followthrough.domain.tickets import (
    TicketComment,
    TicketDue,
    TicketRequest,
    TicketRoute,
)
from followthrough.integrations.github import (
    GitHubConfig,
    GitHubRefused,
    GitHubTracker,
    GitHubUnavailable,
    github_label,
)
from followthrough.integrations.trackers import Trackers, kind_of_key
from followthrough.settings import Settings
from followthrough.storage import Store
from followthrough.webhooks import Malformed, Unauthorized
from followthrough.webhooks.base import Ignored
from followthrough.webhooks.github import read_github_event
from tests.api_support import Api, api_for, api_settings, link_mailer
from tests.conftest import eventually, running_worker
from tests.servers.github_server import GitHubServer
from tests.test_api import stored_item, tracked_postmortem
from workflows.ticket_reconciliation import TicketReconciliationWorkflow

TOKEN = "ghp_followthroughTestToken0123456789"
REPO = "Acme/Payments"  # as GitHub spells it; settings may write it in any case
SECRET = "github-webhook-secret-for-tests"
ITEM = "postmortem-generic-INC-7-item-1"


@pytest.fixture
def github() -> Iterator[GitHubServer]:
    with GitHubServer(tokens={TOKEN}, users={"bob", "carol"}, repos={REPO}) as server:
        yield server


def _config(github: GitHubServer, **changes: Any) -> GitHubConfig:
    values: dict[str, Any] = {
        "token": TOKEN,
        "url": github.url,
        "repository": "acme/payments",
        "logins": {"bob": "bob", "carol": "carol"},
        "timeout": 5,
        **changes,
    }
    return GitHubConfig(**values)


def _request(item: str = ITEM, owner: str = "bob", **route: Any) -> TicketRequest:
    return TicketRequest(
        action_item_id=item,
        postmortem_id="postmortem-generic-INC-7",
        postmortem_title="Checkout returned 500s",
        summary="Add a canary stage to checkout deploys",
        details="Deploys go to every pod at once.",
        accepted_when="a canary stage exists",
        priority="P1",
        due=date(2026, 12, 18),
        owner=owner,
        owner_email=f"{owner}@example.com",
        postmortem_url="http://followthrough.test/api/postmortems/postmortem-generic-INC-7",
        route=TicketRoute(tracker="github", project="acme/payments", **route) if route else None,
    )


def _names(issue: dict[str, Any]) -> list[str]:
    return [label["name"] for label in issue["labels"]]


# -- the tracker, through githubkit -------------------------------------------------------------


def test_an_item_becomes_one_issue_with_labels_assignee_and_milestone(
    github: GitHubServer,
) -> None:
    tracker = GitHubTracker(_config(github))
    request = _request(labels=["team-payments"], epic="Reliability Q4")
    ref = tracker.ensure_ticket(request)
    assert (ref.key, ref.url) == (f"{REPO}#1", f"https://github.com/{REPO}/issues/1")
    assert kind_of_key(ref.key) == "github" and kind_of_key("PAY-12") == "jira"
    issue = github.issue(REPO, 1)
    assert issue["title"] == request.summary
    assert _names(issue) == ["postmortem", "reliability", github_label(ITEM), "team-payments"]
    assert [a["login"] for a in issue["assignees"]] == ["bob"]
    assert issue["milestone"]["title"] == "Reliability Q4"
    body = issue["body"]
    assert "Due: 2026-12-18" in body and "Priority: P1" in body
    assert "[Checkout returned 500s](http://followthrough.test/api/postmortems/" in body
    assert "closing it as completed starts the check" in body

    # A retry finds it; a second item reuses the milestone, found by its title.
    assert tracker.ensure_ticket(request) == ref
    other = tracker.ensure_ticket(_request(ITEM[:-1] + "2", "carol", epic="Reliability Q4"))
    assert other.key == f"{REPO}#2"
    assert github.count("POST", "/repos/Acme/Payments/issues") == 0  # githubkit's path: as given
    assert github.count("POST", "/repos/acme/payments/issues") == 2
    assert github.count("POST", "/repos/acme/payments/milestones") == 1
    assert github.issue(REPO, 2)["milestone"]["number"] == issue["milestone"]["number"]


def test_a_lost_reply_is_found_again_and_not_doubled(github: GitHubServer) -> None:
    tracker = GitHubTracker(_config(github))
    github.fail_next(1, 502, after_serving=True, method="POST")  # created, but the reply is lost
    with pytest.raises(GitHubUnavailable, match="GitHub answered 502"):
        tracker.ensure_ticket(_request())
    assert tracker.ensure_ticket(_request()).key == f"{REPO}#1"
    assert len(github.issues(REPO)) == 1


def test_two_attempts_at_once_keep_the_lowest_number(github: GitHubServer) -> None:
    tracker = GitHubTracker(_config(github))
    github.race_next_create()  # another attempt creates the same issue at the same moment
    assert tracker.ensure_ticket(_request()).key == f"{REPO}#1"
    kept, extra = github.issues(REPO)
    assert github_label(ITEM) in _names(kept)
    assert _names(extra) == ["reliability", "followthrough-duplicate"]  # no longer found
    (said,) = github.comments(REPO, 2)
    assert "duplicate of #1" in said["body"]
    assert tracker.ensure_ticket(_request()).key == f"{REPO}#1"
    assert len(github.issues(REPO)) == 2 and len(github.comments(REPO, 2)) == 1


def test_an_unknown_assignee_leaves_the_issue_unassigned_and_says_why(
    github: GitHubServer,
) -> None:
    tracker = GitHubTracker(_config(github, logins={"bob": "no-such-user"}))
    tracker.ensure_ticket(_request())
    issue = github.issue(REPO, 1)
    assert issue["assignees"] == []
    assert "GitHub refused to assign it to no-such-user" in issue["body"]
    refused = [r for r in github.requests if r.method == "POST" and r.path.endswith("/issues")]
    assert refused[0].body["assignees"] == ["no-such-user"] and "assignees" not in refused[1].body


def test_comments_once_per_key_across_pages(github: GitHubServer) -> None:
    tracker = GitHubTracker(_config(github))
    key = tracker.ensure_ticket(_request()).key
    for n in range(130):  # two pages of 100
        github.add_comment(REPO, 1, f"comment {n}")
    github.add_comment(REPO, 1, "Late.\n\n<!-- followthrough:item/late -->")
    assert not tracker.comment(TicketComment(key=key, dedupe_key="item/late", text="Late."))
    assert tracker.comment(TicketComment(key=key, dedupe_key="item/later", text="Later."))
    assert not tracker.comment(TicketComment(key=key, dedupe_key="item/later", text="Later."))
    assert len(github.comments(REPO, 1)) == 132


def test_the_due_date_moves_in_the_body_with_one_comment(github: GitHubServer) -> None:
    tracker = GitHubTracker(_config(github))
    key = tracker.ensure_ticket(_request()).key
    for _ in range(2):
        tracker.set_due(TicketDue(key=key, due=date(2027, 1, 8)))
    body = github.issue(REPO, 1)["body"]
    assert "Due: 2027-01-08" in body and "2026-12-18" not in body
    (said,) = github.comments(REPO, 1)
    assert "moved to 2027-01-08 (it was 2026-12-18)" in said["body"]


def test_refusals_are_permanent_and_never_show_the_token(github: GitHubServer) -> None:
    wrong = "ghp_wrongToken0123456789"
    with pytest.raises(GitHubRefused, match="FOLLOWTHROUGH_GITHUB_TOKEN") as bad:
        GitHubTracker(_config(github, token=wrong)).ensure_ticket(_request())
    assert "Bad credentials" in bad.value.message and wrong not in repr(bad.value.__dict__)
    with pytest.raises(GitHubRefused, match="404"):
        GitHubTracker(_config(github, repository="acme/nothing")).ensure_ticket(_request())
    with pytest.raises(GitHubRefused, match="not a GitHub repository"):
        GitHubTracker(_config(github, repository="not a repo")).ensure_ticket(_request())
    with pytest.raises(GitHubRefused, match="not a period"):
        GitHubTracker(_config(github)).done_tickets("yesterday")
    assert github.issues(REPO) == []


def test_rate_limits_and_outages_are_transient_with_githubs_delay(github: GitHubServer) -> None:
    tracker = GitHubTracker(_config(github))
    for status in (403, 429):
        github.secondary_limit_next(1, retry_after=7, status=status)
        with pytest.raises(GitHubUnavailable) as limited:
            tracker.ensure_ticket(_request())
        assert limited.value.retry_after == 7
    github.exhaust_rate_limit(reset_in=120)
    with pytest.raises(GitHubUnavailable) as spent:
        tracker.ensure_ticket(_request())
    assert spent.value.retry_after is not None and 100 < spent.value.retry_after <= 120
    github.exhaust_rate_limit(reset_in=-1)  # reset: requests are counted again
    github.fail_next(1, 503)
    with pytest.raises(GitHubUnavailable, match="503"):
        tracker.ensure_ticket(_request())
    assert tracker.ensure_ticket(_request()).key == f"{REPO}#1"
    assert len(github.issues(REPO)) == 1


def test_done_tickets_are_issues_closed_as_completed(github: GitHubServer) -> None:
    tracker = GitHubTracker(_config(github))
    for n in range(1, 5):
        tracker.ensure_ticket(_request(f"{ITEM[:-1]}{n}"))
    github.close_issue(REPO, 1, "completed", by="bob")
    github.close_issue(REPO, 2, "not_planned", by="carol")
    github.close_issue(REPO, 3, "duplicate", by="carol")
    github.add_issue(REPO, "Not ours, closed", labels=["bug"])
    github.close_issue(REPO, 5)
    (done,) = tracker.done_tickets("-1d")
    assert (done.key, done.status, done.resolution, done.by) == (
        f"{REPO}#1",
        "closed",
        "completed",
        "bob",
    )
    assert done.source == "reconciliation" and done.at is not None
    assert tracker.done_tickets(datetime.now(UTC).date().isoformat()) == [done]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert tracker.done_tickets(tomorrow) == []


def test_a_label_fits_githubs_fifty_characters() -> None:
    short = "postmortem-pagerduty-Q1ABC-item-1"
    assert github_label(short) == "ft-pagerduty-Q1ABC-item-1"
    long = "postmortem-firehydrant-0f8fad5b-d9cb-469f-a165-70867728950e-item-12"
    label = github_label(long)
    assert len(label) <= 50 and label.startswith("ft-firehydrant-")
    assert label != github_label(long[:-1] + "3")
    assert len(github_label("postmortem-generic-a,b-item-1")) <= 50
    assert "," not in github_label("postmortem-generic-a,b-item-1")


def test_a_long_item_still_fits_githubs_body(github: GitHubServer) -> None:
    tracker = GitHubTracker(_config(github))
    long = _request().model_copy(update={"details": "x" * 40_000, "proposed_change": "y" * 40_000})
    tracker.ensure_ticket(long)
    body = github.issue(REPO, 1)["body"]
    assert len(body) <= 65_536 and "Due: 2026-12-18" in body and "shortened" in body


def _signed(payload: dict[str, Any], event: str = "issues") -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Event": event, "X-Hub-Signature-256": f"sha256={signature}"}, body


def test_the_webhook_reader_verifies_first_and_names_the_bad_field() -> None:
    closed = {
        "action": "closed",
        "issue": {"number": 7, "state_reason": "completed", "closed_at": "2026-12-01T10:00:00Z"},
        "repository": {"full_name": REPO},
        "sender": {"login": "bob"},
    }
    done = read_github_event(*_signed(closed), SECRET)
    assert not isinstance(done, Ignored)
    assert (done.key, done.by, done.resolution) == (f"{REPO}#7", "bob", "completed")
    headers, body = _signed(closed)
    with pytest.raises(Unauthorized):  # not parsed: the body is not even JSON
        read_github_event({**headers}, b"not json" + body, SECRET)
    bad_repo = {**closed, "repository": {"full_name": "not a repository" * 20}}
    with pytest.raises(Malformed, match=r"repository\.full_name"):
        read_github_event(*_signed(bad_repo), SECRET)
    bad_number = {**closed, "issue": {"number": "7"}}
    with pytest.raises(Malformed, match=r"issue\.number"):
        read_github_event(*_signed(bad_number), SECRET)
    pushed = read_github_event(*_signed({"ref": "refs/heads/main"}, event="push"), SECRET)
    assert isinstance(pushed, Ignored) and "push" in pushed.reason


# -- the activities ------------------------------------------------------------------------------


async def test_the_activities_route_to_github_and_refuse_or_delay_as_temporal_needs(
    github: GitHubServer,
) -> None:
    env = ActivityEnvironment()
    reconciled = _config(github, repository=None, repositories=("acme/payments",))
    activities = _activities(reconciled)
    assert await env.run(activities.open_ticket, _request()) is None  # no route, no default
    ref = await env.run(activities.open_ticket, _request(labels=[]))
    assert ref is not None and ref.key == f"{REPO}#1"
    await env.run(activities.comment_ticket, TicketComment(key=ref.key, dedupe_key="e", text="x"))
    await env.run(activities.update_ticket_due, TicketDue(key=ref.key, due=date(2027, 1, 8)))
    assert len(github.comments(REPO, 1)) == 2

    refusing = _activities(_config(github, token="ghp_wrong0123456789"))
    with pytest.raises(ApplicationError) as refused:
        await env.run(refusing.open_ticket, _request(labels=[]))
    assert refused.value.type == "GitHubRefused" and refused.value.non_retryable
    unconfigured = _activities(None)
    with pytest.raises(ApplicationError) as nowhere:
        await env.run(unconfigured.open_ticket, _request(labels=[]))
    assert nowhere.value.non_retryable
    assert "no github tracker is configured" in nowhere.value.message

    github.secondary_limit_next(1, retry_after=9, status=429)
    with pytest.raises(ApplicationError) as limited:
        await env.run(activities.find_done_tickets, "-1d")
    assert limited.value.type == "GitHubUnavailable" and not limited.value.non_retryable
    assert limited.value.next_retry_delay == timedelta(seconds=9)


def _activities(config: GitHubConfig | None) -> TicketActivities:
    return TicketActivities(Trackers({"github": GitHubTracker(config) if config else None}))


def test_github_config_from_the_settings_and_the_directory(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    text = (Path(__file__).parent.parent / "followthrough" / "default_policy.yaml").read_text()
    policy.write_text(text.replace("people: {}", "people: {bob: {github: bob-octocat}}"))
    assert Settings(data_dir=tmp_path, policy=policy).github_config() is None
    settings = Settings(
        data_dir=tmp_path,
        policy=policy,
        github_token="t",
        github_repository="acme/payments",
        github_webhook_secret="s",
    )
    config = settings.github_config()
    assert config is not None and config.logins == {"bob": "bob-octocat"}
    assert config.url == "https://api.github.com" and config.reconciled == ["acme/payments"]
    assert settings.webhook_secret("github") == "s"
    assert "token" not in repr(config)


# -- end to end: webhook and reconciliation ------------------------------------------------------


@pytest.fixture
async def time_skipping(own_time_skipping: WorkflowEnvironment) -> WorkflowEnvironment:
    return own_time_skipping


@pytest.fixture
async def synced(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path, github: GitHubServer
) -> AsyncIterator[Api]:
    """Only GitHub configured, with a default repository: every item becomes an issue there."""
    client = time_skipping.client
    async with running_worker(
        client,
        sqlite_store,
        link_mailer(tmp_path / "outbox"),
        github=_config(github),
        public_url="http://followthrough.test",
    ) as queue:
        settings = api_settings(tmp_path, queue, github_webhook_secret=SECRET)
        async with api_for(client, sqlite_store, settings) as api:
            yield api


def delivery(
    github: GitHubServer,
    number: int,
    guid: str,
    *,
    event: str = "issues",
    action: str = "closed",
    secret: str = SECRET,
) -> tuple[bytes, dict[str, str]]:
    """What GitHub's webhook sends: the issue as it is now, its repository, who did it."""
    issue = github.issue(REPO, number)
    payload = {
        "action": action,
        "issue": issue,
        "repository": {"id": 1001, "name": "Payments", "full_name": REPO, "private": True},
        "sender": {"login": "bob", "id": 311, "type": "User"},
    }
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": guid,
        "X-GitHub-Hook-ID": "42",
        "X-Hub-Signature-256": f"sha256={signature}",
    }


async def test_a_closed_issue_claims_its_item_done_and_reconciliation_finds_a_missed_one(
    synced: Api, time_skipping: WorkflowEnvironment, github: GitHubServer
) -> None:
    api = synced
    _, bob_item, carol_item = await tracked_postmortem(api, time_skipping)

    def keys() -> list[str] | None:
        items = [stored_item(api, i) for i in (bob_item, carol_item)]
        return [i.ticket.key for i in items if i.ticket] if all(i.ticket for i in items) else None

    bob_key, carol_key = await eventually(keys, seconds=30)
    bob_number = int(bob_key.rpartition("#")[2])
    assert [a["login"] for a in github.issue(REPO, bob_number)["assignees"]] == ["bob"]

    # Forged, unsigned and wrongly-signed deliveries are refused and change nothing.
    github.close_issue(REPO, bob_number, "completed", by="bob")
    body, headers = delivery(github, bob_number, "guid-1")
    post = api.http.post
    forged = {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
    assert (await post("/webhooks/github", content=body, headers=forged)).status_code == 401
    unsigned = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
    assert (await post("/webhooks/github", content=body, headers=unsigned)).status_code == 401
    _, other = delivery(github, bob_number, "guid-1", secret="another-secret")
    assert (await post("/webhooks/github", content=body, headers=other)).status_code == 401
    assert stored_item(api, bob_item).state.value == "open"

    # A ping and other events are answered, and ignored with a reason.
    ping_body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 42}).encode()
    ping_sig = hmac.new(SECRET.encode(), ping_body, hashlib.sha256).hexdigest()
    ping = await post(
        "/webhooks/github",
        content=ping_body,
        headers={"X-GitHub-Event": "ping", "X-Hub-Signature-256": f"sha256={ping_sig}"},
    )
    assert (ping.status_code, ping.json()["status"]) == (200, "ignored")
    body_l, labeled = delivery(github, bob_number, "guid-0", action="labeled")
    answer = await post("/webhooks/github", content=body_l, headers=labeled)
    assert answer.json() == {**answer.json(), "status": "ignored"} and "not closed" in answer.text

    # The signed delivery claims the item done; GitHub's redelivery is a harmless duplicate.
    claimed = await post("/webhooks/github", content=body, headers=headers)
    assert (claimed.status_code, claimed.json()["status"]) == (202, "claimed done")
    again = await post("/webhooks/github", content=body, headers=headers)
    assert again.json()["status"] == "duplicate"
    item = await eventually(
        lambda: (i := stored_item(api, bob_item)).state.value == "done_claimed" and i
    )
    assert bob_key in item.claims[-1].evidence and "completed" in item.claims[-1].evidence
    assert len(item.claims) == 1

    # Closed as not planned is no claim; closed as completed with the webhook missed is found.
    carol_number = int(carol_key.rpartition("#")[2])
    github.close_issue(REPO, carol_number, "not_planned", by="carol")
    body_np, not_planned = delivery(github, carol_number, "guid-2")
    answer = await post("/webhooks/github", content=body_np, headers=not_planned)
    assert answer.json()["status"] == "ignored" and "not_planned" in answer.text
    reconciled = await api.services.client.execute_workflow(
        TicketReconciliationWorkflow.run,
        "-1d",
        id="reconcile-github-1",
        task_queue=api.services.task_queue,
    )
    assert reconciled == []  # bob's item is claimed already, carol's issue was not done
    github.reopen_issue(REPO, carol_number)
    github.close_issue(REPO, carol_number, "completed", by="carol")
    reconciled = await api.services.client.execute_workflow(
        TicketReconciliationWorkflow.run,
        "-1d",
        id="reconcile-github-2",
        task_queue=api.services.task_queue,
    )
    assert carol_item in reconciled
    await eventually(lambda: stored_item(api, carol_item).state.value == "done_claimed")


def test_the_worker_reconciles_every_repository_the_policy_routes_to(github: GitHubServer) -> None:
    from followthrough.temporal.worker import ticket_trackers
    from tests.domain.test_routing import routed

    config = _config(github, repository=None)
    trackers = ticket_trackers(routed(), None, config)
    tracker = trackers.get("github")
    assert isinstance(tracker, GitHubTracker)
    assert tracker.config.reconciled == ["acme/platform"]
    assert trackers.unrouted == "jira"  # no default repository: unrouted items have no tracker
    assert ticket_trackers(routed(), None, _config(github)).unrouted == "github"


def test_a_priority_from_the_impact_score_says_why_in_the_issue(github: GitHubServer) -> None:
    from followthrough.domain.impact import ImpactFacts, impact_score
    from followthrough.domain.policy import load_policy

    policy = load_policy()
    facts = ImpactFacts(severity="SEV1", users_affected=5_000, removes_class="unsafe-rollout")
    score = impact_score(facts, policy.impact, policy.failure_classes)
    request = _request(labels=[]).model_copy(
        update={"priority": "P2", "author_priority": "P1", "impact": score}
    )
    ref = GitHubTracker(_config(github)).ensure_ticket(request)
    body = github.issue(REPO, int(ref.key.rsplit("#", 1)[1]))["body"]
    assert (
        "Priority P2, not the postmortem's P1: it follows the item's impact score, 47.5 of 100.\n"
        "- Severity: SEV1 (the policy counts SEV1 at 100 %), 25 points\n"
    ) in body
    assert "Priority: P2" in body
