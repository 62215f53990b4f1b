"""The Jira side of "every action item is a Jira ticket": followthrough.integrations.jira and
activities/tickets.py, against tests/servers/jira_server.py over HTTP with the real `jira`
library, as Jira Server and as Jira Cloud (the `jira` fixture runs each test both ways). No mocks:
the server's fault modes stand in for a Jira that rate-limits, fails, is slow, or loses a reply
after doing the work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from jira import JIRA
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.tickets import TicketActivities
from followthrough.domain.impact import ImpactFacts, impact_score
from followthrough.domain.policy import load_policy
from followthrough.domain.tickets import (
    TicketComment,
    TicketDue,
    TicketEscalation,
    TicketRequest,
    item_label,
)
from followthrough.integrations.jira import JiraConfig, JiraRefused, JiraTracker, JiraUnavailable
from followthrough.integrations.jira.tracker import has_marker, marker
from followthrough.integrations.trackers import Trackers
from followthrough.settings import Settings
from tests.servers.jira_server import EPIC_LINK, JiraServer

USER, TOKEN = "followthrough@example.com", "jira-s3cret-token"
ALICE = {"displayName": "Alice Example", "emailAddress": "alice@example.com", "accountId": "acc-1"}
PM_URL = "http://followthrough.example/postmortems/postmortem-pagerduty-P123"
ISSUE_PATH = r"/rest/api/2/issue"
CRITERION = "p99 latency of checkout stays under 300 ms over 7 days (prometheus_query)"
# What a ticket says, once, about moving it to Done
# (followthrough/integrations/jira/templates/description.j2).
DONE_STARTS_THE_CHECK = (
    "Followthrough keeps this ticket in sync: moving it to Done starts the check of its "
    "acceptance criterion, and the item closes only when the check passes."
)


@pytest.fixture(params=["Server", "Cloud"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraServer]:
    with JiraServer(
        users={USER: TOKEN}, deployment_type=request.param, people={"alice": ALICE}
    ) as server:
        yield server


def _config(jira: JiraServer, **overrides: Any) -> JiraConfig:
    fields: dict[str, Any] = {
        "url": jira.url,
        "user": USER,
        "token": TOKEN,
        "project": "PM",
        "timeout": 5.0,
        **overrides,
    }
    return JiraConfig(**fields)


def _tracker(jira: JiraServer, **overrides: Any) -> JiraTracker:
    return JiraTracker(_config(jira, **overrides))


def _trackers(jira: JiraServer, **overrides: Any) -> Trackers:
    return Trackers({"jira": _tracker(jira, **overrides)})


def _request(number: int = 1, **overrides: Any) -> TicketRequest:
    fields: dict[str, Any] = {
        "action_item_id": f"postmortem-pagerduty-P123-item-{number}",
        "postmortem_id": "postmortem-pagerduty-P123",
        "postmortem_title": "Checkout latency | 2026-11-20",
        "summary": f"Add a canary stage to the checkout deploy ({number})",
        "accepted_when": CRITERION,
        "priority": "P1",
        "due": date(2026, 12, 18),
        "owner": "alice",
        "owner_email": "alice@example.com",
        "postmortem_url": PM_URL,
        **overrides,
    }
    return TicketRequest(**fields)


def _links(jira: JiraServer, key: str) -> list[dict[str, Any]]:
    return jira.remote_links.get(jira.issue(key)["id"], [])


def _comments(jira: JiraServer, key: str) -> list[str]:
    return [c["body"] for c in jira.issue(key)["fields"]["comment"]["comments"]]


def _search_route(jira: JiraServer) -> str:
    return "search_jql" if jira.cloud else "search"


def _chain(err: BaseException | None) -> str:
    """Every message in an exception's chain (what Temporal would record)."""
    text = []
    while err is not None:
        text.append(f"{type(err).__name__}: {err}")
        err = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
    return "\n".join(text)


# -- ensure_ticket ---------------------------------------------------------------------------


