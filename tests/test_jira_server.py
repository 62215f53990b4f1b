"""tests/servers/jira_server.py, proved with the real `jira` library over HTTP on loopback, in
Server and Cloud modes: what the library sends, what it makes of the answers, and the fault modes.

What the library does (jira 3.10.x) is summed up in /work/shared/reference/jira-client-contract.md;
these tests pin the parts our integration leans on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from jira import JIRA, JIRAError

from tests.servers.jira_server import EPIC_LINK, NOT_SETTABLE, JiraServer, JqlError, parse_jql

USER, TOKEN = "bot@example.com", "bot-token"
PEOPLE: dict[str, dict[str, Any]] = {
    "alice": {"displayName": "Alice Smith", "emailAddress": "alice@example.com"},
    "bob": {"displayName": "Bob Jones", "emailAddress": "bob@example.com", "active": False},
}
TASK = {"project": {"key": "PM"}, "issuetype": {"name": "Task"}, "summary": "Add a canary stage"}


@pytest.fixture(params=["Server", "Cloud"])
def jira(request: pytest.FixtureRequest) -> Iterator[JiraServer]:
    with JiraServer(users={USER: TOKEN}, deployment_type=request.param, people=PEOPLE) as server:
        yield server


@pytest.fixture
def server_jira() -> Iterator[JiraServer]:
    with JiraServer(users={USER: TOKEN}, people=PEOPLE) as server:
        yield server


@pytest.fixture
def cloud_jira() -> Iterator[JiraServer]:
    with JiraServer(users={USER: TOKEN}, deployment_type="Cloud", people=PEOPLE) as server:
        yield server


def connect(jira: JiraServer, **options: Any) -> JIRA:
    """The library as our integration will use it: no retries unless a test asks, a timeout."""
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", 5)
    return JIRA(jira.url, basic_auth=(USER, TOKEN), **options)


def user_ref(jira: JiraServer, name: str) -> dict[str, Any]:
    """How this deployment names a user in a field: {"name"} on Server, {"accountId"} on Cloud."""
    person = jira.person(name)
    assert person is not None
    return {"accountId": person["accountId"]} if jira.cloud else {"name": name}


def raw(jira: JiraServer, method: str, path: str, body: Any = None) -> requests.Response:
    """A request without the library (for shapes the library hides)."""
    return requests.request(method, jira.url + path, json=body, auth=(USER, TOKEN), timeout=5)


def raw_fields(issue: Any) -> dict[str, Any]:
    """An issue's fields as Jira sent them (the library's attributes are loosely typed)."""
    fields: dict[str, Any] = issue.raw["fields"]
    return fields


def jira_errors(error: JIRAError) -> dict[str, Any]:
    assert error.response is not None
    body: dict[str, Any] = error.response.json()
    return body


# -- the instance -------------------------------------------------------------------------------


def test_server_info_tells_the_library_which_deployment(jira: JiraServer) -> None:
    client = connect(jira)
    assert client._is_cloud == jira.cloud
    assert [(r.method, r.path, r.user) for r in jira.requests] == [
        ("GET", "/rest/api/2/serverInfo", USER)
    ]
    assert client.server_info()["deploymentType"] == jira.deployment_type
    # serverInfo is public; wrong credentials are not, anywhere.
    assert requests.get(f"{jira.url}/rest/api/2/serverInfo", timeout=5).status_code == 200
    with pytest.raises(JIRAError) as refused:
        JIRA(jira.url, basic_auth=(USER, "wrong"), max_retries=0)
    assert refused.value.status_code == 401
    assert raw(jira, "DELETE", "/rest/api/2/issue").status_code == 405
    assert raw(jira, "GET", "/rest/api/2/nothing").status_code == 404
    assert client.myself()["displayName"] == "Bot"


# -- issues -------------------------------------------------------------------------------------


def test_create_issue_with_every_field_then_read_it(jira: JiraServer) -> None:
    client = connect(jira)
    jira.add_issue("PM-7")  # keys go on from the highest in the project
    before = len(jira.requests)
    issue = client.create_issue(
        fields={
            **TASK,
            "description": "Roll out to 5% first.\nThen everyone.",
            "labels": ["postmortem", "followthrough", "postmortem"],
            "priority": {"name": "High"},
            "duedate": "2026-12-01",
            "assignee": user_ref(jira, "alice"),
        }
    )
    assert issue.key == "PM-8"
    assert [(r.method, r.path) for r in jira.requests[before:]] == [
        ("POST", "/rest/api/2/issue"),
        ("GET", "/rest/api/2/issue/PM-8"),
    ]
    fields = raw_fields(issue)
    assert fields["summary"] == "Add a canary stage"
    assert fields["description"] == "Roll out to 5% first.\nThen everyone."
    assert fields["labels"] == ["followthrough", "postmortem"]  # a set, sorted, as Jira keeps it
    assert (fields["priority"]["name"], fields["duedate"]) == ("High", "2026-12-01")
    assert fields["assignee"]["displayName"] == "Alice Smith"
    assert fields["reporter"]["displayName"] == "Bot"  # whoever called
    assert fields["status"]["name"] == "To Do"
    assert fields["status"]["statusCategory"]["key"] == "new"
    assert fields["resolution"] is None and fields["resolutiondate"] is None
    assert fields["created"] == fields["updated"]
    assert (fields["project"]["key"], fields["issuetype"]["name"]) == ("PM", "Task")
    # The assignee in each deployment's terms.
    assert {k: fields["assignee"][k] for k in user_ref(jira, "alice")} == user_ref(jira, "alice")

    bare = client.create_issue(fields=TASK, prefetch=False)  # the 201 reply itself
    assert set(bare.raw) == {"id", "key", "self"} and bare.key == "PM-9"
    assert bare.raw["self"] == f"{jira.url}/rest/api/2/issue/{bare.id}"
    assert client.issue("PM-9").fields.priority.name == "Medium"  # Jira's default
    assert jira.count("create_issue") == 2


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({**TASK, "project": {"key": "NOPE"}}, {"project": "valid project is required"}),
        ({**TASK, "issuetype": {"name": "Saga"}}, {"issuetype": "valid issue type is required"}),
        ({**TASK, "summary": ""}, {"summary": "You must specify a summary of the issue."}),
        (
            {**TASK, "priority": {"name": "Urgent"}},
            {"priority": "Priority name 'Urgent' is not valid"},
        ),
        ({**TASK, "duedate": "1/12/2026"}, {"duedate": "Error parsing date string: 1/12/2026"}),
        (
            {**TASK, "status": {"name": "Done"}},
            {"status": NOT_SETTABLE.format("status")},
        ),
        (
            {**TASK, "labels": ["two words"]},
            {"labels": "The label 'two words' contains spaces which is invalid."},
        ),
    ],
)
def test_create_refusals_are_jiras_400s(
    server_jira: JiraServer, fields: dict[str, Any], errors: dict[str, str]
) -> None:
    with pytest.raises(JIRAError) as refused:
        connect(server_jira).create_issue(fields=fields)
    assert refused.value.status_code == 400
    assert jira_errors(refused.value) == {"errorMessages": [], "errors": errors}
    assert server_jira.issues == {}


def test_users_in_fields_are_names_on_server_and_account_ids_on_cloud(jira: JiraServer) -> None:
    client = connect(jira)
    wrong = {"accountId": "abc"} if not jira.cloud else {"name": "alice"}
    for assignee, expected in [
        (wrong, "Specify a valid value for assignee"),
        (
            {"accountId": "nobody"} if jira.cloud else {"name": "nobody"},
            "The user with account ID 'nobody' does not exist."
            if jira.cloud
            else "User 'nobody' does not exist.",
        ),
        (user_ref(jira, "bob"), "User 'Bob Jones' cannot be assigned issues."),  # inactive
    ]:
        with pytest.raises(JIRAError) as refused:
            client.create_issue(fields={**TASK, "assignee": assignee})
        assert jira_errors(refused.value)["errors"]["assignee"].startswith(expected)


def test_update_fields_and_labels(jira: JiraServer) -> None:
    client = connect(jira)
    issue = client.create_issue(fields={**TASK, "labels": ["a", "b"]})
    before = len(jira.requests)
    issue.update(fields={"summary": "Canary for payments", "duedate": "2026-12-24"})
    # The library PUTs to the issue's self (its id) and reads it back.
    assert [(r.method, r.path) for r in jira.requests[before:]] == [
        ("PUT", f"/rest/api/2/issue/{issue.id}"),
        ("GET", f"/rest/api/2/issue/{issue.id}"),
    ]
    assert jira.requests[before].body == {
        "fields": {"summary": "Canary for payments", "duedate": "2026-12-24"},
        "update": {},
    }
    assert (issue.fields.summary, issue.fields.duedate) == ("Canary for payments", "2026-12-24")
    issue.update(update={"labels": [{"add": "c"}, {"remove": "a"}]}, priority={"name": "Low"})
    assert (issue.fields.labels, issue.fields.priority.name) == (["b", "c"], "Low")
    issue.update(fields={"duedate": None, "assignee": user_ref(jira, "alice")})
    assert raw_fields(issue)["duedate"] is None
    assert raw_fields(issue)["assignee"]["displayName"] == "Alice Smith"
    assert issue.fields.updated >= issue.fields.created
    with pytest.raises(JIRAError) as refused:
        issue.update(fields={"resolution": {"name": "Done"}})  # only a transition sets it
    assert jira_errors(refused.value)["errors"] == {
        "resolution": "Field 'resolution' cannot be set. It is not on the appropriate screen, "
        "or unknown."
    }
    with pytest.raises(JIRAError) as missing:
        client.issue("PM-404")
    assert missing.value.status_code == 404


def test_epics_are_parent_on_cloud_and_epic_link_on_server(jira: JiraServer) -> None:
    client = connect(jira)
    epic = client.create_issue(fields={**TASK, "issuetype": {"name": "Epic"}, "summary": "Ep"})
    names = {f["name"]: f["id"] for f in client.fields()}
    if jira.cloud:
        assert "Epic Link" not in names
        child = client.create_issue(fields={**TASK, "parent": {"key": epic.key}})
        assert (child.fields.parent.key, child.fields.parent.fields.summary) == (epic.key, "Ep")
        with pytest.raises(JIRAError) as refused:
            client.create_issue(fields={**TASK, EPIC_LINK: epic.key})
        assert EPIC_LINK in jira_errors(refused.value)["errors"]
    else:
        assert names["Epic Link"] == EPIC_LINK
        child = client.create_issue(fields={**TASK, EPIC_LINK: epic.key})
        assert child.raw["fields"][EPIC_LINK] == epic.key
        with pytest.raises(JIRAError) as refused:
            client.create_issue(fields={**TASK, "parent": {"key": epic.key}})
        assert "not a sub-task" in jira_errors(refused.value)["errors"]["parent"]
        sub = client.create_issue(
            fields={**TASK, "issuetype": {"name": "Sub-task"}, "parent": {"key": child.key}}
        )
        assert sub.fields.parent.key == child.key


# -- comments, links ----------------------------------------------------------------------------


def test_comments(jira: JiraServer) -> None:
    client = connect(jira)
    issue = client.create_issue(fields=TASK)
    comment = client.add_comment(issue.key, "Reopened: the check failed.")
    assert jira.requests[-1].body == {"body": "Reopened: the check failed."}
    assert (comment.body, comment.author.displayName) == ("Reopened: the check failed.", "Bot")
    client.add_comment(issue, "Verified.")
    assert [c.body for c in client.comments(issue.key)] == [
        "Reopened: the check failed.",
        "Verified.",
    ]
    page = raw(jira, "GET", f"/rest/api/2/issue/{issue.key}/comment?startAt=1&maxResults=1")
    assert page.json()["total"] == 2 and [c["body"] for c in page.json()["comments"]] == [
        "Verified."
    ]
    assert client.comment(issue.key, comment.id).body == "Reopened: the check failed."
    assert raw_fields(client.issue(issue.key))["comment"]["total"] == 2
    # v3 wants Atlassian Document Format: a plain string is refused, a document is fine.
    refused = raw(jira, "POST", f"/rest/api/3/issue/{issue.key}/comment", {"body": "plain"})
    assert refused.status_code == 400
    assert "Atlassian Document" in refused.json()["errors"]["comment"]
    document = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": []}]}
    document["content"][0]["content"] = [{"type": "text", "text": "Rich."}]  # type: ignore[index]
    rich = raw(jira, "POST", f"/rest/api/3/issue/{issue.key}/comment", {"body": document})
    assert rich.status_code == 201 and rich.json()["body"] == document
    assert client.comments(issue.key)[-1].body == "Rich."  # v2 shows it as text
    empty = raw(jira, "POST", f"/rest/api/2/issue/{issue.key}/comment", {"body": " "})
    assert empty.json()["errors"] == {"comment": "Comment body can not be empty!"}


def test_remote_links(jira: JiraServer) -> None:
    client = connect(jira)
    issue = client.create_issue(fields=TASK)
    before = len(jira.requests)
    link = client.add_simple_link(issue.key, {"url": "https://pm.example/1", "title": "PM-1"})
    assert [(r.method, r.path) for r in jira.requests[before:]] == [
        ("POST", f"/rest/api/2/issue/{issue.key}/remotelink")
    ]
    assert link.raw == {
        "id": link.id,
        "self": f"{jira.url}/rest/api/2/issue/{issue.key}/remotelink/{link.id}",
    }
    # add_remote_link lists application links first; a non-admin gets a 401 there: a warning.
    with pytest.warns(Warning, match="Unable to gather applicationlinks"):
        first = client.add_remote_link(
            issue.key, {"url": "https://pm.example/2", "title": "v1"}, globalId="followthrough:2"
        )
    with pytest.warns(Warning, match="Unable to gather applicationlinks"):
        again = client.add_remote_link(
            issue.key, {"url": "https://pm.example/2", "title": "v2"}, globalId="followthrough:2"
        )
    assert again.id == first.id  # the same globalId updates the link
    assert jira.count("application_links") == 2
    links = client.remote_links(issue.key)
    assert [(x.id, x.object.title) for x in links] == [(link.id, "PM-1"), (first.id, "v2")]
    assert links[1].globalId == "followthrough:2"
    assert raw(jira, "POST", f"/rest/api/2/issue/{issue.key}/remotelink", {}).status_code == 400

    jira.admins.add(USER)
    applinks = raw(jira, "GET", "/rest/applinks/latest/listApplicationlinks")
    assert applinks.json() == {"list": []}


# -- transitions --------------------------------------------------------------------------------


def test_transitions_set_and_clear_the_resolution(jira: JiraServer) -> None:
    client = connect(jira)
    issue = client.create_issue(fields=TASK)
    assert [(t["id"], t["name"]) for t in client.transitions(issue)] == [
        ("21", "In Progress"),
        ("31", "Done"),
    ]
    client.transition_issue(issue, "In Progress")
    assert [t["name"] for t in client.transitions(issue)] == ["To Do", "Done"]
    before = len(jira.requests)
    client.transition_issue(issue.key, "Done")
    assert [(r.method, r.path) for r in jira.requests[before:]] == [
        ("GET", f"/rest/api/2/issue/{issue.key}/transitions"),
        ("POST", f"/rest/api/2/issue/{issue.key}/transitions"),
    ]
    assert jira.requests[-1].body == {"transition": {"id": "31"}, "fields": {}}
    done = raw_fields(client.issue(issue.key))
    assert (done["status"]["name"], done["status"]["statusCategory"]["key"]) == ("Done", "done")
    assert done["resolution"]["name"] == "Done" and done["resolutiondate"] is not None

    assert [t["name"] for t in client.transitions(issue)] == ["Reopen"]
    client.transition_issue(issue, "Reopen", comment="The check failed again.")
    reopened = raw_fields(client.issue(issue.key))
    assert (reopened["status"]["name"], reopened["resolution"]) == ("To Do", None)
    assert reopened["resolutiondate"] is None
    assert reopened["comment"]["comments"][-1]["body"] == "The check failed again."

    # An id straight away (sent as an int) and a resolution of our choosing.
    client.transition_issue(issue, 31, fields={"resolution": {"name": "Fixed"}})
    assert jira.requests[-1].body["transition"] == {"id": 31}
    assert raw_fields(client.issue(issue.key))["resolution"]["name"] == "Fixed"
    with pytest.raises(JIRAError) as refused:
        client.transition_issue(issue, 21)  # not from Done
    assert jira_errors(refused.value)["errorMessages"] == [
        "Transition id '21' is not valid for this issue."
    ]
    with pytest.raises(JIRAError, match="Invalid transition name"):
        client.transition_issue(issue, "Close")  # the library's own check


# -- search -------------------------------------------------------------------------------------


def _many(jira: JiraServer, count: int = 120) -> None:
    for number in range(1, count + 1):
        jira.add_issue(f"OPS-{number}", labels=["followthrough"] if number % 2 else [])


def test_search_pages_with_start_at_on_server(server_jira: JiraServer) -> None:
    _many(server_jira)
    client = connect(server_jira)
    first = client.search_issues("project = OPS ORDER BY key", maxResults=50)
    assert (len(first), first.total, first.startAt) == (50, 120, 0)
    assert (first[0].key, first[-1].key) == ("OPS-1", "OPS-50")
    request = server_jira.calls("search")[-1]
    assert request.path == "/rest/api/2/search"
    assert request.query == {
        "jql": ["project = OPS ORDER BY key"],
        "startAt": ["0"],
        "validateQuery": ["True"],
        "fields": ["*all"],
        "maxResults": ["50"],
    }
    assert server_jira.count("fields") == 1  # the field list, fetched lazily, at the first search
    last = client.search_issues("project = OPS ORDER BY key", startAt=100, maxResults=50)
    assert [i.key for i in last] == [f"OPS-{n}" for n in range(101, 121)]

    before = server_jira.count("search")
    everything = client.search_issues("project = OPS ORDER BY key", maxResults=False)
    assert len(everything) == 120 and server_jira.count("search") - before == 2  # 100 + 20

    capped = client.search_issues("project = OPS", maxResults=500, json_result=True)
    assert isinstance(capped, dict)
    assert (capped["maxResults"], len(capped["issues"])) == (100, 100)
    assert capped["issues"][0]["key"] == "OPS-120"  # no ORDER BY: newest first
    posted = client.search_issues("labels = followthrough ORDER BY key", use_post=True)
    assert server_jira.calls("search")[-1].method == "POST"
    assert first.total == 120 and posted.total == 60
    assert raw(server_jira, "GET", "/rest/api/2/search/jql?jql=project%3DOPS").status_code == 404


def test_search_pages_with_next_page_token_on_cloud(cloud_jira: JiraServer) -> None:
    _many(cloud_jira)
    client = connect(cloud_jira)
    # search_issues goes to /search/jql on Cloud, one page of maxResults; no total.
    first = client.search_issues("project = OPS ORDER BY key", maxResults=50)
    assert len(first) == 50 and first.nextPageToken
    request = cloud_jira.calls("search_jql")[-1]
    assert (request.path, request.query["maxResults"]) == ("/rest/api/2/search/jql", ["50"])
    second = client.enhanced_search_issues(
        "project = OPS ORDER BY key", nextPageToken=first.nextPageToken, maxResults=50
    )
    assert (second[0].key, second.nextPageToken is not None) == ("OPS-51", True)
    third = client.enhanced_search_issues(
        "project = OPS ORDER BY key", nextPageToken=second.nextPageToken, maxResults=50
    )
    assert (len(third), third.nextPageToken) == (20, None)  # the library keeps no isLast
    assert third.isLast is None and cloud_jira.calls("search_jql")[-1].route == "search_jql"

    before = cloud_jira.count("search_jql")
    everything = client.search_issues("project = OPS ORDER BY key", maxResults=0)
    assert [i.key for i in everything] == [f"OPS-{n}" for n in range(1, 121)]
    assert cloud_jira.count("search_jql") - before == 2  # pages of 100, following the token

    posted = client.enhanced_search_issues("key in (OPS-1, OPS-2)", use_post=True)
    assert [i.key for i in posted] == ["OPS-2", "OPS-1"]  # no ORDER BY: newest first
    assert cloud_jira.calls("search_jql")[-1].method == "POST"
    raw_page = client.enhanced_search_issues("labels = followthrough", json_result=True)
    assert isinstance(raw_page, dict)
    assert set(raw_page) == {"issues", "nextPageToken", "isLast"} and not raw_page["isLast"]
    ids_only = raw(cloud_jira, "GET", "/rest/api/2/search/jql?jql=key%3DOPS-1").json()
    assert ids_only == {"issues": [{"id": cloud_jira.issues["OPS-1"]["id"]}], "isLast": True}

    with pytest.raises(JIRAError, match="deprecated in Jira Cloud"):
        client.search_issues("project = OPS", startAt=50)  # the library refuses, no request
    with pytest.raises(JIRAError) as gone:
        client._get_json("search", params={"jql": "project = OPS"})
    assert gone.value.status_code == 410
    assert "CHANGE-2046" in jira_errors(gone.value)["errorMessages"][0]
    with pytest.raises(JIRAError) as unbounded:
        client.search_issues("ORDER BY key")
    assert "Unbounded JQL" in jira_errors(unbounded.value)["errorMessages"][0]
    bad_token = raw(cloud_jira, "GET", "/rest/api/2/search/jql?jql=project%3DOPS&nextPageToken=x")
    assert bad_token.status_code == 400


def test_the_jql_we_serve(server_jira: JiraServer) -> None:
    now = datetime(2026, 11, 22, 16, 20, tzinfo=UTC)
    server_jira.clock = lambda: now
    server_jira.time_zone = "Europe/Berlin"  # the Jira user's zone: absolute dates are local
    add = server_jira.add_issue
    add("PM-1", labels=["postmortem"], updated=now - timedelta(hours=2))
    add("PM-2", labels=["postmortem", "db"], status="Done", resolution="Fixed")
    add("PM-3", labels=["db"], status="In Progress", updated=now - timedelta(minutes=10))
    add("PM-4", status="Won't Do", resolution="Won't Do", updated=now - timedelta(days=3))
    add("OPS-1", labels=["postmortem"])
    client = connect(server_jira)

    def keys(jql: str) -> list[str]:
        return [issue.key for issue in client.search_issues(jql, maxResults=100)]

    assert keys("project = PM AND labels = postmortem ORDER BY key") == ["PM-1", "PM-2"]
    assert keys("project = pm and labels in (db, postmortem) order by key desc") == [
        "PM-3",
        "PM-2",
        "PM-1",
    ]
    assert keys('project = "PM" AND statusCategory = Done ORDER BY key') == ["PM-2", "PM-4"]
    assert keys("project = PM AND statusCategory != Done ORDER BY key") == ["PM-1", "PM-3"]
    assert keys('statusCategory = "In Progress"') == ["PM-3"]
    assert keys("status in (Done, 'To Do') AND project = PM ORDER BY key") == ["PM-1", "PM-2"]
    assert keys("resolution = Unresolved AND project = PM ORDER BY key") == ["PM-1", "PM-3"]
    assert keys("key in (PM-1, PM-3, OPS-1) ORDER BY key") == ["OPS-1", "PM-1", "PM-3"]
    assert keys("project = PM AND labels is EMPTY") == ["PM-4"]
    assert keys("project = PM AND updated >= -15m ORDER BY key") == ["PM-2", "PM-3"]
    assert keys('project = PM AND updated >= "-1d" ORDER BY key') == ["PM-1", "PM-2", "PM-3"]
    # 16:30 in Berlin is 15:30 UTC: PM-2 (16:20 UTC) and PM-3 (16:10) are later, PM-1 (14:20)
    # is not; read as UTC, nothing would be.
    assert keys('project = PM AND updated >= "2026-11-22 16:30" ORDER BY key') == [
        "PM-2",
        "PM-3",
    ]
    assert keys("project = PM AND updated < 2026/11/20 ORDER BY key") == ["PM-4"]

    for jql, said in [
        ("project = PM OR labels = db", "does not support OR"),
        ("assignee = alice", "does not support searching on 'assignee'"),
        ("assignee = currentUser()", "does not support the function currentUser()"),
        ("summary ~ canary", "does not support 'summary ~' (text searches)"),
        ("(project = PM)", "does not support parentheses"),
        ("NOT project = PM", "does not support NOT"),
        ("status WAS Done", "does not support 'WAS'"),
        ("labels != db", "does not support 'labels !='"),
        ("project = PM ORDER BY priority", "does not support ORDER BY priority"),
        ("flavour = sour", "Field 'flavour' does not exist or you do not have permission"),
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        ("key in (PM-1, PM-99)", "An issue with key 'PM-99' does not exist for field 'key'."),
        ("updated >= yesterday", "Date value 'yesterday' for field 'updated' is invalid."),
        ("project = PM labels = db", "Expecting either 'OR' or 'AND' but got 'labels'."),
    ]:
        with pytest.raises(JIRAError) as refused:
            client.search_issues(jql)
        assert refused.value.status_code == 400, jql
        assert said in jira_errors(refused.value)["errorMessages"][0], jql

    # validateQuery=warn: values that do not exist are warnings, as in Jira.
    warn: Any = "warn"  # the library's type says bool; Jira takes strict, warn, none
    warned = client.search_issues("key in (PM-1, PM-99)", validate_query=warn, json_result=True)
    assert [i["key"] for i in warned["issues"]] == ["PM-1"]
    assert warned["warningMessages"] == [
        "An issue with key 'PM-99' does not exist for field 'key'."
    ]
    with pytest.raises(JqlError, match="does not support OR"):
        parse_jql("a = b or c = d")


# -- users --------------------------------------------------------------------------------------


def test_user_search_and_assignment(jira: JiraServer) -> None:
    client = connect(jira)
    issue = client.create_issue(fields=TASK)

    def search(text: str, inactive: bool = False) -> list[str]:
        if jira.cloud:  # the library sends both parameters when given both
            found = client.search_users(query=text, includeInactive=inactive)
        else:
            found = client.search_users(user=text, includeInactive=inactive)
        return [user.raw["displayName"] for user in found]

    assert search("ali") == ["Alice Smith"]
    assert jira.calls("user_search")[-1].query["query" if jira.cloud else "username"] == ["ali"]
    assert search("smith") == ["Alice Smith"]  # any word of the display name
    assert search("jones") == []  # inactive
    assert search("bob", inactive=True) == ["Bob Jones"]

    before = len(jira.requests)
    client.assign_issue(issue.key, "alice")  # a user search first, then the assignee PUT
    put = jira.requests[-1]
    assert [r.route for r in jira.requests[before:]] == ["user_search", "assign"]
    assert put.path == f"/rest/api/latest/issue/{issue.key}/assignee"
    assert put.body == user_ref(jira, "alice")
    assert raw_fields(client.issue(issue.key))["assignee"]["displayName"] == "Alice Smith"
    client.assign_issue(issue.key, None)
    assert raw_fields(client.issue(issue.key))["assignee"] is None

    with pytest.raises(JIRAError, match="No matching user found"):
        client.assign_issue(issue.key, "zed")  # the library searched, found no one, sent nothing
    assert jira.requests[-1].route == "user_search"
    unknown = {"accountId": "nobody"} if jira.cloud else {"name": "nobody"}
    refused = raw(jira, "PUT", f"/rest/api/2/issue/{issue.key}/assignee", unknown)
    assert refused.status_code == 400 and "assignee" in refused.json()["errors"]
    # Each deployment refuses the other's way to search.
    wrong = "username=alice" if jira.cloud else "query=alice"
    assert raw(jira, "GET", f"/rest/api/2/user/search?{wrong}").status_code == 400
    alice = jira.person("alice") or {}
    assert client.user(alice["accountId" if jira.cloud else "name"]).displayName == "Alice Smith"


# -- faults -------------------------------------------------------------------------------------


def test_429_with_retry_after_is_retried_by_the_library(server_jira: JiraServer) -> None:
    client = connect(server_jira, max_retries=1)
    client._session.max_retry_delay = 1  # waits min(this, 2 * Retry-After) * U(0.5, 1)
    server_jira.faults.fail_next(1, status=429, retry_after=1, method="POST", path=r".*/issue")
    started = time.monotonic()
    issue = client.create_issue(fields=TASK, prefetch=False)
    assert 0.4 < time.monotonic() - started < 5
    creates = server_jira.calls("create_issue")
    assert [r.fault for r in creates] == ["429", None]  # two POSTs, one issue
    assert list(server_jira.issues) == [issue.key]
    # Without retries the 429 is the caller's, with Jira's headers.
    with pytest.raises(JIRAError) as limited:
        server_jira.faults.fail_next(status=429, retry_after=30)
        connect(server_jira).issue(issue.key)
    assert limited.value.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "30"  # type: ignore[union-attr]


def test_503_without_retry_after_is_an_error_with_it_a_retry(server_jira: JiraServer) -> None:
    server_jira.add_issue("PM-1")
    client = connect(server_jira, max_retries=3)
    client._session.max_retry_delay = 1
    server_jira.faults.fail_next(1, status=503)
    with pytest.raises(JIRAError) as unavailable:
        client.issue("PM-1")
    assert unavailable.value.status_code == 503
    assert server_jira.count("get_issue") == 1  # not retried
    server_jira.faults.fail_next(1, status=503, retry_after=1)
    assert client.issue("PM-1").key == "PM-1"
    assert [r.fault for r in server_jira.calls("get_issue")] == ["503", "503", None]
    # A Retry-After that is an HTTP date crashes the library (int()): a ValueError.
    server_jira.faults.fail_next(1, status=503, retry_after="Wed, 21 Oct 2026 07:28:00 GMT")
    with pytest.raises(ValueError, match="invalid literal for int"):
        client.issue("PM-1")


def test_bad_credentials_are_401s_everywhere(server_jira: JiraServer) -> None:
    client = connect(server_jira)
    with server_jira.faults.bad_credentials():
        with pytest.raises(JIRAError) as refused:
            client.create_issue(fields=TASK)
        assert refused.value.status_code == 401
        assert refused.value.response.headers["X-Seraph-LoginReason"] == "AUTHENTICATED_FAILED"  # type: ignore[union-attr]
        with pytest.raises(JIRAError) as at_start:
            connect(server_jira)
        assert at_start.value.status_code == 401
    assert server_jira.issues == {}
    assert client.create_issue(fields=TASK).key == "PM-1"  # the fault is gone


def test_slow_replies_hit_the_client_timeout(server_jira: JiraServer) -> None:
    server_jira.add_issue("PM-1")
    client = connect(server_jira, timeout=0.3, max_retries=3)
    with server_jira.faults.slow(2, path=r"/rest/api/2/issue/PM-1"):
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            client.issue("PM-1")
        assert time.monotonic() - started < 1.5
        assert server_jira.count("get_issue") == 1  # a timeout is not retried
        assert client.search_issues("key = PM-1")[0].key == "PM-1"  # other paths are fine
    # Served, then slow to answer: the issue exists although the client saw a timeout.
    slow_create = server_jira.faults.slow(1, method="POST", path=r".*/issue", after_serving=True)
    with slow_create, pytest.raises(requests.exceptions.ReadTimeout):
        client.create_issue(fields=TASK)
    assert sorted(server_jira.issues) == ["PM-1", "PM-2"]


def test_dropped_connections_and_a_server_that_is_down(server_jira: JiraServer) -> None:
    server_jira.add_issue("PM-1")
    client = connect(server_jira)
    dropped = pytest.raises(requests.exceptions.ConnectionError, match="without response")
    with server_jira.faults.drop(1), dropped:
        client.issue("PM-1")
    assert client.issue("PM-1").key == "PM-1"

    url = server_jira.url
    server_jira.down()
    with pytest.raises(requests.exceptions.ConnectionError, match="Connection refused"):
        client.issue("PM-1")
    server_jira.up()
    assert server_jira.url == url and client.issue("PM-1").key == "PM-1"


def test_faults_limited_to_a_route_and_counted(jira: JiraServer) -> None:
    client = connect(jira)
    jira.add_issue("PM-1")
    with jira.faults.fail_always(status=503, method="POST", path=r"/rest/api/2/issue") as fault:
        for _ in range(2):
            with pytest.raises(JIRAError):
                client.create_issue(fields=TASK)
        assert client.issue("PM-1").key == "PM-1"  # GETs are untouched
        assert fault.hits == 2
    assert client.create_issue(fields=TASK).key == "PM-2"
    assert jira.count("create_issue") == 3
    assert jira.count(method="POST", path=r"/rest/api/2/issue") == 3
    assert [r.fault for r in jira.calls("create_issue")] == ["503", "503", None]
    jira.faults.fail_next(2, status=500)
    jira.faults.clear()
    assert jira.faults.active == []
