"""A small Jira-compatible REST server for the tests, on 127.0.0.1 (a free port, a thread).

    with JiraServer(users={"bot@example.com": "s3cret"}) as jira:
        jira.add_issue("PM-1", summary="Add a canary stage")        # To Do, unresolved
        jira.set_status("PM-1", "Done", resolution="Fixed")
        ... JIRA(jira.url, basic_auth=("bot@example.com", "s3cret")).issue("PM-1") ...
        assert jira.requests[-1].path == "/rest/api/2/issue/PM-1"

No usable open-source Jira emulator exists (see /work/shared/reference/jira-client-contract.md),
so this serves what our code calls, in the shapes Atlassian documents for REST v2 (and the same
under /rest/api/3, which differs only for rich-text fields we do not serve):

- GET /rest/api/{2,3}/serverInfo: baseUrl, version, versionNumbers, deploymentType ("Server"
  by default; "Cloud" changes the `jira` library's behaviour), buildNumber, serverTime, ...
  Anonymous access is allowed, as in Jira; wrong credentials are not.
- GET /rest/api/{2,3}/issue/{key}?fields=a,b: id, key, self and `fields`, filtered like Jira
  (`*all`/`*navigable` or absent: every field; `-name` leaves one out; unknown names are
  ignored). `fields.status` is {self, description, iconUrl, name, id, statusCategory{self, id,
  key, colorName, name}}; `fields.resolution` is null or {self, id, description, name};
  `fields.resolutiondate` follows it. An unknown key is a 404 with Jira's error JSON:
  {"errorMessages": ["Issue does not exist or you do not have permission to see it."],
  "errors": {}}.
- Basic auth against `users`: wrong or missing credentials are a 401 with
  `WWW-Authenticate: Basic realm="protected-area"`, `X-Seraph-LoginReason:
  AUTHENTICATED_FAILED` and {"errorMessages": ["You are not authenticated. ..."]}. (Real Jira
  Cloud answers anonymous issue reads with the 404 above instead; we keep 401, which is what a
  missing or wrong token looks like to a client that sends one.)

Anything else is a 404 text/html "Not Found" page, like a web server that is not Jira.

To grow it (the full Jira sync adds create, transition, comment, search, ...): add a method
`_name(self, request, match) -> Reply` and a line in ROUTES; keep state in `issues` (by key,
under `lock`) and answer in Atlassian's documented shapes. Every request is kept in `requests`
(method, path, query, user) so tests can assert on what a client called.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.daemon import LoopbackThreadServer

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
NOT_FOUND = "Issue does not exist or you do not have permission to see it."
NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."
ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"


@dataclass(frozen=True)
class Request:
    """One request as the server saw it (for assertions)."""

    method: str
    path: str
    query: dict[str, list[str]]
    user: str | None  # who authenticated; None when anonymous or refused
    body: Any = None  # the JSON sent (or its text when not JSON), None without a body


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-encoded unless str (sent as text/html)
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["JiraServer", Request, "re.Match[str]"], Reply]


def jira_error(status: int, *messages: str, **errors: str) -> Reply:
    """Jira's error shape: {"errorMessages": [...], "errors": {field: message}}."""
    return Reply(status, {"errorMessages": list(messages), "errors": errors})


class JiraServer(LoopbackThreadServer):
    """A threaded HTTP server on 127.0.0.1; a context manager. See the module docstring."""

    name = "the Jira server"

    def __init__(
        self,
        users: dict[str, str] | None = None,
        *,
        deployment_type: str = "Server",
        version: tuple[int, int, int] = (9, 12, 0),
    ) -> None:
        super().__init__()
        self.users = dict(users or {"followthrough@example.com": "jira-token"})
        self.deployment_type = deployment_type
        self.version = version
        self.issues: dict[str, dict[str, Any]] = {}  # key -> the issue as GET returns it
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self._next_id = 10000

    # -- lifecycle (the rest is LoopbackThreadServer's) --------------------------------------

    def open(self) -> tuple[ThreadingHTTPServer, threading.Thread]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="jira-server", daemon=True)
        thread.start()
        return server, thread

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT, the base URL a client is given (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    # -- test-side state ---------------------------------------------------------------------

    def add_issue(
        self,
        key: str,
        *,
        summary: str = "An action item",
        status: str = "To Do",
        resolution: str | None = None,
        issue_type: str = "Task",
    ) -> dict[str, Any]:
        """Make (or replace) an issue; its project is the key's prefix."""
        project = key.rsplit("-", 1)[0]
        now = _jira_time(datetime.now(UTC))
        with self.lock:
            self._next_id += 1
            issue_id = str(self._next_id)
            self.issues[key] = {
                "expand": ISSUE_EXPAND,
                "id": issue_id,
                "self": f"{self.url}/rest/api/2/issue/{issue_id}",
                "key": key,
                "fields": {
                    "summary": summary,
                    "issuetype": {"id": "10001", "name": issue_type, "subtask": False},
                    "project": {"id": "10000", "key": project, "name": project},
                    "created": now,
                    "updated": now,
                },
            }
        self.set_status(key, status, resolution=resolution)
        return self.issue(key)

    def set_status(self, key: str, status: str, *, resolution: str | None = None) -> None:
        """Move an issue to a status (one of STATUSES) with a resolution (one of RESOLUTIONS) or
        none; what a transition in Jira's UI does."""
        status_id, category = STATUSES[status]
        with self.lock:
            fields = self.issues[key]["fields"]
            fields["status"] = {
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
            now = _jira_time(datetime.now(UTC))
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

    def issue(self, key: str) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.issues[key]))  # type: ignore[no-any-return]

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
        request = Request(method, path, query, user, body)
        with self.lock:
            self.requests.append(request)
        for route_method, pattern, handler in ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                if refused or (user is None and handler not in ANONYMOUS):
                    return self._unauthenticated()
                return handler(self, request, match)
        return Reply(404, "<html><body><h1>Not Found</h1></body></html>")

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
                "serverTime": _jira_time(datetime.now(UTC)),
                "scmInfo": "0000000000000000000000000000000000000000",
                "serverTitle": "Jira (Followthrough tests)",
            },
        )

    def _get_issue(self, request: Request, match: re.Match[str]) -> Reply:
        key = match.group("key")
        with self.lock:
            found = self.issues.get(key) or next(
                (issue for issue in self.issues.values() if issue["id"] == key), None
            )
            issue = json.loads(json.dumps(found)) if found else None
        if issue is None:
            return jira_error(404, NOT_FOUND)
        issue["fields"] = _select_fields(issue["fields"], request.query.get("fields", []))
        return Reply(200, issue)


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
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


API = r"/rest/api/(?:2|3|latest)"
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("GET", re.compile(rf"{API}/serverInfo"), JiraServer._server_info),
    ("GET", re.compile(rf"{API}/issue/(?P<key>[^/]+)"), JiraServer._get_issue),
]
ANONYMOUS: set[Handler] = {JiraServer._server_info}  # routes Jira answers without credentials


def _handler_for(jira: JiraServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "JiraTest/1"

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
                method, parts.path, parse_qs(parts.query), self.headers.get("Authorization"), body
            )
            if isinstance(reply.body, str):
                payload, kind = reply.body.encode(), "text/html;charset=UTF-8"
            else:
                payload, kind = json.dumps(reply.body).encode(), "application/json;charset=UTF-8"
            self.send_response(reply.status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the requests are kept in jira.requests

    return _Handler


__all__ = ["CATEGORIES", "RESOLUTIONS", "STATUSES", "JiraServer", "Reply", "Request", "jira_error"]