def test_ensure_ticket_creates_it_with_its_fields_and_finds_it_again(jira: JiraServer) -> None:
    tracker = _tracker(jira)
    request = _request()
    ref = tracker.ensure_ticket(request)
    assert ref.key == "PM-1"
    assert ref.url == f"{jira.url}/browse/PM-1"

    fields = jira.issue("PM-1")["fields"]
    assert fields["summary"] == "Add a canary stage to the checkout deploy (1)"
    assert CRITERION in fields["description"]
    assert PM_URL in fields["description"]
    assert request.action_item_id in fields["description"]
    assert fields["labels"] == sorted(["postmortem", "reliability", "ft-pagerduty-P123-item-1"])
    assert fields["priority"]["name"] == "High"
    assert fields["duedate"] == "2026-12-18"
    assert fields["issuetype"]["name"] == "Task"
    if jira.cloud:
        assert fields["assignee"]["accountId"] == "acc-1"
    else:
        assert fields["assignee"]["name"] == "alice"
    (link,) = _links(jira, "PM-1")
    assert link["object"] == {"url": PM_URL, "title": "Postmortem: Checkout latency | 2026-11-20"}

    (create,) = jira.calls("create_issue")
    sent = create.body["fields"]
    assert sent["assignee"] == ({"accountId": "acc-1"} if jira.cloud else {"name": "alice"})
    assert sent["project"] == {"key": "PM"} and sent["issuetype"] == {"name": "Task"}
    (lookup,) = jira.calls("user_search")
    by = "query" if jira.cloud else "username"  # Cloud refuses username (GDPR strict mode)
    assert lookup.query[by] == ["alice@example.com"]
    # Cloud never touches the removed /search; Server has no /search/jql.
    assert jira.count("search" if jira.cloud else "search_jql") == 0

    # The activity's retry, or a second run of the workflow: the same ticket, no second POST.
    again = tracker.ensure_ticket(request)
    assert again == ref
    assert jira.count("create_issue") == 1
    assert jira.count("add_remote_link") == 1
    assert len(jira.issues) == 1
    # "auto" asked serverInfo once for the tracker's life.
    assert jira.count("server_info") == 1
    # Another tracker (a restarted worker) finds it too.
    assert (
        _tracker(jira, deployment="cloud" if jira.cloud else "server").ensure_ticket(request) == ref
    )
    assert jira.count("create_issue") == 1 and jira.count("server_info") == 1


def test_ensure_ticket_without_a_postmortem_url_or_known_priority(jira: JiraServer) -> None:
    ref = _tracker(jira).ensure_ticket(_request(priority="P9", postmortem_url=None))
    fields = jira.issue(ref.key)["fields"]
    assert fields["priority"]["name"] == "Medium"  # not mapped: Jira's default
    assert "priority" not in jira.calls("create_issue")[0].body["fields"]
    assert "Checkout latency / 2026-11-20" in fields["description"]
    assert jira.count("add_remote_link") == 0


def test_accounts_from_the_settings_skip_the_user_search(jira: JiraServer) -> None:
    account = "acc-1" if jira.cloud else "alice"
    ref = _tracker(jira, accounts={"alice": account}).ensure_ticket(_request())
    assignee = jira.issue(ref.key)["fields"]["assignee"]
    assert assignee["displayName"] == "Alice Example"
    assert jira.count("user_search") == 0


def test_an_owner_jira_does_not_know_gets_an_unassigned_ticket_with_a_note(
    jira: JiraServer,
) -> None:
    request = _request(owner="zed", owner_email="zed@example.com")
    ref = _tracker(jira).ensure_ticket(request)
    fields = jira.issue(ref.key)["fields"]
    assert fields["assignee"] is None
    assert "unassigned: no Jira user was found for zed@example.com" in fields["description"]
    assert "FOLLOWTHROUGH_JIRA_ACCOUNTS" in fields["description"]

    # A mapped account Jira refuses (400 errors.assignee): created unassigned, not a failure.
    refused = _tracker(jira, accounts={"alice": "gone"}).ensure_ticket(_request(2))
    fields = jira.issue(refused.key)["fields"]
    assert fields["assignee"] is None
    assert "unassigned: Jira refused to assign it to alice" in fields["description"]
    assert len(jira.issues) == 2


