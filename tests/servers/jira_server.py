"""A small Jira-compatible REST server for the tests, on 127.0.0.1 (a free port, a thread).

    with JiraServer(users={"bot@example.com": "s3cret"}) as jira:
        jira.add_issue("PM-1", summary="Add a canary stage")        # To Do, unresolved
        jira.set_status("PM-1", "Done", resolution="Fixed")
        ... JIRA(jira.url, basic_auth=("bot@example.com", "s3cret")).issue("PM-1") ...
        assert jira.requests[-1].path == "/rest/api/2/issue/PM-1"

No usable open-source Jira emulator exists (see /work/shared/reference/jira-client-contract.md),
so this serves what our code calls, in the shapes Atlassian documents for REST v2, over real HTTP
so that the real `jira` library can talk to it. Everything is under /rest/api/2, /rest/api/3 and
/rest/api/latest; v3 differs only where Jira's does: rich text (description, comment bodies) is
Atlassian Document Format there, a plain string is refused.

The instance
- `deployment_type="Server"` (default) or `"Cloud"`: serverInfo says so, and the `jira` library
  switches on it. Cloud differs as Jira Cloud does: users are `accountId`s, not `name`s (user
  search takes `query`, not `username`); epics are `parent: {"key": ...}` (Server has the "Epic
  Link" custom field EPIC_LINK instead); search is GET/POST /search/jql with `nextPageToken`, and
  the old /search answers 410 Gone (removed from Cloud in 2025, CHANGE-2046).
- `users`: login -> password/token for basic auth (wrong or missing credentials are a 401 with
  Jira's headers and error JSON; serverInfo may be read anonymously).
- `people`: the user directory, username -> {"displayName", "emailAddress", "accountId",
  "active", "timeZone"} (all optional; accountId is made up when missing). Every login in `users`
  is a person too (matched by username or e-mail), so comments get an author. `add_person()`.
- `projects`: key -> name (default {"PM": "Postmortems"}); `add_issue` adds its project.
- `admins`: logins that may list application links (others get the applinks plugin's 401, as on
  most real instances; `jira.add_remote_link` then warns and goes on).
- `time_zone`: the Jira user's zone, in which JQL reads absolute dates ("2026-11-22 16:20").
- `clock`: what "now" is (created/updated stamps, relative JQL dates); settable at any time.
- `max_results`: the cap on search page sizes (100, what Cloud allows with all fields).

The REST API (see ROUTES)
- serverInfo; GET /field (a small field list); GET /project/{key or id}; GET /myself.
- Issues: POST /issue (201 {id, key, self}; keys PROJECT-N count up; created To Do,
  unresolved, priority Medium, reporter = the caller); GET /issue/{key or id}?fields=...; PUT
  /issue/{key or id} {"fields": {...}, "update": {...}} (204). Settable: summary, description,
  labels, priority, duedate, assignee, reporter, security ({"id"} or {"name"} of a level of
  `security_levels`; Jira's errors otherwise), parent (Cloud: any issue; Server: only for a
  Sub-task), EPIC_LINK (Server); issuetype; project only on create. Anything else (status,
  resolution, unknown names) is Jira's "Field 'x' cannot be set. It is not on the appropriate
  screen, or unknown." Errors are 400 {"errorMessages": [], "errors": {field: message}} with
  Jira's messages ("valid project is required", "You must specify a summary of the issue.", ...).
- Comments: GET/POST /issue/{key}/comment, GET /issue/{key}/comment/{id}; also in the issue's
  `comment` field, as Jira returns them.
- Remote links: GET/POST /issue/{key}/remotelink (201 {id, self}; a known globalId updates the
  link instead: 200), GET .../remotelink/{id}; GET /rest/applinks/latest/listApplicationlinks.
- Transitions: GET/POST /issue/{key}/transitions on a simple workflow (TRANSITIONS): To Do ->
  In Progress (21) or Done (31); In Progress -> To Do (11) or Done (31); Done -> Reopen (41,
  back to To Do). Into a done status sets a resolution ("Done", or `fields.resolution` from the
  request) and resolutiondate; out of one clears both. `update.comment` adds comments.
- Search: Server GET/POST /search (startAt, maxResults, total, issues); Cloud GET/POST
  /search/jql (issues, nextPageToken only when there is a next page, isLast). Page size:
  maxResults, default 50, capped at `max_results`. Supported JQL (see parse_jql): clauses
  joined by AND: project =/!=/in/not in; key (issuekey, id) =/!=/in/not in; labels =/in,
  labels is (not) EMPTY; status and statusCategory =/!=/in/not in (names, keys or ids);
  resolution =/!=/in/not in/is (not) EMPTY (Unresolved); updated, created, resolutiondate
  (aliases updatedDate, createdDate, resolved) =, >, >=, <, <= an absolute date in `time_zone`
  or a relative one (-15m, -2h, -1d, "-1w 2d"); ORDER BY key/created/updated/resolutiondate
  ASC/DESC (ASC when not said). Without ORDER BY, newest key first (Jira promises no order).
  Anything else is a 400 in Jira's error shape: unknown fields as Jira words it, and what Jira
  has but this server does not (OR, NOT, parentheses, functions, ~, WAS, other fields) named.
  Values that do not exist (a project, an issue key, a status) are 400s too, as with
  validateQuery=strict (Server also takes validateQuery=warn/false: warningMessages instead).
  Cloud's /search/jql refuses a query without any clause ("Unbounded JQL queries ...").
- Users: GET /user/search ?username= (Server) / ?query= (Cloud) matches the start of the
  username, e-mail address or any word of the display name, active users unless
  includeInactive=true; GET /user ?username= / ?accountId=; PUT /issue/{key}/assignee
  {"name": ...} (Server) / {"accountId": ...} (Cloud), null unassigns, "-1" is the project
  default (unassigned here): 204; an unknown user is a 400 with errors.assignee.

Jira Software's Agile REST API (/rest/agile/1.0), as the library's `sprints()` and
`add_issues_to_sprint()` call it:
- GET /board/{boardId}/sprint ?state=future,active,closed &startAt &maxResults (default and cap
  50): {"maxResults", "startAt", "isLast", "values": [sprint]}, a sprint being {"id", "self",
  "state", "name", "startDate", "endDate", "originBoardId", "goal"} (dates only once started).
  An unknown board is a 404 ("The requested board cannot be viewed because it either does not
  exist or you do not have permission to view it."); a Kanban board a 400 ("The board does not
  support sprints"); an unknown state a 400.
- POST /sprint/{sprintId}/issue {"issues": [keys or ids]} (at most 50): 204; each issue leaves
  any other open sprint (an issue is in one open sprint at a time); adding one already there
  changes nothing. An unknown sprint is a 404; a closed sprint, an unknown issue, no issues or
  more than 50 a 400.
- State: `boards` (id -> board), `sprints` (id -> sprint, with its "issues"); helpers
  `add_board(id, name, type=)`, `add_sprint(board, name, state=)`, `set_sprint_state`,
  `sprint_issues(sprint)`.

Anything else is a 404 text/html "Not Found" page, like a web server that is not Jira, or a 405
when the path is known but not the method.

For the tests
- `requests`: every request (method, path, query, user, body, route, fault), faulted ones too;
  `calls(route, method=, path=)` and `count(...)` filter them, e.g. count("create_issue").
  Route names are the handler names in ROUTES without the underscore.
- `faults` (a Faults): switch failures on and off at runtime, optionally only for a method and a
  path regex: `fail_next(n, status=429, retry_after=1)`, `fail_always(status=503)`,
  `bad_credentials()` (401 for everything), `slow(seconds)`, `drop()` (close the connection
  without an answer); `after_serving=True` does the work first and fails the reply (a create that
  happened although the client saw an error). Each returns a Fault, also a context manager;
  `faults.clear()` ends them all.
- `down()` / `up()`: stop listening (and cut open connections) so clients get "connection
  refused" at the same URL, and listen again.
- State: `issues` (key -> the issue as GET /rest/api/2 returns it), `remote_links` (issue id ->
  links), `people`, `projects`; helpers `add_issue`, `set_status`, `issue`, `add_person`,
  `person`.

To grow it: add a method `_name(self, request, match) -> Reply` and a line in ROUTES; keep state
under `lock` and answer in Atlassian's documented shapes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import functools
import hashlib
import json
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

from tests.servers.daemon import LoopbackThreadServer

# Jira's three status categories (plus "undefined"), as /rest/api/2/statuscategory lists them.
CATEGORIES: dict[str, dict[str, Any]] = {
    "undefined": {"id": 1, "key": "undefined", "colorName": "medium-gray", "name": "No Category"},
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
    "indeterminate": {
        "id": 4,
        "key": "indeterminate",
        "colorName": "yellow",
        "name": "In Progress",
    },
}
# The statuses of a default Jira workflow, and their categories.
STATUSES: dict[str, tuple[str, str]] = {  # name: (id, category key)
    "To Do": ("10000", "new"),
    "In Progress": ("3", "indeterminate"),
    "In Review": ("10001", "indeterminate"),
    "Done": ("10002", "done"),
    "Won't Do": ("10003", "done"),
}
RESOLUTIONS: dict[str, tuple[str, str]] = {  # name: (id, description)
    "Done": ("10000", "Work has been completed on this issue."),
    "Fixed": ("1", "A fix for this issue is checked into the tree and tested."),
    "Won't Do": ("10001", "This issue won't be actioned."),
    "Duplicate": ("3", "The problem is a duplicate of an existing issue."),
}
PRIORITIES: dict[str, str] = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
DEFAULT_PRIORITY = "Medium"
ISSUE_TYPES: dict[str, tuple[str, bool]] = {  # name: (id, subtask)
    "Epic": ("10000", False),
    "Task": ("10001", False),
    "Story": ("10002", False),
    "Sub-task": ("10003", True),
    "Bug": ("10004", False),
}
# The workflow: (id, name, target status, the status categories it starts from).
TRANSITIONS: list[tuple[str, str, str, frozenset[str]]] = [
    ("11", "To Do", "To Do", frozenset({"indeterminate"})),
    ("21", "In Progress", "In Progress", frozenset({"new"})),
    ("31", "Done", "Done", frozenset({"new", "indeterminate"})),
    ("41", "Reopen", "To Do", frozenset({"done"})),
]
EPIC_LINK = "customfield_10100"  # Server's "Epic Link" (Cloud uses `parent`)
NOT_FOUND = "Issue does not exist or you do not have permission to see it."
NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
SEARCH_GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full "
    "migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
BOARD_NOT_FOUND = (
    "The requested board cannot be viewed because it either does not exist or you do not have "
    "permission to view it."
)
SPRINT_STATES = ("future", "active", "closed")
AGILE_PAGE = 50  # the Agile API's default and largest page, and the most issues moved at once
NOT_SETTABLE = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."
NOT_A_STRING = "Operation value must be a string"
NOT_ADF = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"


@dataclass(frozen=True)
class Request:
    """One request as the server saw it (for assertions)."""

    method: str
    path: str
    query: dict[str, list[str]]
    user: str | None  # who authenticated; None when anonymous or refused
    body: Any = None  # the JSON sent (or its text when not JSON), None without a body
    route: str | None = None  # the handler's name ("create_issue"), None when no route matched
    fault: str | None = None  # the fault that answered it ("429", "drop", "slow 2s"), if any


@dataclass
class Reply:
    status: int  # 0: close the connection without answering
    body: Any = None  # JSON-encoded unless str (sent as text/html); None with 204
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["JiraServer", Request, "re.Match[str]"], Reply]


def jira_error(status: int, *messages: str, **errors: str) -> Reply:
    """Jira's error shape: {"errorMessages": [...], "errors": {field: message}}."""
    return Reply(status, {"errorMessages": list(messages), "errors": errors})


