"""Routed tickets in Jira: a team's own project and labels, its objective's epic, its board's active
sprint (Jira Software's Agile REST API), through the real `jira` library against
tests/servers/jira_server.py, as Jira Server and as Jira Cloud; the ticket activities choosing the
tracker a route names.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from jira import JIRA, JIRAError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.tickets import TicketActivities
from followthrough.domain.tickets import TicketComment, TicketDue, TicketRequest, TicketRoute
from followthrough.integrations.jira import (
    JiraConfig,
    JiraRefused,
    JiraTracker,
    JiraUnavailable,
    connect,
)
from followthrough.integrations.trackers import TrackerNotConfigured, Trackers
from tests.servers.jira_server import BOARD_NOT_FOUND, EPIC_LINK, JiraServer

USER, TOKEN = "followthrough@example.com", "jira-s3cret-token"
BOARD = 12
ROUTE = TicketRoute(
    tracker="jira",
    project="PAY",
    labels=["team-payments", "reliability"],
    board=BOARD,
    epic="REL-100",
    this_sprint=True,
)


@pytest.fixture(params=["Server", "Cloud"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraServer]:
    with JiraServer(
        users={USER: TOKEN},
        deployment_type=request.param,
        projects={"PM": "Postmortems", "PAY": "Payments", "REL": "Reliability"},
    ) as server:
        server.add_issue("REL-100", summary="Checkout at 99.95%", issue_type="Epic")
        server.add_board(BOARD, "Payments board")
        yield server


def _tracker(jira: JiraServer, **overrides: Any) -> JiraTracker:
    config = JiraConfig(url=jira.url, user=USER, token=TOKEN, project="PM", timeout=5.0)
    return JiraTracker(config, **overrides)


def _request(number: int = 1, route: TicketRoute | None = ROUTE) -> TicketRequest:
    return TicketRequest(
        action_item_id=f"postmortem-generic-INC-7-item-{number}",
        postmortem_id="postmortem-generic-INC-7",
        postmortem_title="Checkout 502s",
        summary=f"Alert on the checkout 5xx ratio ({number})",
        accepted_when="A page fires within 5 minutes at 2% 5xx",
        priority="P1",
        due=date(2027, 1, 15),
        owner="bob",
        owner_email="",
        route=route,
    )


def _comments(jira: JiraServer, key: str) -> list[str]:
    return [c["body"] for c in jira.issue(key)["fields"]["comment"]["comments"]]


def test_a_routed_ticket_lands_in_its_project_with_its_labels_epic_and_sprint(
    jira: JiraServer,
) -> None:
    jira.add_sprint(BOARD, "Sprint 40", state="closed")
    sprint = jira.add_sprint(BOARD, "Sprint 41", state="active")
    future = jira.add_sprint(BOARD, "Sprint 42", state="future")
    tracker = _tracker(jira)
    ref = tracker.ensure_ticket(_request())

    assert ref.key == "PAY-1"
    fields = jira.issue("PAY-1")["fields"]
    assert fields["project"]["key"] == "PAY"
    assert fields["labels"] == sorted(
        ["postmortem", "reliability", "ft-generic-INC-7-item-1", "team-payments"]
    )
    if jira.cloud:
        assert fields["parent"]["key"] == "REL-100"
    else:
        assert fields[EPIC_LINK] == "REL-100"
    assert jira.sprint_issues(sprint) == ["PAY-1"] and jira.sprint_issues(future) == []
    (listing,) = jira.calls("board_sprints")
    assert listing.path == f"/rest/agile/1.0/board/{BOARD}/sprint"
    assert listing.query["state"] == ["active"]
    (added,) = jira.calls("sprint_issues")
    assert added.body == {"issues": ["PAY-1"]}
    # No postmortem epic was made: the objective's epic is the ticket's parent.
    assert [k for k, i in jira.issues.items() if i["fields"]["issuetype"]["name"] == "Epic"] == [
        "REL-100"
    ]

    # A retry finds the ticket in its project (adding it to the sprint again changes nothing).
    assert tracker.ensure_ticket(_request()) == ref
    assert jira.count("create_issue") == 1 and len(jira.issues) == 2
    assert jira.sprint_issues(sprint) == ["PAY-1"]
    search = jira.calls("search_jql" if jira.cloud else "search")[-1]
    assert 'project = "PAY"' in str(search.query.get("jql"))


def test_without_an_active_sprint_the_ticket_waits_in_the_backlog_and_says_so(
    jira: JiraServer,
) -> None:
    jira.add_sprint(BOARD, "Sprint 42", state="future")
    tracker = _tracker(jira)
    ref = tracker.ensure_ticket(_request())
    assert jira.count("sprint_issues") == 0
    assert all(ref.key not in s["issues"] for s in jira.sprints.values())
    (said,) = _comments(jira, ref.key)
    assert f"board {BOARD} has no active sprint, so it waits in the backlog" in said
    assert tracker.ensure_ticket(_request()) == ref
    assert len(_comments(jira, ref.key)) == 1  # once, whatever the retries


def test_a_sprint_add_that_failed_is_done_by_the_retry_without_a_second_ticket(
    jira: JiraServer,
) -> None:
    sprint = jira.add_sprint(BOARD, "Sprint 41")
    tracker = _tracker(jira)
    jira.faults.fail_next(1, status=429, retry_after=3, path=r"/rest/agile/1\.0/sprint/.*")
    with pytest.raises(JiraUnavailable, match="Jira answered 429") as busy:
        tracker.ensure_ticket(_request())
    assert busy.value.retry_after == 3
    assert jira.sprint_issues(sprint) == []
    ref = tracker.ensure_ticket(_request())  # the activity's retry
    assert jira.sprint_issues(sprint) == [ref.key]
    assert jira.count("create_issue") == 1


def test_an_unknown_board_is_refused_in_jiras_words(jira: JiraServer) -> None:
    route = ROUTE.model_copy(update={"board": 99})
    with pytest.raises(JiraRefused, match="404") as refused:
        _tracker(jira).ensure_ticket(_request(route=route))
    assert BOARD_NOT_FOUND in refused.value.message


def test_an_epic_jira_refuses_leaves_the_ticket_without_it(jira: JiraServer) -> None:
    jira.add_sprint(BOARD)
    route = ROUTE.model_copy(update={"epic": "REL-404"})
    ref = _tracker(jira).ensure_ticket(_request(route=route))
    fields = jira.issue(ref.key)["fields"]
    assert fields.get("parent") is None and fields.get(EPIC_LINK) is None
    assert jira.count("create_issue") == 2  # refused once for the epic, then made without it


def test_no_route_is_the_configured_project_as_before(jira: JiraServer) -> None:
    ref = _tracker(jira).ensure_ticket(_request(route=None))
    assert ref.key == "PM-1"
    assert jira.count("board_sprints") == 0


def test_done_tickets_include_the_routed_projects(jira: JiraServer) -> None:
    tracker = _tracker(jira, also_projects=["PAY"])
    routed = tracker.ensure_ticket(_request(1, ROUTE.model_copy(update={"this_sprint": False})))
    plain = tracker.ensure_ticket(_request(2, route=None))
    for ref in (routed, plain):
        jira.set_status(ref.key, "Done", resolution="Fixed")
    assert [t.key for t in tracker.done_tickets("-1d")] == ["PAY-1", "PM-1"]


# -- the Agile endpoints, as the library pages them ------------------------------------------------


def test_the_board_sprint_listing_pages_refuses_and_filters(jira: JiraServer) -> None:
    for n in range(120):
        jira.add_sprint(BOARD, f"Sprint {n}", state="closed")
    active = jira.add_sprint(BOARD, "Now")
    client: JIRA = connect(jira.url, USER, TOKEN, timeout=5.0)
    every = client.sprints(BOARD, maxResults=0)  # the library follows isLast page by page
    assert len(every) == 121
    assert jira.count("board_sprints") == 3
    pages = [(c.query.get("startAt"), c.query.get("maxResults")) for c in jira.calls()]
    assert pages[-1] == (["100"], ["50"])
    assert [s.id for s in client.sprints(BOARD, state="active")] == [active]
    jira.add_board(7, "Kanban", type="kanban")
    with pytest.raises(JIRAError) as kanban:
        client.sprints(7, state="active")
    assert kanban.value.status_code == 400 and "does not support sprints" in str(kanban.value.text)
    with pytest.raises(JIRAError) as unknown:
        client.sprints(404, state="active")
    assert unknown.value.status_code == 404
    with pytest.raises(JIRAError) as bad_state:
        client.sprints(BOARD, state="running")
    assert bad_state.value.status_code == 400
    closed = next(s for s, v in jira.sprints.items() if v["state"] == "closed")
    jira.add_issue("PAY-9")
    with pytest.raises(JIRAError) as into_closed:
        client.add_issues_to_sprint(closed, ["PAY-9"])
    assert into_closed.value.status_code == 400
    with pytest.raises(JIRAError) as too_many:
        client.add_issues_to_sprint(active, ["PAY-9"] * 51)
    assert too_many.value.status_code == 400
    client.close()  # type: ignore[no-untyped-call]


# -- the activities: the tracker a route names -----------------------------------------------------


async def test_a_route_to_a_tracker_that_is_not_configured_is_refused(jira: JiraServer) -> None:
    activities = TicketActivities(Trackers({"jira": _tracker(jira)}))
    github = TicketRoute(tracker="github", project="acme/payments")
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.open_ticket, _request(route=github))
    assert refused.value.type == "TrackerNotConfigured" and refused.value.non_retryable
    assert "routes this ticket to github (project acme/payments)" in refused.value.message
    assert len(jira.issues) == 1  # only the epic: nothing was created

    # Without Jira, a team routed to a Jira project is refused too; an unrouted item (or one
    # with only an objective's epic) keeps the built-in tracker, as before routing.
    none = TicketActivities(Trackers())
    with pytest.raises(ApplicationError, match="no jira tracker is configured"):
        await ActivityEnvironment().run(none.open_ticket, _request())
    epic_only = TicketRoute(epic="REL-100")
    assert await ActivityEnvironment().run(none.open_ticket, _request(route=epic_only)) is None
    with pytest.raises(TrackerNotConfigured):
        Trackers().for_route(TicketRoute(project="PAY"))


async def test_comments_and_due_dates_go_to_the_tracker_their_key_names(jira: JiraServer) -> None:
    activities = TicketActivities(Trackers({"jira": _tracker(jira)}))
    env = ActivityEnvironment()
    ref = await env.run(activities.open_ticket, _request(route=None))
    assert ref is not None
    await env.run(activities.comment_ticket, TicketComment(key=ref.key, dedupe_key="a", text="Hi"))
    await env.run(activities.update_ticket_due, TicketDue(key=ref.key, due=date(2027, 2, 1)))
    assert jira.issue(ref.key)["fields"]["duedate"] == "2027-02-01"
    before = len(jira.requests)
    # A GitHub issue's key, with no GitHub configured: nothing to do, and Jira is not asked.
    github = "acme/payments#12"
    await env.run(activities.comment_ticket, TicketComment(key=github, dedupe_key="a", text="x"))
    await env.run(activities.update_ticket_due, TicketDue(key=github, due=date(2027, 2, 1)))
    assert len(jira.requests) == before