@pytest.mark.parametrize(
    "lost",
    [
        pytest.param({"status": 429, "retry_after": 1}, id="429-after-creating"),
        pytest.param({"status": 503}, id="503-after-creating"),
        pytest.param({"status": 502}, id="502-after-creating"),
    ],
)
def test_a_create_whose_reply_is_lost_is_found_not_made_again(
    jira: JiraServer, lost: dict[str, Any]
) -> None:
    """Jira makes the issue and the reply is an error: our retry searches first, so one."""
    tracker = _tracker(jira)
    request = _request()
    jira.faults.fail_next(1, method="POST", path=ISSUE_PATH, after_serving=True, **lost)
    with pytest.raises(JiraUnavailable) as failed:
        tracker.ensure_ticket(request)
    assert f"Jira answered {lost['status']}" in failed.value.message
    assert len(jira.issues) == 1  # it was made, although we were told otherwise
    assert jira.count("create_issue") == 1  # and the library did not retry the POST itself

    ref = tracker.ensure_ticket(request)  # the activity's retry
    assert ref.key == "PM-1"
    assert len(jira.issues) == 1
    assert jira.count("create_issue") == 1
    assert len(_links(jira, "PM-1")) == 1  # the link the first attempt never got to


def test_a_dropped_or_timed_out_create_is_found_not_made_again(jira: JiraServer) -> None:
    tracker = _tracker(jira, timeout=0.5)
    jira.faults.drop(1, method="POST", path=ISSUE_PATH, after_serving=True)
    with pytest.raises(JiraUnavailable):
        tracker.ensure_ticket(_request(1))
    jira.faults.slow(3, n=1, method="POST", path=ISSUE_PATH, after_serving=True)
    with pytest.raises(JiraUnavailable, match=r"did not answer within 0.5s"):
        tracker.ensure_ticket(_request(2))
    assert sorted(jira.issues) == ["PM-1", "PM-2"]
    assert tracker.ensure_ticket(_request(1)).key == "PM-1"
    assert tracker.ensure_ticket(_request(2)).key == "PM-2"
    assert jira.count("create_issue") == 2 and len(jira.issues) == 2


def test_left_to_its_defaults_the_library_would_make_two() -> None:
    """Why max_retries=0: the library retries POST /issue on a 429 with Retry-After."""
    with JiraServer(users={USER: TOKEN}) as jira:
        jira.faults.fail_next(
            1, status=429, retry_after=0, method="POST", path=ISSUE_PATH, after_serving=True
        )
        client = JIRA(jira.url, basic_auth=(USER, TOKEN), get_server_info=False, timeout=5)
        try:
            client.create_issue(
                fields={"project": {"key": "PM"}, "issuetype": {"name": "Task"}, "summary": "x"},
                prefetch=False,
            )
        finally:
            client.close()  # type: ignore[no-untyped-call]
        assert sorted(jira.issues) == ["PM-1", "PM-2"]


def test_two_attempts_at_once_settle_on_the_lowest_key(jira: JiraServer) -> None:
    """An attempt that outlived its timeout and its retry both search, find nothing, create:
    both then agree on the lowest key, and the other ticket is marked, not followed."""
    tracker = _tracker(jira)
    request = _request()
    jira.faults.slow(0.5, method="POST", path=ISSUE_PATH)  # both search before either creates
    start = threading.Barrier(2)
    refs: list[Any] = []

    def attempt() -> None:
        start.wait()
        refs.append(tracker.ensure_ticket(request))

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert jira.count("create_issue") == 2 and sorted(jira.issues) == ["PM-1", "PM-2"]
    assert [r.key for r in refs] == ["PM-1", "PM-1"]
    kept, extra = jira.issue("PM-1")["fields"], jira.issue("PM-2")["fields"]
    assert "ft-pagerduty-P123-item-1" in kept["labels"] and "postmortem" in kept["labels"]
    assert extra["labels"] == ["followthrough-duplicate", "reliability"]
    notes = _comments(jira, "PM-2")  # one, or one from each attempt when they raced there too
    assert 1 <= len(notes) <= 2
    assert all("keeps PM-1 in sync" in n and has_marker(n, "duplicate-of-PM-1") for n in notes)

    jira.faults.clear()
    jira.set_status("PM-2", "Done", resolution="Duplicate")
    assert tracker.ensure_ticket(request).key == "PM-1"
    assert [t.key for t in tracker.done_tickets("-1d")] == []  # the extra is no done claim
    assert len(_links(jira, "PM-1")) >= 1