def field_errors(errors: dict[str, str]) -> Reply:
    return Reply(400, {"errorMessages": [], "errors": dict(errors)})


class JqlError(ValueError):
    """A query Jira would refuse (400); `soft` ones are about values that do not exist, which
    validateQuery=warn/false turns into warnings."""

    def __init__(self, message: str, *, soft: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.soft = soft


# -- faults --------------------------------------------------------------------------------------


@dataclass
class Fault:
    """One way to misbehave (see Faults). `times` is how many more requests it takes (None: until
    removed); `hits` how many it took."""

    status: int | None = None  # answer this instead (with Jira's or a proxy's body)
    retry_after: int | str | None = None  # the Retry-After header of that answer
    delay: float = 0.0  # wait this long (before serving, or before answering with after_serving)
    drop: bool = False  # close the connection without an answer
    after_serving: bool = False  # serve the request first (its effects happen), then misbehave
    method: str | None = None  # only this method
    path: str | None = None  # only paths this regex fully matches, e.g. r"/rest/api/2/issue"
    times: int | None = None
    body: Any = None  # the answer's body instead of the default one
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0
    owner: Faults | None = field(default=None, repr=False, compare=False)

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or re.fullmatch(self.path, path) is not None

    @property
    def terminal(self) -> bool:
        return self.status is not None or self.drop

    @property
    def label(self) -> str:
        parts = [f"slow {self.delay:g}s"] if self.delay else []
        if self.drop:
            parts.append("drop")
        elif self.status is not None:
            parts.append(str(self.status))
        return " ".join(parts)

    def remove(self) -> None:
        if self.owner is not None:
            self.owner.remove(self)

    def __enter__(self) -> Fault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()


class Faults:
    """The faults a JiraServer applies, switched on and off while it runs. Rules are tried in the
    order added: every matching slow one adds its delay; the first matching one with a status or
    `drop` decides the answer."""

    def __init__(self) -> None:
        self._rules: list[Fault] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def add(self, fault: Fault) -> Fault:
        fault.owner = self
        with self._lock:
            self._rules.append(fault)
        return fault

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 503,
        retry_after: int | str | None = None,
        method: str | None = None,
        path: str | None = None,
        after_serving: bool = False,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """The next `n` matching requests get `status` (429: Jira's rate-limit answer; 401: its
        bad-credentials answer; 5xx: a proxy's HTML page; with Retry-After when given)."""
        return self.add(
            Fault(
                status=status,
                retry_after=retry_after,
                method=method,
                path=path,
                times=n,
                after_serving=after_serving,
                body=body,
                headers=dict(headers or {}),
            )
        )

    def fail_always(
        self,
        *,
        status: int = 503,
        retry_after: int | str | None = None,
        method: str | None = None,
        path: str | None = None,
        after_serving: bool = False,
    ) -> Fault:
        """Every matching request gets `status` until the fault is removed."""
        return self.add(
            Fault(
                status=status,
                retry_after=retry_after,
                method=method,
                path=path,
                after_serving=after_serving,
            )
        )

    def bad_credentials(self, *, method: str | None = None, path: str | None = None) -> Fault:
        """401 for everything, as Jira answers a revoked token (even serverInfo)."""
        return self.add(Fault(status=401, method=method, path=path))

    def slow(
        self,
        delay: float,
        *,
        n: int | None = None,
        method: str | None = None,
        path: str | None = None,
        after_serving: bool = False,
    ) -> Fault:
        """Wait `delay` seconds before serving matching requests (the next `n`, or all);
        after_serving: serve at once, wait before answering (the work is done even when the
        client gives up)."""
        return self.add(
            Fault(delay=delay, method=method, path=path, times=n, after_serving=after_serving)
        )

    def drop(
        self,
        n: int | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
        after_serving: bool = False,
    ) -> Fault:
        """Close the connection without answering (the next `n` matching requests, or all)."""
        return self.add(
            Fault(drop=True, method=method, path=path, times=n, after_serving=after_serving)
        )

    def remove(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._rules:
                self._rules.remove(fault)

    def clear(self) -> None:
        """End every fault, and cut short the waits of slow requests in progress."""
        with self._lock:
            self._rules.clear()
        self._wake.set()
        self._wake.clear()

    @property
    def active(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._rules if f.times is None or f.times > 0]

    def pick(self, method: str, path: str) -> tuple[list[Fault], Fault | None]:
        """The slow faults and the answering fault (if any) for a request; counts them as used."""
        slow: list[Fault] = []
        with self._lock:
            for fault in self._rules:
                if not fault.matches(method, path):
                    continue
                fault.hits += 1
                if fault.times is not None:
                    fault.times -= 1
                if fault.delay:
                    slow.append(fault)
                if fault.terminal:
                    return slow, fault
        return slow, None

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._wake.wait(seconds)


# -- JQL -----------------------------------------------------------------------------------------

_JQL_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|>=|<=|!~|=|>|<|~)
      | (?P<punct>[(),])
      | (?P<word>[^\s"'(),=!<>~]+)
    )""",
    re.X,
)
_DATE_OPS = frozenset({"=", ">", ">=", "<", "<="})
_LIST_OPS = frozenset({"=", "!=", "in", "not in"})
JQL_SUPPORTED: dict[str, frozenset[str]] = {  # canonical field: operators served
    "project": _LIST_OPS,
    "key": _LIST_OPS,
    "labels": frozenset({"=", "in", "is", "is not"}),
    "status": _LIST_OPS,
    "statuscategory": _LIST_OPS,
    "resolution": _LIST_OPS | {"is", "is not"},
    "updated": _DATE_OPS,
    "created": _DATE_OPS,
    "resolutiondate": _DATE_OPS,
}
JQL_ALIASES = {
    "issuekey": "key",
    "id": "key",
    "updateddate": "updated",
    "createddate": "created",
    "resolved": "resolutiondate",
}
JQL_ORDER_FIELDS = frozenset({"key", "created", "updated", "resolutiondate"})
# Fields real Jira knows that this server does not search on (a clause on them is "unsupported",
# not "does not exist").
JQL_KNOWN_ELSEWHERE = frozenset(
    {
        "affectedversion",
        "assignee",
        "attachments",
        "category",
        "comment",
        "component",
        "creator",
        "description",
        "due",
        "duedate",
        "environment",
        "epic link",
        "filter",
        "fixversion",
        "issuetype",
        "level",
        "parent",
        "priority",
        "reporter",
        "sprint",
        "summary",
        "text",
        "type",
        "voter",
        "watcher",
    }
)
_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1)}
_UNITS["m"] = timedelta(minutes=1)
_RELATIVE = re.compile(r"([+-]?)\s*((?:\d+\s*[wdhm]\s*)+)")
_DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")


@dataclass(frozen=True)
class Clause:
    field: str  # canonical, lower-case ("statuscategory")
    name: str  # as written
    op: str  # =, !=, >, >=, <, <=, in, not in, is, is not
    values: tuple[str, ...]


@dataclass(frozen=True)
class Jql:
    clauses: tuple[Clause, ...]
    order: tuple[tuple[str, bool], ...]  # (canonical field, descending)


def _unsupported(what: str) -> JqlError:
    return JqlError(
        f"Error in the JQL Query: the test Jira server does not support {what}. It serves "
        "clauses joined by AND on: project, key, labels, status, statusCategory, resolution, "
        "updated, created, resolutiondate; and ORDER BY key, created, updated, resolutiondate."
    )


@dataclass(frozen=True)
class _Token:
    kind: str  # string, op, punct, word
    text: str


def _jql_tokens(jql: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while jql[position:].strip():
        match = _JQL_TOKEN.match(jql, position)
        if match is None:
            bad = jql[position:].lstrip()[0]
            raise JqlError(
                f"Error in the JQL Query: The character '{bad}' is a reserved JQL character. "
                "You must enclose it in a string or use the escape '\\u0021' instead."
            )
        kind = match.lastgroup or "word"
        text = match.group(kind)
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append(_Token(kind, text))
        position = match.end()
    return tokens


class _JqlParser:
    def __init__(self, text: str) -> None:
        self.tokens = _jql_tokens(text)
        self.at = 0

    def peek(self, ahead: int = 0) -> _Token | None:
        index = self.at + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, expecting: str) -> _Token:
        token = self.peek()
        if token is None:
            raise JqlError(f"Error in the JQL Query: Expecting {expecting} but reached the end.")
        self.at += 1
        return token

    @staticmethod
    def is_word(token: _Token | None, *words: str) -> bool:
        return token is not None and token.kind == "word" and token.text.lower() in words

    def parse(self) -> Jql:
        clauses: list[Clause] = []
        order: list[tuple[str, bool]] = []
        while self.peek() is not None:
            token = self.peek()
            if self.is_word(token, "order") and self.is_word(self.peek(1), "by"):
                self.at += 2
                order = self.order_by()
                break
            if clauses:
                if self.is_word(token, "and", "&&", "&"):
                    self.at += 1
                elif self.is_word(token, "or", "||", "|"):
                    raise _unsupported("OR")
                else:
                    raise JqlError(
                        "Error in the JQL Query: Expecting either 'OR' or 'AND' but got "
                        f"'{token.text if token else ''}'."
                    )
            clauses.append(self.clause())
        if self.peek() is not None:
            raise JqlError(f"Error in the JQL Query: Unexpected '{self.take('').text}'.")
        return Jql(tuple(clauses), tuple(order))

    def clause(self) -> Clause:
        token = self.take("a field name")
        if token.kind == "punct" and token.text == "(":
            raise _unsupported("parentheses")
        if self.is_word(token, "not", "!"):
            raise _unsupported("NOT")
        if token.kind not in ("word", "string"):
            raise JqlError(
                f"Error in the JQL Query: Expecting a field name but got '{token.text}'."
            )
        name = token.text
        op_token = self.take("an operator")
        if op_token.kind == "op":
            op = op_token.text
        elif self.is_word(op_token, "in"):
            op = "in"
        elif self.is_word(op_token, "not") and self.is_word(self.peek(), "in"):
            self.at += 1
            op = "not in"
        elif self.is_word(op_token, "is"):
            op = "is"
            if self.is_word(self.peek(), "not"):
                self.at += 1
                op = "is not"
        elif self.is_word(op_token, "was", "changed"):
            raise _unsupported(f"'{op_token.text.upper()}' (history searches)")
        else:
            raise JqlError(f"Error in the JQL Query: Expecting operator but got '{op_token.text}'.")
        if op in ("~", "!~"):
            raise _unsupported(f"'{name} {op}' (text searches)")
        if op in ("in", "not in"):
            opening = self.take("'('")
            if opening.text != "(" or opening.kind != "punct":
                raise JqlError(f"Error in the JQL Query: Expecting '(' but got '{opening.text}'.")
            values: list[str] = []
            while True:
                values.append(self.value())
                closing = self.take("')' or ','")
                if closing.kind == "punct" and closing.text == ")":
                    break
                if closing.kind != "punct" or closing.text != ",":
                    raise JqlError(
                        f"Error in the JQL Query: Expecting ')' or ',' but got '{closing.text}'."
                    )
            return Clause(self.canonical(name), name, op, tuple(values))
        if op in ("is", "is not"):
            value = self.take("EMPTY")
            if not self.is_word(value, "empty", "null"):
                raise JqlError(
                    f"Error in the JQL Query: Expecting 'EMPTY' or 'NULL' but got '{value.text}'."
                )
            return Clause(self.canonical(name), name, op, ("EMPTY",))
        return Clause(self.canonical(name), name, op, (self.value(),))

    def value(self) -> str:
        token = self.take("a value")
        if token.kind not in ("word", "string"):
            raise JqlError(f"Error in the JQL Query: Expecting a value but got '{token.text}'.")
        following = self.peek()
        if token.kind == "word" and following is not None and following.text == "(":
            raise _unsupported(f"the function {token.text}()")
        return token.text

    def order_by(self) -> list[tuple[str, bool]]:
        order: list[tuple[str, bool]] = []
        while True:
            token = self.take("a field to order by")
            name = self.canonical(token.text)
            if name not in JQL_ORDER_FIELDS:
                raise _unsupported(f"ORDER BY {token.text}")
            descending = False
            if self.is_word(self.peek(), "asc", "desc"):
                descending = self.take("").text.lower() == "desc"
            order.append((name, descending))
            if self.peek() is None:
                return order
            separator = self.take("','")
            if separator.text != ",":
                raise JqlError(f"Error in the JQL Query: Expecting ',' but got '{separator.text}'.")

    @staticmethod
    def canonical(name: str) -> str:
        lowered = name.lower()
        return JQL_ALIASES.get(lowered, lowered)


def parse_jql(text: str) -> Jql:
    """The JQL this server serves (see the module docstring), or a JqlError saying why not."""
    jql = _JqlParser(text).parse()
    for clause in jql.clauses:
        if clause.field not in JQL_SUPPORTED:
            if clause.field in JQL_KNOWN_ELSEWHERE or clause.field.startswith("cf["):
                raise _unsupported(f"searching on '{clause.name}'")
            raise JqlError(
                f"Field '{clause.name}' does not exist or you do not have permission to view it."
            )
        if clause.op not in JQL_SUPPORTED[clause.field]:
            raise _unsupported(f"'{clause.name} {clause.op.upper()}'")
    return jql


# -- the server ----------------------------------------------------------------------------------


class JiraServer(LoopbackThreadServer):
    """A threaded HTTP server on 127.0.0.1; a context manager. See the module docstring."""

    name = "the Jira server"

    def __init__(
        self,
        users: dict[str, str] | None = None,
        *,
        deployment_type: str = "Server",
        version: tuple[int, int, int] = (9, 12, 0),
        people: dict[str, dict[str, Any]] | None = None,
        projects: dict[str, str] | None = None,
        admins: set[str] | frozenset[str] = frozenset(),
        time_zone: str = "UTC",
        clock: Callable[[], datetime] | None = None,
        max_results: int = 100,
        security_levels: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.users = dict(users or {"followthrough@example.com": "jira-token"})
        # The projects' issue security scheme: level name -> id.
        self.security_levels = dict(security_levels or {"Security incidents": "10100"})
        self.deployment_type = deployment_type
        self.version = version
        self.admins = set(admins)
        self.time_zone = time_zone
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.max_results = max_results
        self.issues: dict[str, dict[str, Any]] = {}  # key -> the issue as GET returns it
        self.remote_links: dict[str, list[dict[str, Any]]] = {}  # issue id -> its links
        self.requests: list[Request] = []
        self.faults = Faults()
        self.lock = threading.RLock()
        self.projects: dict[str, dict[str, Any]] = {}
        self.people: dict[str, dict[str, Any]] = {}  # username -> person
        self.boards: dict[int, dict[str, Any]] = {}  # id -> board (Jira Software)
        self.sprints: dict[int, dict[str, Any]] = {}  # id -> sprint, with its "issues" (keys)
        self._next_sprint = 1
        self._next_id = 10000
        self._next_comment = 10000
        self._next_link = 10000
        self._numbers: dict[str, int] = {}  # project key -> the last issue number used
        self._wanted_port = 0
        self._connections: set[socket.socket] = set()
        for key, project_name in (projects or {"PM": "Postmortems"}).items():
            self.add_project(key, project_name)
        for username, details in (people or {}).items():
            self.add_person(
                username,
                display_name=details.get("displayName"),
                email=details.get("emailAddress"),
                account_id=details.get("accountId"),
                active=details.get("active", True),
                time_zone=details.get("timeZone"),
            )
        for login in self.users:
            if self._person_for_login(login) is None:
                self.add_person(login, email=login if "@" in login else None)

    @property
    def cloud(self) -> bool:
        return self.deployment_type == "Cloud"

    # -- lifecycle (the rest is LoopbackThreadServer's) --------------------------------------

    def open(self) -> tuple[ThreadingHTTPServer, threading.Thread]:
        server = _QuietServer(("127.0.0.1", self._wanted_port), _handler_for(self))
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="jira-server", daemon=True
        )
        thread.start()
        return server, thread

    def stop(self) -> None:
        super().stop()
        self.faults.clear()
        self._cut_connections()

    def down(self) -> None:
        """Stop listening and cut every open connection: clients get "connection refused" until
        up(), which listens on the same port again."""
        self._wanted_port = self.port
        super().stop()
        self._cut_connections()

    def up(self) -> None:
        self.start()

    @property
    def is_up(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None and self._wanted_port:
            return self._wanted_port  # down(): the same URL stays valid
        return super().port

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT, the base URL a client is given (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def _cut_connections(self) -> None:
        with self.lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    # -- test-side state ---------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock()

    def add_project(self, key: str, name: str | None = None) -> dict[str, Any]:
        with self.lock:
            if key not in self.projects:
                project_id = str(10000 + len(self.projects))
                self.projects[key] = {
                    "self": f"{self.url if self.is_up else ''}/rest/api/2/project/{project_id}",
                    "id": project_id,
                    "key": key,
                    "name": name or key,
                    "projectTypeKey": "software",
                }
            return self.projects[key]

    def add_person(
        self,
        name: str,
        *,
        display_name: str | None = None,
        email: str | None = None,
        account_id: str | None = None,
        active: bool = True,
        time_zone: str | None = None,
    ) -> dict[str, Any]:
        """Add someone to the user directory (`name` is the Server username)."""
        digest = hashlib.sha1(name.encode()).hexdigest()
        with self.lock:
            person = {
                "name": name,
                "key": f"JIRAUSER{10000 + len(self.people)}",
                "accountId": account_id or f"5b10ac8d{digest[:16]}",
                "displayName": display_name or name.split("@")[0].replace(".", " ").title(),
                "emailAddress": email or (name if "@" in name else f"{name}@example.com"),
                "active": active,
                "timeZone": time_zone or self.time_zone,
            }
            self.people[name] = person
            return dict(person)

    def person(self, who: str) -> dict[str, Any] | None:
        """The person with this username, accountId or e-mail address."""
        with self.lock:
            if who in self.people:
                return self.people[who]
            return next(
                (
                    p
                    for p in self.people.values()
                    if who in (p["accountId"], p["emailAddress"], p["key"])
                ),
                None,
            )

    def _person_for_login(self, login: str) -> dict[str, Any] | None:
        with self.lock:
            if login in self.people:
                return self.people[login]
            return next((p for p in self.people.values() if p["emailAddress"] == login), None)

    def add_issue(
        self,
        key: str,
        *,
        summary: str = "An action item",
        status: str = "To Do",
        resolution: str | None = None,
        issue_type: str = "Task",
        description: str | None = None,
        labels: list[str] | None = None,
        priority: str = DEFAULT_PRIORITY,
        duedate: str | None = None,
        assignee: str | None = None,
        created: datetime | None = None,
        updated: datetime | None = None,
    ) -> dict[str, Any]:
        """Make (or replace) an issue; its project is the key's prefix (added if new)."""
        project_key, _, number = key.rpartition("-")
        self.add_project(project_key)
        created = created or self.now()
        with self.lock:
            self._numbers[project_key] = max(self._numbers.get(project_key, 0), int(number))
            self._next_id += 1
            issue_id = str(self._next_id)
            person = self.person(assignee) if assignee else None
            self.issues[key] = {
                "expand": ISSUE_EXPAND,
                "id": issue_id,
                "self": f"{self.url}/rest/api/2/issue/{issue_id}",
                "key": key,
                "fields": self._new_fields(
                    project_key,
                    issue_type,
                    created,
                    summary=summary,
                    description=description,
                    labels=sorted(set(labels or [])),
                    priority=self._priority_json(priority),
                    duedate=duedate,
                    assignee=self._user_json(person) if person else None,
                    reporter=None,
                ),
            }
        self.set_status(key, status, resolution=resolution)
        with self.lock:
            self.issues[key]["fields"]["updated"] = _jira_time(updated or created)
        return self.issue(key)

    def add_board(self, board_id: int, name: str = "", *, type: str = "scrum") -> dict[str, Any]:
        """A Jira Software board ("scrum" has sprints, "kanban" has none)."""
        with self.lock:
            self.boards[board_id] = {
                "id": board_id,
                "self": f"{self.url}/rest/agile/1.0/board/{board_id}",
                "name": name or f"Board {board_id}",
                "type": type,
            }
            return dict(self.boards[board_id])

    def add_sprint(self, board_id: int, name: str = "", *, state: str = "active") -> int:
        """A sprint on a board (added if new), in state future, active or closed; its id."""
        if board_id not in self.boards:
            self.add_board(board_id)
        with self.lock:
            sprint_id = self._next_sprint
            self._next_sprint += 1
            self.sprints[sprint_id] = {
                "id": sprint_id,
                "self": f"{self.url}/rest/agile/1.0/sprint/{sprint_id}",
                "state": "future",
                "name": name or f"Sprint {sprint_id}",
                "originBoardId": board_id,
                "goal": "",
                "issues": [],
            }
        self.set_sprint_state(sprint_id, state)
        return sprint_id

    def set_sprint_state(self, sprint_id: int, state: str) -> None:
        """Start (active) or complete (closed) a sprint; its dates as Jira sets them."""
        assert state in SPRINT_STATES, state
        with self.lock:
            sprint = self.sprints[sprint_id]
            sprint["state"] = state
            now = self.now()
            if state in ("active", "closed") and "startDate" not in sprint:
                sprint["startDate"] = _jira_time(now)
                sprint["endDate"] = _jira_time(now + timedelta(days=14))
            if state == "closed":
                sprint["completeDate"] = _jira_time(now)

    def sprint_issues(self, sprint_id: int) -> list[str]:
        with self.lock:
            return list(self.sprints[sprint_id]["issues"])

    def set_status(self, key: str, status: str, *, resolution: str | None = None) -> None:
        """Move an issue to a status (one of STATUSES) with a resolution (one of RESOLUTIONS) or
        none; what a transition in Jira's UI does."""
        with self.lock:
            self._apply_status(self.issues[key]["fields"], status, resolution)

    def issue(self, key: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.issues[key])

    def calls(
        self, route: str | None = None, *, method: str | None = None, path: str | None = None
    ) -> list[Request]:
        """The requests to a route ("create_issue"), with a method, to paths this regex fully
        matches; faulted ones included (see Request.fault)."""
        with self.lock:
            return [
                r
                for r in self.requests
                if (route is None or r.route == route)
                and (method is None or r.method == method.upper())
                and (path is None or re.fullmatch(path, r.path))
            ]

    def count(
        self, route: str | None = None, *, method: str | None = None, path: str | None = None
    ) -> int:
        return len(self.calls(route, method=method, path=path))

    # -- the REST API ------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        auth: str | None,
        body: Any = None,
    ) -> Reply:
        user, refused = self._authenticate(auth)
        found: tuple[Handler, re.Match[str]] | None = None
        allowed: list[str] = []
        for route_method, pattern, handler in ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                found = (handler, match)
                break
            if match:
                allowed.append(route_method)
        slow, fault = self.faults.pick(method, path)
        request = Request(
            method,
            path,
            query,
            user,
            body,
            route=found[0].__name__.lstrip("_") if found else None,
            fault=" ".join(f.label for f in [*slow, *([fault] if fault else [])]) or None,
        )
        with self.lock:
            self.requests.append(request)
        self.faults.sleep(sum(f.delay for f in slow if not f.after_serving))
        if fault is not None and not fault.after_serving:
            return self._fault_reply(fault)
        if found is None:
            reply = (
                Reply(405, None, {"Allow": ", ".join(allowed)})
                if allowed
                else Reply(404, "<html><body><h1>Not Found</h1></body></html>")
            )
        elif refused or (user is None and found[0] not in ANONYMOUS):
            reply = self._unauthenticated()
        else:
            try:
                reply = found[0](self, request, found[1])
            except JqlError as error:
                reply = jira_error(400, error.message)
        self.faults.sleep(sum(f.delay for f in slow if f.after_serving))
        if fault is not None:
            return self._fault_reply(fault)
        return reply

    def _fault_reply(self, fault: Fault) -> Reply:
        if fault.drop:
            return Reply(0)
        assert fault.status is not None
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.status == 401:
            reply = self._unauthenticated()
        elif fault.status == 429:  # Jira's rate limiting (Server's headers; Cloud's are alike)
            reply = jira_error(429, "Rate limit exceeded.")
            reply.headers.update({"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0"})
            reply.headers.update(
                {"X-RateLimit-FillRate": "10", "X-RateLimit-Interval-Seconds": "1"}
            )
        elif fault.status >= 500:  # what a proxy in front of Jira says
            phrase = HTTPStatus(fault.status).phrase
            reply = Reply(
                fault.status, f"<html><body><h1>{fault.status} {phrase}</h1></body></html>"
            )
        else:
            reply = jira_error(fault.status, HTTPStatus(fault.status).phrase)
        if fault.body is not None:
            reply.body = fault.body
        reply.headers.update(headers)
        return reply

    def _authenticate(self, header: str | None) -> tuple[str | None, bool]:
        """(user, refused): anonymous is (None, False); wrong credentials are (None, True)."""
        if not header:
            return None, False
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None, True
        try:
            user, _, token = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None, True
        if self.users.get(user) != token:
            return None, True
        return user, False

    def _unauthenticated(self) -> Reply:
        reply = jira_error(401, NOT_AUTHENTICATED)
        reply.headers.update(
            {
                "WWW-Authenticate": 'Basic realm="protected-area"',
                "X-Seraph-LoginReason": "AUTHENTICATED_FAILED",
            }
        )
        return reply

    # -- meta --------------------------------------------------------------------------------

    def _server_info(self, request: Request, match: re.Match[str]) -> Reply:
        return Reply(
            200,
            {
                "baseUrl": self.url,
                "version": ".".join(map(str, self.version)),
                "versionNumbers": list(self.version),
                "deploymentType": self.deployment_type,
                "buildNumber": 9120000,
                "buildDate": "2026-01-01T00:00:00.000+0000",
                "serverTime": _jira_time(self.now()),
                "scmInfo": "0000000000000000000000000000000000000000",
                "serverTitle": "Jira (Followthrough tests)",
            },
        )

    def _fields(self, request: Request, match: re.Match[str]) -> Reply:
        def one(
            field_id: str, name: str, kind: str, *, items: str | None = None, custom: bool = False
        ) -> dict[str, Any]:
            schema: dict[str, Any] = {"type": kind}
            if items:
                schema["items"] = items
            if custom:
                schema.update(
                    custom="com.pyxis.greenhopper.jira:gh-epic-link",
                    customId=int(field_id.rsplit("_", 1)[1]),
                )
            else:
                schema["system"] = field_id
            return {
                "id": field_id,
                "key": field_id,
                "name": name,
                "custom": custom,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [f"cf[{field_id[12:]}]", name] if custom else [field_id],
                "schema": schema,
            }

        fields = [
            one("summary", "Summary", "string"),
            one("description", "Description", "string"),
            one("issuetype", "Issue Type", "issuetype"),
            one("project", "Project", "project"),
            one("status", "Status", "status"),
            one("resolution", "Resolution", "resolution"),
            one("resolutiondate", "Resolved", "datetime"),
            one("priority", "Priority", "priority"),
            one("labels", "Labels", "array", items="string"),
            one("duedate", "Due Date", "date"),
            one("assignee", "Assignee", "user"),
            one("reporter", "Reporter", "user"),
            one("created", "Created", "datetime"),
            one("updated", "Updated", "datetime"),
            one("comment", "Comment", "comments-page"),
            one("parent", "Parent", "issuelink"),
        ]
        if not self.cloud:
            fields.append(one(EPIC_LINK, "Epic Link", "any", custom=True))
        return Reply(200, fields)

    def _project(self, request: Request, match: re.Match[str]) -> Reply:
        wanted = match.group("project")
        with self.lock:
            project = next(
                (p for p in self.projects.values() if wanted in (p["key"], p["id"])), None
            )
            if project is None:
                return jira_error(404, f"No project could be found with key '{wanted}'.")
            body = {**self._project_json(project), "issueTypes": self._issue_types(project)}
        return Reply(200, body)

    def _myself(self, request: Request, match: re.Match[str]) -> Reply:
        person = self._person_for_login(request.user or "")
        return Reply(200, self._user_json(person) if person else {})

    # -- issues ------------------------------------------------------------------------------

    def _get_issue(self, request: Request, match: re.Match[str]) -> Reply:
        with self.lock:
            found = self._find(match.group("key"))
            issue = copy.deepcopy(found) if found else None
        if issue is None:
            return jira_error(404, NOT_FOUND)
        return Reply(200, self._render(issue, match.group("v"), request.query.get("fields", [])))

    def _create_issue(self, request: Request, match: re.Match[str]) -> Reply:
        given = request.body.get("fields") if isinstance(request.body, dict) else None
        if not isinstance(given, dict):
            return jira_error(400, "Can not deserialize the request: it has no 'fields' object.")
        v3 = match.group("v") == "3"
        with self.lock:
            project = self._project_for(given.get("project"))
            if project is None:
                return field_errors({"project": "valid project is required"})
            issue_type = given.get("issuetype")
            type_name = self._issue_type_name(issue_type)
            if type_name is None:
                message = "Specify an issue type" if not issue_type else None
                return field_errors({"issuetype": message or "valid issue type is required"})
            now = self.now()
            fields = self._new_fields(project["key"], type_name, now)
            fields["reporter"] = self._user_json(self._person_for_login(request.user or ""))
            errors: dict[str, str] = {}
            rest = {k: v for k, v in given.items() if k not in ("project", "issuetype")}
            self._set_fields(fields, rest, errors, v3=v3)
            if not fields.get("summary") and "summary" not in errors:
                errors["summary"] = "You must specify a summary of the issue."
            if ISSUE_TYPES[type_name][1] and "parent" not in fields and "parent" not in errors:
                errors["parent"] = (
                    "Issue type is a sub-task but parent issue key or id not specified."
                )
            if errors:
                return field_errors(errors)
            number = self._numbers.get(project["key"], 0) + 1
            self._numbers[project["key"]] = number
            key = f"{project['key']}-{number}"
            self._next_id += 1
            issue_id = str(self._next_id)
            issue = {
                "expand": ISSUE_EXPAND,
                "id": issue_id,
                "self": f"{self.url}/rest/api/2/issue/{issue_id}",
                "key": key,
                "fields": fields,
            }
            self._apply_status(fields, "To Do", None)
            fields["updated"] = fields["created"]
            self.issues[key] = issue
            comments = (request.body.get("update") or {}).get("comment") or []
            for operation in comments if isinstance(comments, list) else []:
                body = (
                    (operation.get("add") or {}).get("body")
                    if isinstance(operation, dict)
                    else None
                )
                if body:
                    self._add_comment_locked(issue, _text_of(body), request.user)
        return Reply(201, {"id": issue_id, "key": key, "self": issue["self"]})

    def _edit_issue(self, request: Request, match: re.Match[str]) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        given = body.get("fields") or {}
        update = body.get("update") or {}
        if not isinstance(given, dict) or not isinstance(update, dict):
            return jira_error(400, "Can not deserialize the request.")
        with self.lock:
            issue = self._find(match.group("key"))
            if issue is None:
                return jira_error(404, NOT_FOUND)
            fields = copy.deepcopy(issue["fields"])
            errors: dict[str, str] = {}
            if "issuetype" in given:
                type_name = self._issue_type_name(given["issuetype"])
                if type_name is None:
                    errors["issuetype"] = "valid issue type is required"
                else:
                    fields["issuetype"] = self._issue_type_json(type_name)
            settable = {k: v for k, v in given.items() if k != "issuetype"}
            self._set_fields(fields, settable, errors, v3=match.group("v") == "3")
            new_comments: list[str] = []
            for name, operations in update.items():
                if not isinstance(operations, list):
                    errors[name] = "Operations must be a list."
                    continue
                for operation in operations:
                    self._update_operation(fields, name, operation, errors, new_comments)
            if errors:
                return field_errors(errors)
            issue["fields"] = fields
            for text in new_comments:
                self._add_comment_locked(issue, text, request.user)
            fields["updated"] = _jira_time(self.now())
        return Reply(204)

    def _update_operation(
        self,
        fields: dict[str, Any],
        name: str,
        operation: Any,
        errors: dict[str, str],
        new_comments: list[str],
    ) -> None:
        """One of the `update` operations: {"add"|"remove"|"set": value}."""
        if not isinstance(operation, dict) or len(operation) != 1:
            errors[name] = "Each operation must be an object with one of: add, set, remove."
            return
        verb, value = next(iter(operation.items()))
        if name == "comment" and verb == "add":
            text = _text_of((value or {}).get("body") if isinstance(value, dict) else None)
            if not text:
                errors["comment"] = "Comment body can not be empty!"
            else:
                new_comments.append(text)
        elif name == "labels" and verb in ("add", "remove"):
            if not isinstance(value, str) or " " in value:
                errors["labels"] = f"The label '{value}' contains spaces which is invalid."
                return
            labels = set(fields.get("labels") or [])
            labels = labels | {value} if verb == "add" else labels - {value}
            fields["labels"] = sorted(labels)
        elif verb == "set":
            self._set_fields(fields, {name: value}, errors, v3=False)
        else:
            errors[name] = f"Field '{name}' does not support operation '{verb}'."

    def _set_fields(
        self, fields: dict[str, Any], given: dict[str, Any], errors: dict[str, str], *, v3: bool
    ) -> None:
        """Apply create/edit field values to `fields`, or say what is wrong in `errors`."""
        for name, value in given.items():
            if name == "summary":
                if not isinstance(value, str):
                    errors[name] = NOT_A_STRING
                elif not value.strip():
                    errors[name] = "You must specify a summary of the issue."
                elif "\n" in value or "\r" in value:
                    errors[name] = "The summary is invalid because it contains newline characters."
                elif len(value) > 255:
                    errors[name] = "Summary must be less than 255 characters."
                else:
                    fields[name] = value
            elif name == "description":
                if value is None:
                    fields[name] = None
                elif v3 and not _is_adf(value):
                    errors[name] = NOT_ADF
                elif not v3 and not isinstance(value, str):
                    errors[name] = NOT_A_STRING
                else:
                    fields[name] = _text_of(value)
            elif name == "labels":
                if value is None:
                    value = []
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    errors[name] = "data was not an array of strings"
                elif bad := [v for v in value if " " in v or not v]:
                    errors[name] = f"The label '{bad[0]}' contains spaces which is invalid."
                else:
                    fields[name] = sorted(set(value))
            elif name == "priority":
                priority = value.get("name") if isinstance(value, dict) else None
                by_id = value.get("id") if isinstance(value, dict) else None
                if by_id is not None:
                    priority = next((n for n, i in PRIORITIES.items() if i == str(by_id)), None)
                    if priority is None:
                        errors[name] = f"Invalid priority id '{by_id}'"
                        continue
                if priority not in PRIORITIES:
                    errors[name] = f"Priority name '{priority}' is not valid"
                else:
                    fields[name] = self._priority_json(str(priority))
            elif name == "duedate":
                if value is None:
                    fields[name] = None
                elif not isinstance(value, str) or not _is_date(value):
                    errors[name] = f"Error parsing date string: {value}"
                else:
                    fields[name] = value
            elif name in ("assignee", "reporter"):
                ok, person = self._resolve_user(value, name, errors)
                if ok:
                    fields[name] = self._user_json(person) if person else None
            elif name == "parent":
                self._set_parent(fields, value, errors)
            elif name == "security":
                self._set_security(fields, value, errors)
            elif name == EPIC_LINK and not self.cloud:
                if value is None:
                    fields[name] = None
                elif not isinstance(value, str):
                    errors[name] = NOT_A_STRING
                else:
                    epic = self._find(value)
                    if epic is None or epic["fields"]["issuetype"]["name"] != "Epic":
                        errors[name] = f"Epic Link: the issue '{value}' is not an epic."
                    else:
                        fields[name] = epic["key"]
            else:
                errors[name] = NOT_SETTABLE.format(name)

    def _set_security(self, fields: dict[str, Any], value: Any, errors: dict[str, str]) -> None:
        """The issue security level, by {"id"} or {"name"} as Jira takes it; null clears it."""
        if value is None:
            fields.pop("security", None)
            return
        by_id = value.get("id") if isinstance(value, dict) else None
        by_name = value.get("name") if isinstance(value, dict) else None
        if not isinstance(by_id, str) and not isinstance(by_name, str):
            errors["security"] = "Could not find valid 'id' or 'name' in security level object."
            return
        found = next(
            (
                (name, level_id)
                for name, level_id in self.security_levels.items()
                if level_id == by_id or (by_id is None and name == by_name)
            ),
            None,
        )
        if found is None:
            errors["security"] = "Specify a valid value for Security Level"
            return
        name, level_id = found
        fields["security"] = {
            "self": f"{self.url}/rest/api/2/securitylevel/{level_id}",
            "id": level_id,
            "description": "",
            "name": name,
        }

    def _set_parent(self, fields: dict[str, Any], value: Any, errors: dict[str, str]) -> None:
        if self.cloud and value is None:
            fields.pop("parent", None)
            return
        subtask = bool(fields["issuetype"].get("subtask"))
        if not self.cloud and not subtask:
            errors["parent"] = (
                "Issue type is not a sub-task but parent issue key or id specified "
                f"(epics on Jira Server are the '{EPIC_LINK}' Epic Link field)."
            )
            return
        wanted = value.get("key") or value.get("id") if isinstance(value, dict) else None
        parent = self._find(str(wanted)) if wanted else None
        if parent is None:
            errors["parent"] = "Could not find issue by id or key."
            return
        pf = parent["fields"]
        fields["parent"] = {
            "id": parent["id"],
            "key": parent["key"],
            "self": parent["self"],
            "fields": {
                k: copy.deepcopy(pf[k]) for k in ("summary", "status", "priority", "issuetype")
            },
        }

    def _resolve_user(
        self, value: Any, field_name: str, errors: dict[str, str]
    ) -> tuple[bool, dict[str, Any] | None]:
        """(ok, person) for a user value: {"name"} on Server, {"accountId"} on Cloud; None (and
        "-1", the project default here) is nobody."""
        if value is None:
            return True, None
        wanted_key = "accountId" if self.cloud else "name"
        if not isinstance(value, dict) or wanted_key not in value:
            errors[field_name] = (
                f'Specify a valid value for {field_name}: {{"{wanted_key}": ...}} on Jira '
                f"{self.deployment_type}."
            )
            return False, None
        wanted = value[wanted_key]
        if wanted in (None, "-1"):
            return True, None
        with self.lock:
            if self.cloud:
                person = next((p for p in self.people.values() if p["accountId"] == wanted), None)
            else:
                person = self.people.get(str(wanted))
        if person is None:
            if self.cloud:
                errors[field_name] = f"The user with account ID '{wanted}' does not exist."
            else:
                errors[field_name] = f"User '{wanted}' does not exist."
            return False, None
        if not person["active"] and field_name == "assignee":
            errors[field_name] = f"User '{person['displayName']}' cannot be assigned issues."
            return False, None
        return True, person

    # -- comments ----------------------------------------------------------------------------

    def _get_comments(self, request: Request, match: re.Match[str]) -> Reply:
        with self.lock:
            issue = self._find(match.group("key"))
            if issue is None:
                return jira_error(404, NOT_FOUND)
            comments = copy.deepcopy(issue["fields"]["comment"]["comments"])
        if _one(request.query, "orderBy") == "-created":
            comments.reverse()
        start = _int(_one(request.query, "startAt"), 0)
        size = _int(_one(request.query, "maxResults"), 5000)
        page = comments[start : start + size]
        if match.group("v") == "3":
            for comment in page:
                comment["body"] = _adf(comment["body"])
        return Reply(
            200, {"startAt": start, "maxResults": size, "total": len(comments), "comments": page}
        )

    def _get_comment(self, request: Request, match: re.Match[str]) -> Reply:
        with self.lock:
            issue = self._find(match.group("key"))
            comments = issue["fields"]["comment"]["comments"] if issue else []
            found = next((c for c in comments if c["id"] == match.group("id")), None)
            comment = copy.deepcopy(found) if found else None
        if comment is None:
            return jira_error(404, "Can not find a comment for the id: " + match.group("id") + ".")
        if match.group("v") == "3":
            comment["body"] = _adf(comment["body"])
        return Reply(200, comment)

    def _add_comment(self, request: Request, match: re.Match[str]) -> Reply:
        body = request.body.get("body") if isinstance(request.body, dict) else None
        v3 = match.group("v") == "3"
        if body is None or (isinstance(body, str) and not body.strip()):
            return field_errors({"comment": "Comment body can not be empty!"})
        if v3 and not _is_adf(body):
            return field_errors({"comment": NOT_ADF})
        if not v3 and not isinstance(body, str):
            return field_errors({"comment": NOT_A_STRING})
        with self.lock:
            issue = self._find(match.group("key"))
            if issue is None:
                return jira_error(404, NOT_FOUND)
            comment = copy.deepcopy(self._add_comment_locked(issue, _text_of(body), request.user))
        if v3:
            comment["body"] = _adf(comment["body"])
        return Reply(201, comment)

    def _add_comment_locked(
        self, issue: dict[str, Any], text: str | None, login: str | None
    ) -> dict[str, Any]:
        self._next_comment += 1
        comment_id = str(self._next_comment)
        author = self._user_json(self._person_for_login(login or ""))
        now = _jira_time(self.now())
        comment: dict[str, Any] = {
            "self": f"{self.url}/rest/api/2/issue/{issue['id']}/comment/{comment_id}",
            "id": comment_id,
            "author": author,
            "body": text or "",
            "updateAuthor": author,
            "created": now,
            "updated": now,
        }
        if self.cloud:
            comment["jsdPublic"] = True
        page = issue["fields"]["comment"]
        page["comments"].append(comment)
        page["total"] = page["maxResults"] = len(page["comments"])
        issue["fields"]["updated"] = now
        return comment

    # -- remote links ------------------------------------------------------------------------

    def _get_remote_links(self, request: Request, match: re.Match[str]) -> Reply:
        with self.lock:
            issue = self._find(match.group("key"))
            if issue is None:
                return jira_error(404, NOT_FOUND)
            links = copy.deepcopy(self.remote_links.get(issue["id"], []))
        global_id = _one(request.query, "globalId")
        if global_id is not None:
            link = next((x for x in links if x.get("globalId") == global_id), None)
            if link is None:
                return jira_error(404, f"No remote link with globalId '{global_id}'.")
            return Reply(200, link)
        return Reply(200, links)

    def _get_remote_link(self, request: Request, match: re.Match[str]) -> Reply:
        with self.lock:
            issue = self._find(match.group("key"))
            links = self.remote_links.get(issue["id"], []) if issue else []
            link = next((x for x in links if str(x["id"]) == match.group("id")), None)
            found = copy.deepcopy(link) if link else None
        if found is None:
            return jira_error(404, f"No remote link with id '{match.group('id')}'.")
        return Reply(200, found)

    def _add_remote_link(self, request: Request, match: re.Match[str]) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        target = body.get("object")
        errors: dict[str, str] = {}
        if not isinstance(target, dict):
            errors["object"] = "The remote link's 'object' is required."
        else:
            if not target.get("url"):
                errors["url"] = "Remote link url must be specified."
            if not target.get("title"):
                errors["title"] = "Remote link title must be specified."
        if errors:
            return field_errors(errors)
        with self.lock:
            issue = self._find(match.group("key"))
            if issue is None:
                return jira_error(404, NOT_FOUND)
            links = self.remote_links.setdefault(issue["id"], [])
            global_id = body.get("globalId")
            existing = next(
                (x for x in links if global_id and x.get("globalId") == global_id), None
            )
            if existing is not None:
                link_id = existing["id"]
            else:
                self._next_link += 1
                link_id = self._next_link
            link: dict[str, Any] = {
                "id": link_id,
                "self": f"{self.url}/rest/api/2/issue/{issue['key']}/remotelink/{link_id}",
            }
            for name in ("globalId", "application", "relationship"):
                if body.get(name) is not None:
                    link[name] = body[name]
            link.setdefault("application", {})
            link["object"] = copy.deepcopy(target)
            if existing is not None:
                links[links.index(existing)] = link  # fields left out are gone, as in Jira
            else:
                links.append(link)
            issue["fields"]["updated"] = _jira_time(self.now())
        return Reply(200 if existing is not None else 201, {"id": link_id, "self": link["self"]})

    def _application_links(self, request: Request, match: re.Match[str]) -> Reply:
        if request.user not in self.admins:
            return Reply(
                401,
                {
                    "message": "Client must be authenticated as an administrator to access "
                    "this resource.",
                    "status-code": 401,
                },
            )
        return Reply(200, {"list": []})

    # -- transitions -------------------------------------------------------------------------

    def _get_transitions(self, request: Request, match: re.Match[str]) -> Reply:
        with self.lock:
            issue = self._find(match.group("key"))
            if issue is None:
                return jira_error(404, NOT_FOUND)
            category = issue["fields"]["status"]["statusCategory"]["key"]
        wanted = _one(request.query, "transitionId")
        transitions = [
            {
                "id": transition_id,
                "name": name,
                "to": self._status_json(target),
                "hasScreen": STATUSES[target][1] == "done",
                "isGlobal": False,
                "isInitial": False,
                "isAvailable": True,
                "isConditional": False,
                "isLooped": False,
            }
            for transition_id, name, target, sources in TRANSITIONS
            if category in sources and wanted in (None, transition_id)
        ]
        return Reply(200, {"expand": "transitions", "transitions": transitions})

    def _do_transition(self, request: Request, match: re.Match[str]) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        wanted = body.get("transition")
        transition_id = wanted.get("id") if isinstance(wanted, dict) else None
        if transition_id is None:
            return jira_error(400, "Missing 'transition' identifier")
        given = body.get("fields") or {}
        update = body.get("update") or {}
        with self.lock:
            issue = self._find(match.group("key"))
            if issue is None:
                return jira_error(404, NOT_FOUND)
            category = issue["fields"]["status"]["statusCategory"]["key"]
            transition = next(
                (t for t in TRANSITIONS if t[0] == str(transition_id) and category in t[3]), None
            )
            if transition is None:
                return jira_error(
                    400, f"Transition id '{transition_id}' is not valid for this issue."
                )
            target = transition[2]
            done = STATUSES[target][1] == "done"
            resolution = "Done" if done else None
            errors: dict[str, str] = {}
            for name, value in (given if isinstance(given, dict) else {}).items():
                if name == "resolution" and done:
                    resolution = self._resolution_name(value)
                    if resolution is None:
                        errors[name] = "Resolution is not valid."
                else:
                    errors[name] = NOT_SETTABLE.format(name)
            new_comments: list[str] = []
            for name, operations in (update if isinstance(update, dict) else {}).items():
                if name != "comment" or not isinstance(operations, list):
                    errors[name] = NOT_SETTABLE.format(name)
                    continue
                for operation in operations:
                    self._update_operation({}, name, operation, errors, new_comments)
            if errors:
                return field_errors(errors)
            self._apply_status(issue["fields"], target, resolution)
            for text in new_comments:
                self._add_comment_locked(issue, text, request.user)
        return Reply(204)

    # -- Jira Software: boards and sprints ---------------------------------------------------

    def _board_sprints(self, request: Request, match: re.Match[str]) -> Reply:
        board_id = int(match.group("board"))
        start = _int(_one(request.query, "startAt"), 0)
        size = min(_int(_one(request.query, "maxResults"), AGILE_PAGE), AGILE_PAGE)
        if start < 0 or size < 0:
            return jira_error(400, "startAt and maxResults must not be negative.")
        states = [s.strip() for s in (_one(request.query, "state") or "").split(",") if s.strip()]
        if bad := [s for s in states if s not in SPRINT_STATES]:
            return jira_error(
                400, f"The state '{bad[0]}' is not valid. Valid states: future, active, closed."
            )
        with self.lock:
            board = self.boards.get(board_id)
            if board is None:
                return jira_error(404, BOARD_NOT_FOUND)
            if board["type"] != "scrum":
                return jira_error(400, "The board does not support sprints")
            found = [
                {k: v for k, v in sprint.items() if k != "issues"}
                for sprint in self.sprints.values()
                if sprint["originBoardId"] == board_id and (not states or sprint["state"] in states)
            ]
        page = found[start : start + size]
        body = {
            "maxResults": size,
            "startAt": start,
            "isLast": start + size >= len(found),
            "values": page,
        }
        return Reply(200, body)

    def _sprint_issues(self, request: Request, match: re.Match[str]) -> Reply:
        sprint_id = int(match.group("sprint"))
        body = request.body if isinstance(request.body, dict) else {}
        wanted = body.get("issues")
        if not isinstance(wanted, list) or not wanted:
            return jira_error(400, "You must provide the issues to move to the sprint.")
        if len(wanted) > AGILE_PAGE:
            return jira_error(400, f"At most {AGILE_PAGE} issues can be moved in one operation.")
        with self.lock:
            sprint = self.sprints.get(sprint_id)
            if sprint is None:
                return jira_error(404, f"Sprint with id {sprint_id} does not exist.")
            if sprint["state"] == "closed":
                return jira_error(400, "Issues can only be moved to open or active sprints.")
            issues = [self._find(str(w)) for w in wanted]
            if any(issue is None for issue in issues):
                return jira_error(400, NOT_FOUND)
            for issue in issues:
                assert issue is not None
                key = issue["key"]
                for other in self.sprints.values():  # one open sprint at a time
                    if (
                        other is not sprint
                        and other["state"] != "closed"
                        and key in other["issues"]
                    ):
                        other["issues"].remove(key)
                if key not in sprint["issues"]:
                    sprint["issues"].append(key)
        return Reply(204)

    # -- search ------------------------------------------------------------------------------

    def _search(self, request: Request, match: re.Match[str]) -> Reply:
        if self.cloud:
            return jira_error(410, SEARCH_GONE)
        params = self._search_params(request)
        start = _int(params.get("startAt"), 0)
        size = min(_int(params.get("maxResults"), 50), self.max_results)
        if start < 0 or size < 0:
            return jira_error(400, "startAt and maxResults must not be negative.")
        validate = str(params.get("validateQuery", "strict")).lower()
        issues, warnings = self._run_jql(
            str(params.get("jql") or ""), strict=validate in ("strict", "true")
        )
        page = issues[start : start + size]
        fields = _list_param(params.get("fields"))
        body: dict[str, Any] = {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": size,
            "total": len(issues),
            "issues": [self._render(issue, match.group("v"), fields) for issue in page],
        }
        if warnings and validate == "warn":
            body["warningMessages"] = warnings
        return Reply(200, body)

    def _search_jql(self, request: Request, match: re.Match[str]) -> Reply:
        if not self.cloud:
            return Reply(404, "<html><body><h1>Not Found</h1></body></html>")
        params = self._search_params(request)
        jql = str(params.get("jql") or "")
        size = min(_int(params.get("maxResults"), 50), self.max_results)
        token = params.get("nextPageToken")
        start: int | None = _token_offset(str(token), jql) if token else 0
        if start is None:
            return jira_error(400, "The provided next page token is invalid or expired.")
        if not parse_jql(jql).clauses:
            return jira_error(
                400,
                "Unbounded JQL queries are not allowed here. Please add a search restriction "
                "to your query.",
            )
        issues, _ = self._run_jql(jql, strict=True)
        page = issues[start : start + size]
        fields = _list_param(params.get("fields"))
        rendered = [
            self._render(issue, match.group("v"), fields) if fields else {"id": issue["id"]}
            for issue in page
        ]
        body: dict[str, Any] = {"issues": rendered}
        if start + size < len(issues):
            body["nextPageToken"] = _page_token(start + size, jql)
        body["isLast"] = start + size >= len(issues)
        return Reply(200, body)

    def _search_params(self, request: Request) -> dict[str, Any]:
        if request.method == "POST":
            return dict(request.body) if isinstance(request.body, dict) else {}
        params: dict[str, Any] = {k: v[-1] for k, v in request.query.items()}
        if "fields" in request.query:
            params["fields"] = request.query["fields"]
        return params

    def _run_jql(self, text: str, *, strict: bool) -> tuple[list[dict[str, Any]], list[str]]:
        jql = parse_jql(text)
        tests: list[Callable[[dict[str, Any]], bool]] = []
        warnings: list[str] = []
        for clause in jql.clauses:
            tests.append(self._clause_test(clause, strict, warnings))
        with self.lock:
            issues = [
                copy.deepcopy(issue)
                for issue in self.issues.values()
                if all(test(issue) for test in tests)
            ]
        for name, descending in reversed(jql.order or (("key", True),)):
            issues.sort(key=functools.partial(_order_value, name=name), reverse=descending)
        return issues, warnings

    def _clause_test(
        self, clause: Clause, strict: bool, warnings: list[str]
    ) -> Callable[[dict[str, Any]], bool]:
        """A test for one clause; a value that does not exist is a JqlError when `strict`, else
        a warning and a value nothing has (as Jira's validateQuery=warn/false do)."""
        field_name, op, values = clause.field, clause.op, clause.values
        negate = op in ("!=", "not in", "is not")
        if field_name in ("updated", "created", "resolutiondate"):
            moment = self._jql_date(values[0], clause.name)
            compare: Callable[[datetime, datetime], bool] = {
                "=": lambda a, b: a == b,
                ">": lambda a, b: a > b,
                ">=": lambda a, b: a >= b,
                "<": lambda a, b: a < b,
                "<=": lambda a, b: a <= b,
            }[op]

            def dated(issue: dict[str, Any]) -> bool:
                stamp = issue["fields"].get(field_name)
                return stamp is not None and compare(_parse_jira_time(stamp), moment)

            return dated
        if op in ("is", "is not"):
            if field_name == "labels":
                return lambda issue: bool(issue["fields"].get("labels")) == negate
            return lambda issue: (issue["fields"].get("resolution") is not None) == negate
        if field_name == "labels":
            wanted_labels = set(values)
            return lambda issue: bool(wanted_labels & set(issue["fields"].get("labels") or []))
        matchers: list[Callable[[dict[str, Any]], bool]] = []
        for value in values:
            try:
                matchers.append(self._jql_value(field_name, clause.name, value))
            except JqlError as error:
                if strict or not error.soft:
                    raise
                warnings.append(error.message)

        def listed(issue: dict[str, Any]) -> bool:
            return any(m(issue) for m in matchers) != negate

        return listed

    def _jql_value(
        self, field_name: str, name: str, value: str
    ) -> Callable[[dict[str, Any]], bool]:
        """A test for `field = value`, or a JqlError when the value does not exist."""
        lowered = value.lower()
        if field_name == "project":
            with self.lock:
                project = next(
                    (
                        p
                        for p in self.projects.values()
                        if lowered in (p["key"].lower(), p["name"].lower(), p["id"])
                    ),
                    None,
                )
            if project is None:
                raise JqlError(
                    f"The value '{value}' does not exist for the field '{name}'.", soft=True
                )
            key = project["key"]
            return lambda issue: bool(issue["fields"]["project"]["key"] == key)
        if field_name == "key":
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*-\d+|\d+", value):
                raise JqlError(f"The issue key '{value}' for field '{name}' is invalid.")
            with self.lock:
                issue_found = self._find(value)
            if issue_found is None:
                raise JqlError(
                    f"An issue with key '{value}' does not exist for field '{name}'.", soft=True
                )
            issue_id = issue_found["id"]
            return lambda issue: bool(issue["id"] == issue_id)
        if field_name == "status":
            status = next((s for s, (i, _) in STATUSES.items() if lowered in (s.lower(), i)), None)
            if status is None:
                raise JqlError(
                    f"The value '{value}' does not exist for the field '{name}'.", soft=True
                )
            return lambda issue: bool(issue["fields"]["status"]["name"] == status)
        if field_name == "statuscategory":
            category = next(
                (
                    c["key"]
                    for c in CATEGORIES.values()
                    if lowered in (c["key"], c["name"].lower(), str(c["id"]))
                ),
                None,
            )
            if category is None:
                raise JqlError(
                    f"The value '{value}' does not exist for the field '{name}'.", soft=True
                )
            return lambda issue: bool(
                issue["fields"]["status"]["statusCategory"]["key"] == category
            )
        # resolution
        if lowered == "unresolved":
            return lambda issue: issue["fields"].get("resolution") is None
        resolution = self._resolution_name({"name": value}) or self._resolution_name({"id": value})
        if resolution is None:
            raise JqlError(f"The value '{value}' does not exist for the field '{name}'.", soft=True)
        return lambda issue: bool(
            (issue["fields"].get("resolution") or {}).get("name") == resolution
        )

    def _jql_date(self, value: str, name: str) -> datetime:
        relative = _RELATIVE.fullmatch(value.strip())
        if relative:
            amount = sum(
                (int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)\s*([wdhm])", value)),
                timedelta(),
            )
            return self.now() + (-amount if relative.group(1) == "-" else amount)
        for pattern in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(value.strip(), pattern)
            except ValueError:
                continue
            return parsed.replace(tzinfo=ZoneInfo(self.time_zone))
        raise JqlError(
            f"Date value '{value}' for field '{name}' is invalid. Valid formats include: "
            "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
            "format e.g. '-5d', '4w 2d'."
        )

    # -- users -------------------------------------------------------------------------------

    def _user_search(self, request: Request, match: re.Match[str]) -> Reply:
        query = request.query
        if self.cloud:
            if "username" in query:
                return jira_error(
                    400, "The query parameter 'username' is not supported in GDPR strict mode."
                )
            text = _one(query, "query")
            if not text:
                return jira_error(400, "One of 'accountId', 'query' or 'property' must be given.")
        else:
            text = _one(query, "username")
            if not text:
                return jira_error(400, "The username query parameter was not provided")
        active = _bool(_one(query, "includeActive"), True)
        inactive = _bool(_one(query, "includeInactive"), False)
        wanted = text.lower()
        with self.lock:
            people = sorted(self.people.values(), key=lambda p: str(p["name"]))
            found = [
                self._user_json(p)
                for p in people
                if (active if p["active"] else inactive)
                and (
                    p["emailAddress"].lower().startswith(wanted)
                    or any(w.lower().startswith(wanted) for w in p["displayName"].split())
                    or p["displayName"].lower().startswith(wanted)
                    or (not self.cloud and p["name"].lower().startswith(wanted))
                    or (self.cloud and p["accountId"] == text)
                )
            ]
        start = _int(_one(query, "startAt"), 0)
        size = min(_int(_one(query, "maxResults"), 50), 1000)
        return Reply(200, found[start : start + size])

    def _get_user(self, request: Request, match: re.Match[str]) -> Reply:
        wanted = _one(request.query, "accountId" if self.cloud else "username") or ""
        with self.lock:
            person = (
                next((p for p in self.people.values() if p["accountId"] == wanted), None)
                if self.cloud
                else self.people.get(wanted)
            )
        if person is None:
            if self.cloud:
                return jira_error(
                    404, "Specified user does not exist or you do not have permission."
                )
            return jira_error(404, f"The user named '{wanted}' does not exist")
        return Reply(200, self._user_json(person))

    def _assign(self, request: Request, match: re.Match[str]) -> Reply:
        errors: dict[str, str] = {}
        ok, person = self._resolve_user(request.body, "assignee", errors)
        if not ok:
            return field_errors(errors)
        with self.lock:
            issue = self._find(match.group("key"))
            if issue is None:
                return jira_error(404, NOT_FOUND)
            issue["fields"]["assignee"] = self._user_json(person) if person else None
            issue["fields"]["updated"] = _jira_time(self.now())
        return Reply(204)

    # -- shapes ------------------------------------------------------------------------------

    def _find(self, key_or_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.issues.get(key_or_id) or self.issues.get(key_or_id.upper())
            if found is None:
                found = next((i for i in self.issues.values() if i["id"] == key_or_id), None)
            return found

    def _render(self, issue: dict[str, Any], version: str, requested: list[str]) -> dict[str, Any]:
        issue = copy.deepcopy(issue)
        fields = issue["fields"]
        if version == "3":
            fields["description"] = _adf(fields.get("description"))
            for comment in fields.get("comment", {}).get("comments", []):
                comment["body"] = _adf(comment["body"])
        issue["fields"] = _select_fields(fields, requested)
        return issue

    def _new_fields(
        self, project_key: str, issue_type: str, created: datetime, **values: Any
    ) -> dict[str, Any]:
        now = _jira_time(created)
        fields: dict[str, Any] = {
            "summary": None,
            "description": None,
            "issuetype": self._issue_type_json(issue_type),
            "project": self._project_json(self.projects[project_key]),
            "labels": [],
            "priority": self._priority_json(DEFAULT_PRIORITY),
            "duedate": None,
            "assignee": None,
            "reporter": None,
            "created": now,
            "updated": now,
            "comment": {"comments": [], "maxResults": 0, "total": 0, "startAt": 0},
        }
        if not self.cloud:
            fields[EPIC_LINK] = None
        fields.update(values)
        return fields

    def _apply_status(self, fields: dict[str, Any], status: str, resolution: str | None) -> None:
        fields["status"] = self._status_json(status)
        now = _jira_time(self.now())
        if resolution is None:
            fields["resolution"] = None
            fields["resolutiondate"] = None
        else:
            resolution_id, description = RESOLUTIONS[resolution]
            fields["resolution"] = {
                "self": f"{self.url}/rest/api/2/resolution/{resolution_id}",
                "id": resolution_id,
                "description": description,
                "name": resolution,
            }
            fields["resolutiondate"] = now
        fields["updated"] = now

    def _status_json(self, status: str) -> dict[str, Any]:
        status_id, category = STATUSES[status]
        return {
            "self": f"{self.url}/rest/api/2/status/{status_id}",
            "description": "",
            "iconUrl": f"{self.url}/images/icons/statuses/generic.png",
            "name": status,
            "id": status_id,
            "statusCategory": {
                "self": f"{self.url}/rest/api/2/statuscategory/{CATEGORIES[category]['id']}",
                **CATEGORIES[category],
            },
        }

    def _priority_json(self, name: str) -> dict[str, Any]:
        priority_id = PRIORITIES[name]
        return {
            "self": f"{self.url}/rest/api/2/priority/{priority_id}",
            "iconUrl": f"{self.url}/images/icons/priorities/{name.lower()}.svg",
            "name": name,
            "id": priority_id,
        }

    def _issue_type_json(self, name: str) -> dict[str, Any]:
        type_id, subtask = ISSUE_TYPES.get(name, ("10001", False))
        shape: dict[str, Any] = {
            "self": f"{self.url}/rest/api/2/issuetype/{type_id}",
            "id": type_id,
            "description": "",
            "iconUrl": f"{self.url}/images/icons/issuetypes/{name.lower()}.svg",
            "name": name,
            "subtask": subtask,
        }
        if self.cloud:
            shape["hierarchyLevel"] = -1 if subtask else (1 if name == "Epic" else 0)
        return shape

    def _issue_types(self, project: dict[str, Any]) -> list[dict[str, Any]]:
        return [self._issue_type_json(name) for name in ISSUE_TYPES]

    def _project_json(self, project: dict[str, Any]) -> dict[str, Any]:
        return {**project, "self": f"{self.url}/rest/api/2/project/{project['id']}"}

    def _project_for(self, value: Any) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            return None
        wanted = value.get("key") or value.get("id")
        return next(
            (
                p
                for p in self.projects.values()
                if wanted is not None and str(wanted) in (p["key"], p["id"])
            ),
            None,
        )

    def _issue_type_name(self, value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
        if "name" in value:
            return str(value["name"]) if value["name"] in ISSUE_TYPES else None
        return next((n for n, (i, _) in ISSUE_TYPES.items() if i == str(value.get("id"))), None)

    def _resolution_name(self, value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
        if "name" in value:
            return next((n for n in RESOLUTIONS if n.lower() == str(value["name"]).lower()), None)
        return next((n for n, (i, _) in RESOLUTIONS.items() if i == str(value.get("id"))), None)

    def _user_json(self, person: dict[str, Any] | None) -> dict[str, Any] | None:
        if person is None:
            return None
        avatars = {
            size: f"{self.url}/secure/useravatar?size={label}&avatarId=10122"
            for size, label in (("48x48", "large"), ("24x24", "small"), ("16x16", "xsmall"))
        }
        if self.cloud:
            return {
                "self": f"{self.url}/rest/api/2/user?accountId={person['accountId']}",
                "accountId": person["accountId"],
                "accountType": "atlassian",
                "emailAddress": person["emailAddress"],
                "avatarUrls": avatars,
                "displayName": person["displayName"],
                "active": person["active"],
                "timeZone": person["timeZone"],
            }
        return {
            "self": f"{self.url}/rest/api/2/user?username={quote(person['name'])}",
            "name": person["name"],
            "key": person["key"],
            "emailAddress": person["emailAddress"],
            "avatarUrls": avatars,
            "displayName": person["displayName"],
            "active": person["active"],
            "timeZone": person["timeZone"],
        }


# -- helpers -------------------------------------------------------------------------------------


def _select_fields(fields: dict[str, Any], requested: list[str]) -> dict[str, Any]:
    """Jira's `fields` parameter: comma lists, *all / *navigable, -name to leave one out."""
    names = [n.strip() for value in requested for n in value.split(",") if n.strip()]
    wanted = {n for n in names if not n.startswith("-")}
    excluded = {n[1:] for n in names if n.startswith("-")}
    every = not wanted or bool(wanted & {"*all", "*navigable"})
    return {
        name: value
        for name, value in fields.items()
        if (every or name in wanted) and name not in excluded
    }


def _jira_time(moment: datetime) -> str:
    """Jira's timestamp format: 2026-11-22T16:20:00.000+0000."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _parse_jira_time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z")


def _order_value(issue: dict[str, Any], name: str) -> Any:
    if name == "key":
        project, _, number = issue["key"].rpartition("-")
        return (project, int(number))
    stamp = issue["fields"].get(name)
    return _parse_jira_time(stamp) if stamp else datetime.min.replace(tzinfo=UTC)


def _is_date(value: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc"


def _adf(text: str | None) -> dict[str, Any] | None:
    """Plain text as an Atlassian Document (one paragraph a line), as v3 answers rich text."""
    if text is None:
        return None
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
        for line in text.split("\n")
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


def _text_of(value: Any) -> str | None:
    """A string as it is; an Atlassian Document's text, a line per paragraph."""
    if value is None or isinstance(value, str):
        return value

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if node.get("type") == "text":
                yield str(node.get("text", ""))
            for child in node.get("content", []) or []:
                yield from walk(child)

    if _is_adf(value):
        return "\n".join("".join(walk(block)) for block in value.get("content", []))
    return json.dumps(value)


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _int(value: Any, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _bool(value: str | None, default: bool) -> bool:
    return default if value is None else value.lower() == "true"


def _list_param(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _page_token(offset: int, jql: str) -> str:
    digest = hashlib.sha1(jql.encode()).hexdigest()[:12]
    return base64.urlsafe_b64encode(json.dumps({"at": offset, "q": digest}).encode()).decode()


def _token_offset(token: str, jql: str) -> int | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(data, dict) or data.get("q") != hashlib.sha1(jql.encode()).hexdigest()[:12]:
        return None
    offset = data.get("at")
    return offset if isinstance(offset, int) and offset >= 0 else None


API = r"/rest/api/(?P<v>2|3|latest)"
AGILE = r"/rest/agile/1\.0"
ISSUE = rf"{API}/issue/(?P<key>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("GET", re.compile(rf"{API}/serverInfo"), JiraServer._server_info),
    ("GET", re.compile(rf"{API}/field"), JiraServer._fields),
    ("GET", re.compile(rf"{API}/project/(?P<project>[^/]+)"), JiraServer._project),
    ("GET", re.compile(rf"{API}/myself"), JiraServer._myself),
    ("POST", re.compile(rf"{API}/issue"), JiraServer._create_issue),
    ("GET", re.compile(ISSUE), JiraServer._get_issue),
    ("PUT", re.compile(ISSUE), JiraServer._edit_issue),
    ("GET", re.compile(rf"{ISSUE}/comment"), JiraServer._get_comments),
    ("POST", re.compile(rf"{ISSUE}/comment"), JiraServer._add_comment),
    ("GET", re.compile(rf"{ISSUE}/comment/(?P<id>[^/]+)"), JiraServer._get_comment),
    ("GET", re.compile(rf"{ISSUE}/remotelink"), JiraServer._get_remote_links),
    ("POST", re.compile(rf"{ISSUE}/remotelink"), JiraServer._add_remote_link),
    ("GET", re.compile(rf"{ISSUE}/remotelink/(?P<id>[^/]+)"), JiraServer._get_remote_link),
    ("GET", re.compile(rf"{ISSUE}/transitions"), JiraServer._get_transitions),
    ("POST", re.compile(rf"{ISSUE}/transitions"), JiraServer._do_transition),
    ("PUT", re.compile(rf"{ISSUE}/assignee"), JiraServer._assign),
    ("GET", re.compile(rf"{API}/search"), JiraServer._search),
    ("POST", re.compile(rf"{API}/search"), JiraServer._search),
    ("GET", re.compile(rf"{API}/search/jql"), JiraServer._search_jql),
    ("POST", re.compile(rf"{API}/search/jql"), JiraServer._search_jql),
    ("GET", re.compile(rf"{API}/user/search"), JiraServer._user_search),
    ("GET", re.compile(rf"{API}/user"), JiraServer._get_user),
    (
        "GET",
        re.compile(r"/rest/applinks/(?:latest|[\d.]+)/listApplicationlinks"),
        JiraServer._application_links,
    ),
    ("GET", re.compile(rf"{AGILE}/board/(?P<board>\d{{1,10}})/sprint"), JiraServer._board_sprints),
    (
        "POST",
        re.compile(rf"{AGILE}/sprint/(?P<sprint>\d{{1,10}})/issue"),
        JiraServer._sprint_issues,
    ),
]
ANONYMOUS: set[Handler] = {JiraServer._server_info}  # routes Jira answers without credentials


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up (timeouts, dropped connections) are not errors worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def _handler_for(jira: JiraServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "JiraTest/1"
        disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms ACK waits

        def setup(self) -> None:
            super().setup()
            with jira.lock:
                jira._connections.add(self.connection)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                with jira.lock:
                    jira._connections.discard(self.connection)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def do_PUT(self) -> None:
            self._answer("PUT")

        def do_DELETE(self) -> None:
            self._answer("DELETE")

        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            parts = urlsplit(self.path)
            reply = jira.handle(
                method,
                parts.path,
                parse_qs(parts.query, keep_blank_values=True),
                self.headers.get("Authorization"),
                body,
            )
            if reply.status == 0:  # a dropped connection: no answer at all
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply.body is None:
                payload, kind = b"", None
            elif isinstance(reply.body, str):
                payload, kind = reply.body.encode(), "text/html;charset=UTF-8"
            else:
                payload, kind = json.dumps(reply.body).encode(), "application/json;charset=UTF-8"
            try:
                self.send_response(reply.status)
                if kind:
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (a timeout) or the server went down()
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the requests are kept in jira.requests

    return _Handler


__all__ = [
    "CATEGORIES",
    "EPIC_LINK",
    "ISSUE_TYPES",
    "NOT_SETTABLE",
    "PRIORITIES",
    "RESOLUTIONS",
    "STATUSES",
    "TRANSITIONS",
    "Fault",
    "Faults",
    "JiraServer",
    "Jql",
    "JqlError",
    "Reply",
    "Request",
    "field_errors",
    "jira_error",
    "parse_jql",
]