def test_duplicates_found_by_the_search_are_marked(jira: JiraServer) -> None:
    label = item_label(_request().action_item_id)
    for key in ("PM-3", "PM-12"):
        jira.add_issue(key, labels=["postmortem", "reliability", label, "team-x"])
    ref = _tracker(jira).ensure_ticket(_request())
    assert ref.key == "PM-3"  # by number, not as text ("PM-12" < "PM-3")
    assert jira.issue("PM-12")["fields"]["labels"] == [
        "followthrough-duplicate",
        "reliability",
        "team-x",
    ]
    assert jira.count("create_issue") == 0


def test_epics_one_per_postmortem(jira: JiraServer) -> None:
    tracker = _tracker(jira, epics=True)
    first = tracker.ensure_ticket(_request(1))
    second = tracker.ensure_ticket(_request(2))
    epics = [k for k, i in jira.issues.items() if i["fields"]["issuetype"]["name"] == "Epic"]
    assert len(epics) == 1
    (epic,) = epics
    assert jira.issue(epic)["fields"]["labels"] == [
        "followthrough-epic",
        "ft-pagerduty-P123",
        "reliability",
    ]
    assert jira.issue(epic)["fields"]["summary"] == "Postmortem: Checkout latency | 2026-11-20"
    for ref in (first, second):
        fields = jira.issue(ref.key)["fields"]
        if jira.cloud:
            assert fields["parent"]["key"] == epic
        else:
            assert fields[EPIC_LINK] == epic
    assert jira.count("create_issue") == 3
    assert tracker.ensure_ticket(_request(1)) == first
    assert jira.count("create_issue") == 3


def test_a_ticket_is_worded_from_its_facts_and_says_once_that_done_starts_the_check(
    jira: JiraServer,
) -> None:
    rules = "groups:\n- name: checkout\n"
    request = _request(details="Add a canary stage.", proposed_change=rules)
    key = _tracker(jira).ensure_ticket(request).key
    assert jira.issue(key)["fields"]["description"] == (
        "Add a canary stage.\n\n"
        f"Accepted when: {CRITERION}\n\n"
        "Proposed change:\n{code:yaml}\n" + rules + "{code}\n\n"
        "----\n"
        f"Action item {request.action_item_id} of the postmortem "
        f"[Checkout latency / 2026-11-20|{PM_URL}] ({request.postmortem_id}).\n"
        "Owner: alice <alice@example.com>.\n" + DONE_STARTS_THE_CHECK
    )


def test_a_ticket_asked_for_before_the_facts_keeps_the_words_it_came_with(
    jira: JiraServer,
) -> None:
    """A history recorded before TicketRequest carried facts hands the activity its words."""
    recorded = _request().model_dump(mode="json", exclude={"details", "accepted_when"})
    recorded.pop("proposed_change")
    recorded["description"] = f"Accepted when: {CRITERION}\nFrom the postmortem of ..."
    key = _tracker(jira).ensure_ticket(TicketRequest.model_validate(recorded)).key
    description = jira.issue(key)["fields"]["description"]
    assert description.startswith(recorded["description"] + "\n\n----\nAction item ")
    assert description.endswith(DONE_STARTS_THE_CHECK)


def test_a_priority_from_the_impact_score_says_why(jira: JiraServer) -> None:
    policy = load_policy()
    facts = ImpactFacts(severity="SEV1", users_affected=5_000, removes_class="unsafe-rollout")
    score = impact_score(facts, policy.impact, policy.failure_classes)  # 25 + 7.5 + 15
    tracker = _tracker(jira)
    differs = tracker.ensure_ticket(
        _request(1, priority="P2", author_priority="P1", impact=score)
    ).key
    description = jira.issue(differs)["fields"]["description"]
    assert (
        "Priority P2, not the postmortem's P1: it follows the item's impact score, 47.5 of 100.\n"
        "* Severity: SEV1 (the policy counts SEV1 at 100 %), 25 points\n"
        "* Users affected: 5,000 users (from the postmortem; 10,000 count in full), 7.5 points\n"
        "* Class of failure: removes 'unsafe-rollout'"
    ) in description
    assert jira.issue(differs)["fields"]["priority"]["name"] == "Medium"
    same = tracker.ensure_ticket(_request(2, priority="P2", author_priority="P2", impact=score))
    assert "impact score" not in jira.issue(same.key)["fields"]["description"]


# -- comments, due dates -------------------------------------------------------------------------


def test_an_escalation_comment_is_worded_from_its_facts(jira: JiraServer) -> None:
    tracker = _tracker(jira)
    key = tracker.ensure_ticket(_request()).key
    for dedupe_key, overdue in (("due/plan-1", 0), ("manager/plan-1", 3)):
        step = dedupe_key.split("/")[0]
        told = ["alice"] if step == "due" else ["maria", "ops"]
        escalation = TicketEscalation(
            step=step, told=told, due=date(2026, 12, 18), days_overdue=overdue
        )
        tracker.comment(TicketComment(key=key, dedupe_key=dedupe_key, escalation=escalation))
    assert [body.split("\n\n")[0] for body in _comments(jira, key)] == [
        "Followthrough: due (due 2026-12-18); alice told by email.",
        "Followthrough: manager (3 business days overdue); maria, ops told by email.",
    ]


def test_comments_are_posted_once_per_dedupe_key(jira: JiraServer) -> None:
    tracker = _tracker(jira)
    key = tracker.ensure_ticket(_request()).key
    first = TicketComment(key=key, dedupe_key="escalated-1", text="Escalated to the council.")
    assert tracker.comment(first) is True
    assert tracker.comment(first) is False
    # A prefix of another key is another key.
    assert tracker.comment(TicketComment(key=key, dedupe_key="escalated-10", text="Again.")) is True
    assert tracker.comment(TicketComment(key=key, dedupe_key="escalated", text="Once more."))
    bodies = _comments(jira, key)
    assert len(bodies) == 3
    assert bodies[0] == "Escalated to the council.\n\n" + marker("escalated-1")
    assert jira.count("add_comment") == 3

    # A comment whose reply was lost is found, not posted again.
    lost = TicketComment(key=key, dedupe_key="overdue/2026-12-19", text="Overdue.")
    jira.faults.fail_next(
        1, status=503, method="POST", path=rf"{ISSUE_PATH}/{key}/comment", after_serving=True
    )
    with pytest.raises(JiraUnavailable):
        tracker.comment(lost)
    assert tracker.comment(lost) is False
    assert len(_comments(jira, key)) == 4


def test_the_marker_is_found_as_jira_gives_it_back() -> None:
    assert has_marker("text\n\n\\[followthrough:a/b\\]", "a/b")
    assert has_marker("text [followthrough:a/b]", "a/b")
    assert has_marker("[followthrough:a/b|followthrough:a/b]", "a/b")
    assert not has_marker("[followthrough:a/bc]", "a/b")
    assert not has_marker("followthrough:a/b-2", "a/b")


def test_comments_are_read_page_by_page(jira: JiraServer) -> None:
    tracker = _tracker(jira)
    key = tracker.ensure_ticket(_request()).key
    for n in range(105):
        tracker.comment(TicketComment(key=key, dedupe_key=f"n-{n}", text=f"comment {n}"))
    pages_before = jira.count("get_comments")
    assert tracker.comment(TicketComment(key=key, dedupe_key="n-104", text="again")) is False
    assert jira.count("get_comments") - pages_before == 2
    assert len(_comments(jira, key)) == 105


def test_set_due_moves_the_due_date(jira: JiraServer) -> None:
    tracker = _tracker(jira)
    key = tracker.ensure_ticket(_request()).key
    tracker.set_due(TicketDue(key=key, due=date(2027, 1, 15)))
    tracker.set_due(TicketDue(key=key, due=date(2027, 1, 15)))  # a retry changes nothing
    assert jira.issue(key)["fields"]["duedate"] == "2027-01-15"
    (edit, _) = jira.calls("edit_issue")
    assert edit.body == {"fields": {"duedate": "2027-01-15"}}
    with pytest.raises(JiraRefused, match=r"PM-404"):
        tracker.set_due(TicketDue(key="PM-404", due=date(2027, 1, 15)))


# -- done tickets --------------------------------------------------------------------------------


@pytest.mark.parametrize("deployment", ["Server", "Cloud"])
def test_done_tickets_pages_through_every_one(deployment: str) -> None:
    with JiraServer(users={USER: TOKEN}, deployment_type=deployment, max_results=50) as jira:
        now = jira.now()
        done = []
        for n in range(1, 161):
            key = f"PM-{n}"
            if n % 10 == 3:  # still open
                jira.add_issue(key, labels=["postmortem"], status="In Progress")
            elif n % 10 == 7:  # done, but not ours
                jira.add_issue(key, labels=["other"], status="Done", resolution="Done")
            elif n % 10 == 9:  # done long ago
                jira.add_issue(key, labels=["postmortem"], created=now - timedelta(days=5))
                jira.set_status(key, "Done", resolution="Fixed")
                five_days_ago = now - timedelta(days=5)
                jira.issues[key]["fields"]["updated"] = five_days_ago.strftime(
                    "%Y-%m-%dT%H:%M:%S.000+0000"
                )
            else:
                status, resolution = ("Won't Do", "Won't Do") if n % 10 == 5 else ("Done", "Fixed")
                jira.add_issue(key, labels=["postmortem", "reliability"])
                jira.set_status(key, status, resolution=resolution)
                done.append(key)
        jira.add_issue("OPS-1", labels=["postmortem"], status="Done", resolution="Done")
        assert len(done) == 112

        found = _tracker(jira).done_tickets("-1d")
        assert [t.key for t in found] == done
        assert {t.status for t in found} == {"Done", "Won't Do"}
        assert found[0].resolution == "Fixed" and found[0].source == "reconciliation"
        assert found[0].at is not None and found[0].at.tzinfo is not None

        pages = jira.calls(_search_route(jira))
        assert len(pages) == 3  # 100 asked, 50 served at a time
        jql = pages[0].query["jql"][0]
        assert jql == (
            'project = "PM" AND labels = postmortem AND statusCategory = Done '
            'AND updated >= "-1d" ORDER BY key ASC'
        )
        if jira.cloud:
            assert "nextPageToken" not in pages[0].query
            assert all("nextPageToken" in p.query for p in pages[1:])
        else:
            assert [p.query["startAt"] for p in pages] == [["0"], ["50"], ["100"]]

        assert [t.key for t in _tracker(jira, done_window="-2w").done_tickets()] == sorted(
            [*done, *(f"PM-{n}" for n in range(9, 161, 10))],
            key=lambda k: int(k.split("-")[1]),
        )


def test_a_window_that_is_no_jql_date_is_refused(jira: JiraServer) -> None:
    with pytest.raises(JiraRefused, match=r"FOLLOWTHROUGH_JIRA_DONE_JQL_WINDOW"):
        _tracker(jira).done_tickets('-1d" OR project = "X')
    assert jira.count(_search_route(jira)) == 0


# -- failures ------------------------------------------------------------------------------------


def test_a_429_storm_delays_and_loses_nothing(jira: JiraServer) -> None:
    tracker = _tracker(jira)
    request = _request()
    jira.faults.fail_next(4, status=429, retry_after=1)
    waits = []
    for _ in range(10):  # what the activity's retry policy does, without the waiting
        try:
            ref = tracker.ensure_ticket(request)
            break
        except JiraUnavailable as err:
            assert "Jira answered 429" in err.message and "Rate limit exceeded." in err.message
            waits.append(err.retry_after)
    assert waits == [1.0, 1.0, 1.0, 1.0]
    assert ref.key == "PM-1" and len(jira.issues) == 1 and jira.count("create_issue") == 1

    # A Retry-After as an HTTP date (the library would crash on it) is a wait too.
    jira.faults.fail_next(1, status=429, retry_after="Wed, 21 Oct 2037 07:28:00 GMT")
    with pytest.raises(JiraUnavailable) as storm:
        tracker.comment(TicketComment(key="PM-1", dedupe_key="x", text="x"))
    assert storm.value.retry_after is not None and storm.value.retry_after > 3600


def test_503_is_unavailable(jira: JiraServer) -> None:
    jira.faults.fail_always(status=503)
    with pytest.raises(JiraUnavailable) as failed:
        _tracker(jira).ensure_ticket(_request())
    assert failed.value.message.startswith("Jira answered 503 (opening the ticket for ")
    assert "503 Service Unavailable" in failed.value.message
    assert failed.value.retry_after is None


def test_bad_credentials_are_refused_and_the_token_never_shows(jira: JiraServer) -> None:
    wrong = "wrong-token-0123456789"
    with pytest.raises(JiraRefused) as refused:
        _tracker(jira, token=wrong).ensure_ticket(_request())
    message = refused.value.message
    assert message.startswith(f"Jira refused the credentials of {USER} (401)")
    assert "FOLLOWTHROUGH_JIRA_USER and FOLLOWTHROUGH_JIRA_TOKEN" in message
    assert wrong not in _chain(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__

    jira.faults.bad_credentials()  # a revoked token: even serverInfo is refused
    with pytest.raises(JiraRefused, match=r"\(401\)") as revoked:
        _tracker(jira).done_tickets()
    assert TOKEN not in _chain(revoked.value)


def test_an_unknown_project_is_refused_by_name(jira: JiraServer) -> None:
    with pytest.raises(JiraRefused) as refused:
        _tracker(jira, project="NOPE").ensure_ticket(_request())
    assert "project NOPE" in refused.value.message
    assert "The value 'NOPE' does not exist for the field 'project'." in refused.value.message
    with pytest.raises(JiraRefused, match=r"valid issue type is required"):
        _tracker(jira, issue_type="Chore").ensure_ticket(_request())
    with pytest.raises(JiraRefused, match=r"Priority name 'Urgent' is not valid"):
        _tracker(jira, priorities={"P1": "Urgent"}).ensure_ticket(_request())
    assert len(jira.issues) == 0


def test_slow_replies_are_unavailable_within_the_timeout(jira: JiraServer) -> None:
    jira.faults.slow(5)
    started = time.monotonic()
    with pytest.raises(JiraUnavailable, match=r"did not answer within 0.5s"):
        _tracker(jira, timeout=0.5).ensure_ticket(_request())
    assert time.monotonic() - started < 2


def test_jira_down_is_unavailable_at_once(jira: JiraServer) -> None:
    tracker = _tracker(jira)
    jira.down()
    started = time.monotonic()
    with pytest.raises(JiraUnavailable, match=r"connection refused"):
        tracker.ensure_ticket(_request())
    assert time.monotonic() - started < 2
    jira.up()
    assert tracker.ensure_ticket(_request()).key == "PM-1"


def test_not_jira_is_refused(jira: JiraServer) -> None:
    with pytest.raises(JiraRefused, match=r"is FOLLOWTHROUGH_JIRA_URL Jira's base URL"):
        _tracker(jira, url=f"{jira.url}/not-jira", deployment="server").ensure_ticket(_request())


# -- the activities ------------------------------------------------------------------------------


async def test_without_jira_the_activities_do_nothing() -> None:
    activities = TicketActivities(Trackers())
    env = ActivityEnvironment()
    assert await env.run(activities.open_ticket, _request()) is None
    assert await env.run(activities.find_done_tickets, "-1d") == []
    await env.run(activities.comment_ticket, TicketComment(key="PM-1", dedupe_key="x", text="x"))
    await env.run(activities.update_ticket_due, TicketDue(key="PM-1", due=date(2027, 1, 1)))


async def test_the_activities_against_jira(jira: JiraServer) -> None:
    activities = TicketActivities(_trackers(jira))
    env = ActivityEnvironment()
    ref = await env.run(activities.open_ticket, _request())
    assert ref is not None and ref.key == "PM-1"
    await env.run(
        activities.comment_ticket, TicketComment(key=ref.key, dedupe_key="e-1", text="Late.")
    )
    await env.run(activities.update_ticket_due, TicketDue(key=ref.key, due=date(2027, 2, 1)))
    assert jira.issue(ref.key)["fields"]["duedate"] == "2027-02-01"
    jira.set_status(ref.key, "Done", resolution="Fixed")
    done = await env.run(activities.find_done_tickets, "")
    assert [(t.key, t.status, t.resolution) for t in done] == [("PM-1", "Done", "Fixed")]


async def test_a_refusal_is_a_non_retryable_application_error(jira: JiraServer) -> None:
    wrong = "wrong-token-0123456789"
    activities = TicketActivities(_trackers(jira, token=wrong))
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.open_ticket, _request())
    assert refused.value.type == "JiraRefused"
    assert refused.value.non_retryable
    assert f"Jira refused the credentials of {USER} (401)" in refused.value.message
    assert wrong not in _chain(refused.value)


async def test_unavailable_is_a_retryable_application_error(jira: JiraServer) -> None:
    activities = TicketActivities(_trackers(jira))
    jira.faults.fail_next(1, status=429, retry_after=7)
    with pytest.raises(ApplicationError) as busy:
        await ActivityEnvironment().run(activities.open_ticket, _request())
    assert busy.value.type == "JiraUnavailable"
    assert not busy.value.non_retryable
    assert busy.value.next_retry_delay == timedelta(seconds=7)
    jira.faults.fail_next(1, status=503)
    with pytest.raises(ApplicationError) as down:
        await ActivityEnvironment().run(activities.find_done_tickets, "-1d")
    assert down.value.type == "JiraUnavailable" and down.value.next_retry_delay is None
    assert (await ActivityEnvironment().run(activities.open_ticket, _request())) is not None
    assert len(jira.issues) == 1


# -- settings ------------------------------------------------------------------------------------


def test_jira_config_from_the_settings(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    base: dict[str, Any] = {
        "jira_url": "https://example.atlassian.net",
        "jira_user": "bot",
        "jira_token": "t",
    }
    assert Settings(data_dir=tmp_path, **base).jira_config() is None  # no project
    assert Settings(data_dir=tmp_path, jira_project="PM").jira_config() is None
    config = Settings(data_dir=tmp_path, jira_project="PM", **base).jira_config()
    assert config is not None
    assert (config.project, config.issue_type, config.deployment) == ("PM", "Task", "auto")
    assert dict(config.priorities) == {"P0": "Highest", "P1": "High", "P2": "Medium", "P3": "Low"}
    assert (config.due_field, config.epics, dict(config.accounts)) == ("duedate", False, {})
    assert config.done_window == "-1d"
    assert "token=" not in repr(config)

    monkeypatch.setenv("FOLLOWTHROUGH_JIRA_PROJECT", "OPS")
    monkeypatch.setenv("FOLLOWTHROUGH_JIRA_DEPLOYMENT", "cloud")
    monkeypatch.setenv("FOLLOWTHROUGH_JIRA_PRIORITIES", '{"P0": "Blocker", "P1": "Critical"}')
    monkeypatch.setenv("FOLLOWTHROUGH_JIRA_ACCOUNTS", '{"alice": "5b10ac8d82e05b22cc7d4ef5"}')
    monkeypatch.setenv("FOLLOWTHROUGH_JIRA_EPICS", "true")
    monkeypatch.setenv("FOLLOWTHROUGH_JIRA_DUE_FIELD", "customfield_10015")
    monkeypatch.setenv("FOLLOWTHROUGH_JIRA_DONE_JQL_WINDOW", "-2h")
    config = Settings(data_dir=tmp_path, **base).jira_config()
    assert config is not None
    assert (config.project, config.deployment, config.epics) == ("OPS", "cloud", True)
    assert dict(config.priorities) == {"P0": "Blocker", "P1": "Critical"}
    assert dict(config.accounts) == {"alice": "5b10ac8d82e05b22cc7d4ef5"}
    assert (config.due_field, config.done_window) == ("customfield_10015", "-2h")
