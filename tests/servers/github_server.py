"""A small GitHub-REST-compatible server for the tests, on 127.0.0.1 (a free port, a thread).

    with GitHubServer(tokens={"ghp_test"}, users={"bob"}, repos={"acme/payments"}) as github:
        gh = GitHub("ghp_test", base_url=github.url)              # githubkit, as production
        github.close_issue("acme/payments", 1, reason="completed", by="bob")
        assert github.count("POST", "/repos/acme/payments/issues") == 1

It serves what our GitHub tracker calls, in the shapes GitHub documents for REST v3 (the
github/rest-api-description OpenAPI and docs.github.com), over real HTTP, so that `githubkit`
talks to it exactly as it talks to api.github.com.

The REST API
- Auth: `Authorization: Bearer <token>` or `token <token>`; a token not in `tokens` (or none) is
  401 {"message": "Bad credentials", "documentation_url", "status": "401"}.
- Rate limits: every answer carries x-ratelimit-limit/-remaining/-used/-reset/-resource. When
  the remaining count is spent (`exhaust_rate_limit()`), 403 with x-ratelimit-remaining: 0 and
  "API rate limit exceeded for ..." until the reset; `secondary_limit_next(n, retry_after,
  status=403 or 429)` answers "You have exceeded a secondary rate limit" with Retry-After.
- Repositories (`repos`, owner/name, matched without regard to case as GitHub does, answered
  in their own spelling); an unknown one is 404 {"message": "Not Found"}.
- Issues: GET /repos/{o}/{r}/issues (state open|closed|all, default open; labels: comma-separated,
  an issue must carry all; since: updated at or after; sort created|updated, direction asc|desc,
  default created desc; per_page at most 100, default 30; page; a Link header with next, last,
  first, prev as GitHub sends). POST /repos/{o}/{r}/issues {title, body, labels, assignees,
  assignee, milestone} (201; labels that do not exist are created; numbers count up per
  repository). GET/PATCH /repos/{o}/{r}/issues/{n} (title, body, state open|closed,
  state_reason completed|not_planned|duplicate|reopened, labels (replace), assignees,
  milestone); closing sets closed_at and closed_by, reopening clears them.
- Comments: GET (paginated as above) and POST /repos/{o}/{r}/issues/{n}/comments {body}.
- Milestones: GET /repos/{o}/{r}/milestones (state open|closed|all, default open; paginated),
  POST {title, state, description, due_on} (201; a title in use is 422 already_exists).
- Labels: GET /repos/{o}/{r}/labels (paginated).
- Validation: 422 {"message": "Validation Failed", "errors": [{"resource", "field", "code",
  "value"}], "documentation_url", "status": "422"}: an assignee not in `users` (code invalid,
  field assignees), an unknown milestone number, a missing title ("Invalid request." and
  "\"title\" wasn't supplied."), a label over 50 characters, a title over 256.
Anything else is 404 {"message": "Not Found"}.

For the tests
- `requests`: (method, path, query, body) of every request, faulted ones too; `count()`.
- `fail_next(n, status=502, after_serving=False, method=None)`: the next n requests (of that
  method) fail; `after_serving`
  does the work first (a create that happened although the client saw an error).
- `race_next_create()`: the next POST /issues is preceded by a twin of it, as when another
  attempt created the same issue at the same moment.
- State helpers: `issue(repo, n)`, `issues(repo)`, `comments(repo, n)`, `milestones(repo)`,
  `add_issue(repo, ...)`, `add_comment(repo, n, body)`, `close_issue(repo, n, reason, by)`,
  `reopen_issue(repo, n)`.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.servers.daemon import LoopbackThreadServer

DOCS = "https://docs.github.com/rest"
RATE_LIMIT = 5000
MAX_PER_PAGE = 100
STATE_REASONS = ("completed", "not_planned", "duplicate", "reopened")


class Answer(Exception):
    """An error answer, raised anywhere in a route."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Answer:
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
    if errors is not None:
        body["errors"] = errors
    return Answer(status, body)


def _invalid(resource: str, field_name: str, code: str = "invalid", value: Any = None) -> Answer:
    error: dict[str, Any] = {"resource": resource, "field": field_name, "code": code}
    if value is not None:
        error["value"] = value
    return _error(422, "Validation Failed", [error])


@dataclass
class Repo:
    full_name: str
    id: int
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    milestones: dict[int, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_number: int = 1
    next_milestone: int = 1


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


class GitHubServer(LoopbackThreadServer):
    name = "the GitHub server"

    def __init__(
        self,
        *,
        tokens: set[str] | None = None,
        users: set[str] | None = None,
        repos: set[str] | None = None,
    ) -> None:
        super().__init__()
        self.lock = threading.RLock()
        self.tokens = set(tokens or {"ghp_test"})
        self.users = {"followthrough-bot", *(users or set())}
        self.repos: dict[str, Repo] = {}
        for number, name in enumerate(sorted(repos or {"acme/payments"}), start=1):
            self.repos[name.lower()] = Repo(full_name=name, id=1000 + number)
        self.requests: list[Request] = []
        self._ids = 5000
        self._remaining = RATE_LIMIT
        self._reset = int(time.time()) + 3600
        self._secondary: tuple[int, int, str] = (0, 403, "60")  # count, status, retry-after
        self._failing: tuple[int, int, bool, str | None] = (0, 502, False, None)
        self._race = False

    # -- the server ----------------------------------------------------------------------------

    def open(self) -> tuple[ThreadingHTTPServer, threading.Thread]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        return server, thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- faults --------------------------------------------------------------------------------

    def fail_next(
        self, n: int, status: int = 502, *, after_serving: bool = False, method: str | None = None
    ) -> None:
        """The next n requests (of `method`, if given) answer `status`."""
        with self.lock:
            self._failing = (n, status, after_serving, method)

    def secondary_limit_next(self, n: int, retry_after: int = 60, status: int = 403) -> None:
        with self.lock:
            self._secondary = (n, status, str(retry_after))

    def exhaust_rate_limit(self, reset_in: int = 120) -> None:
        with self.lock:
            self._remaining = 0
            self._reset = int(time.time()) + reset_in

    def race_next_create(self) -> None:
        with self.lock:
            self._race = True

    # -- state helpers -------------------------------------------------------------------------

    def repo(self, name: str) -> Repo:
        found = self.repos.get(name.lower())
        if found is None:
            raise _error(404, "Not Found")
        return found

    def issue(self, repo: str, number: int) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self._issue_json(self.repo(repo), number))

    def issues(self, repo: str) -> list[dict[str, Any]]:
        with self.lock:
            found = self.repo(repo)
            return [copy.deepcopy(self._issue_json(found, n)) for n in sorted(found.issues)]

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.repo(repo).comments.get(number, []))

    def milestones(self, repo: str) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(list(self.repo(repo).milestones.values()))

    def add_issue(self, repo: str, title: str, labels: list[str] | None = None) -> int:
        with self.lock:
            created = self._create(self.repo(repo), {"title": title, "labels": labels or []}, "x")
            return int(created["number"])

    def add_comment(self, repo: str, number: int, body: str, login: str = "bob") -> None:
        with self.lock:
            self._comment(self.repo(repo), number, {"body": body}, login)

    def close_issue(
        self, repo: str, number: int, reason: str = "completed", by: str = "bob"
    ) -> None:
        with self.lock:
            self._update(self.repo(repo), number, {"state": "closed", "state_reason": reason}, by)

    def reopen_issue(self, repo: str, number: int, by: str = "bob") -> None:
        with self.lock:
            self._update(self.repo(repo), number, {"state": "open"}, by)

    def count(self, method: str, path: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.method == method and r.path == path)

    # -- answering -----------------------------------------------------------------------------

    def answer(
        self, method: str, target: str, authorization: str, raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self.lock:
            self.requests.append(Request(method, parts.path, query, body))
            try:
                login = self._authenticate(authorization)
                self._rate_limit()
                failing, status, after, only = self._failing
                if failing > 0 and only in (None, method):
                    self._failing = (failing - 1, status, after, only)
                    if after:
                        self._route(method, parts.path, query, body, login)
                    raise _error(status, "Server Error" if status >= 500 else "Failed")
                code, answer, headers = self._route(method, parts.path, query, body, login)
            except Answer as refused:
                code, answer, headers = refused.status, refused.body, refused.headers
            return code, answer, {**self._limit_headers(), **headers}

    def _authenticate(self, authorization: str) -> str:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "token") or token.strip() not in self.tokens:
            raise _error(401, "Bad credentials")
        return "followthrough-bot"

    def _rate_limit(self) -> None:
        if self._remaining <= 0 and time.time() < self._reset:
            raise Answer(
                403,
                {
                    "message": "API rate limit exceeded for user ID 1. If you reach out to "
                    "GitHub Support for help, please include the request ID.",
                    "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
                    "status": "403",
                },
            )
        if self._remaining <= 0:
            self._remaining, self._reset = RATE_LIMIT, int(time.time()) + 3600
        count, status, retry_after = self._secondary
        if count > 0:
            self._secondary = (count - 1, status, retry_after)
            raise Answer(
                status,
                {
                    "message": "You have exceeded a secondary rate limit. Please wait a few "
                    "minutes before you try again.",
                    "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api"
                    "#about-secondary-rate-limits",
                    "status": str(status),
                },
                {"Retry-After": retry_after},
            )
        self._remaining -= 1

    def _limit_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(max(self._remaining, 0)),
            "x-ratelimit-used": str(RATE_LIMIT - max(self._remaining, 0)),
            "x-ratelimit-reset": str(self._reset),
            "x-ratelimit-resource": "core",
        }

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, login: str
    ) -> tuple[int, Any, dict[str, str]]:
        parts = path.strip("/").split("/")
        if len(parts) < 4 or parts[0] != "repos":
            raise _error(404, "Not Found")
        repo = self.repo(f"{parts[1]}/{parts[2]}")
        rest = parts[3:]
        one = {k: v[0] for k, v in query.items()}
        if rest == ["issues"] and method == "GET":
            return self._page(path, one, self._listed(repo, one))
        if rest == ["issues"] and method == "POST":
            if self._race:
                self._race = False
                self._create(repo, _object(body), login)
            return 201, self._create(repo, _object(body), login), {}
        if len(rest) >= 2 and rest[0] == "issues" and rest[1].isdigit():
            number = int(rest[1])
            if number not in repo.issues:
                raise _error(404, "Not Found")
            if len(rest) == 2 and method == "GET":
                return 200, self._issue_json(repo, number), {}
            if len(rest) == 2 and method == "PATCH":
                return 200, self._update(repo, number, _object(body), login), {}
            if rest[2:] == ["comments"] and method == "GET":
                return self._page(path, one, repo.comments.get(number, []))
            if rest[2:] == ["comments"] and method == "POST":
                return 201, self._comment(repo, number, _object(body), login), {}
        if rest == ["milestones"] and method == "GET":
            state = one.get("state", "open")
            listed = [m for m in repo.milestones.values() if state in ("all", m["state"])]
            return self._page(path, one, listed)
        if rest == ["milestones"] and method == "POST":
            return 201, self._milestone(repo, _object(body), login), {}
        if rest == ["labels"] and method == "GET":
            return self._page(path, one, list(repo.labels.values()))
        raise _error(404, "Not Found")

    # -- issues --------------------------------------------------------------------------------

    def _listed(self, repo: Repo, one: dict[str, str]) -> list[dict[str, Any]]:
        state = one.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise _invalid("Issue", "state", value=state)
        wanted = [name for name in one.get("labels", "").split(",") if name]
        since = _time(one["since"]) if "since" in one else None
        found = []
        for number in repo.issues:
            issue = self._issue_json(repo, number)
            names = {label["name"] for label in issue["labels"]}
            if state != "all" and issue["state"] != state:
                continue
            if any(name not in names for name in wanted):
                continue
            if since is not None and _time(issue["updated_at"]) < since:
                continue
            found.append(issue)
        key = "updated_at" if one.get("sort") == "updated" else "created_at"
        found.sort(key=lambda i: (i[key], i["number"]), reverse=one.get("direction") != "asc")
        return found

    def _create(self, repo: Repo, body: dict[str, Any], login: str) -> dict[str, Any]:
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _error(422, 'Invalid request.\n\n"title" wasn\'t supplied.')
        if len(title) > 256:
            raise _invalid("Issue", "title", "custom", title)
        labels = self._labels(repo, body.get("labels") or [])
        assignees = self._assignees(body)
        milestone = self._milestone_number(repo, body.get("milestone"))
        number = repo.next_number
        repo.next_number += 1
        now = _now()
        repo.issues[number] = {
            "id": self._new_id(),
            "number": number,
            "title": title,
            "body": body.get("body"),
            "user": login,
            "labels": labels,
            "assignees": assignees,
            "milestone": milestone,
            "state": "open",
            "state_reason": None,
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "closed_by": None,
        }
        return self._issue_json(repo, number)

    def _update(self, repo: Repo, number: int, body: dict[str, Any], login: str) -> dict[str, Any]:
        issue = repo.issues[number]
        if "title" in body:
            if not isinstance(body["title"], str) or len(body["title"]) > 256:
                raise _invalid("Issue", "title", "custom", body["title"])
            issue["title"] = body["title"]
        if "body" in body:
            issue["body"] = body["body"]
        if "labels" in body:
            issue["labels"] = self._labels(repo, body["labels"] or [])
        if "assignees" in body or "assignee" in body:
            issue["assignees"] = self._assignees(body)
        if "milestone" in body:
            issue["milestone"] = self._milestone_number(repo, body["milestone"])
        reason = body.get("state_reason")
        if reason is not None and reason not in STATE_REASONS:
            raise _invalid("Issue", "state_reason", value=reason)
        state = body.get("state")
        if state is not None and state not in ("open", "closed"):
            raise _invalid("Issue", "state", value=state)
        if state == "closed" and issue["state"] != "closed":
            issue.update(
                state="closed",
                state_reason=reason or "completed",
                closed_at=_now(),
                closed_by=login,
            )
        elif state == "open" and issue["state"] != "open":
            issue.update(state="open", state_reason="reopened", closed_at=None, closed_by=None)
        issue["updated_at"] = _now()
        return self._issue_json(repo, number)

    def _labels(self, repo: Repo, names: Any) -> list[str]:
        if not isinstance(names, list):
            raise _invalid("Issue", "labels", value=names)
        result = []
        for item in names:
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name.strip() or len(name) > 50:
                raise _invalid("Label", "name", "invalid", name)
            if name not in repo.labels:
                repo.labels[name] = {
                    "id": self._new_id(),
                    "node_id": f"LA_{name}",
                    "url": f"{self.url}/repos/{repo.full_name}/labels/{name}",
                    "name": name,
                    "description": None,
                    "color": "ededed",
                    "default": False,
                }
            if name not in result:
                result.append(name)
        return result

    def _assignees(self, body: dict[str, Any]) -> list[str]:
        logins = list(body.get("assignees") or [])
        if body.get("assignee"):
            logins.append(body["assignee"])
        for login in logins:
            if login not in self.users:  # not a collaborator who may be assigned
                raise _invalid("Issue", "assignees", value=login)
        return list(dict.fromkeys(logins))

    def _milestone_number(self, repo: Repo, number: Any) -> int | None:
        if number is None:
            return None
        if not isinstance(number, int) or number not in repo.milestones:
            raise _invalid("Issue", "milestone", value=number)
        return number

    def _comment(self, repo: Repo, number: int, body: dict[str, Any], login: str) -> dict[str, Any]:
        text = body.get("body")
        if not isinstance(text, str) or not text:
            raise _invalid("IssueComment", "body", "missing_field")
        now = _now()
        ident = self._new_id()
        comment = {
            "id": ident,
            "node_id": f"IC_{ident}",
            "url": f"{self.url}/repos/{repo.full_name}/issues/comments/{ident}",
            "html_url": f"https://github.com/{repo.full_name}/issues/{number}#issuecomment-{ident}",
            "issue_url": f"{self.url}/repos/{repo.full_name}/issues/{number}",
            "body": text,
            "user": self._user(login),
            "created_at": now,
            "updated_at": now,
            "author_association": "MEMBER",
        }
        repo.comments.setdefault(number, []).append(comment)
        repo.issues[number]["updated_at"] = now
        return comment

    def _milestone(self, repo: Repo, body: dict[str, Any], login: str) -> dict[str, Any]:
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _invalid("Milestone", "title", "missing_field")
        if any(m["title"] == title for m in repo.milestones.values()):
            raise _invalid("Milestone", "title", "already_exists")
        number = repo.next_milestone
        repo.next_milestone += 1
        now = _now()
        ident = self._new_id()
        repo.milestones[number] = {
            "url": f"{self.url}/repos/{repo.full_name}/milestones/{number}",
            "html_url": f"https://github.com/{repo.full_name}/milestone/{number}",
            "labels_url": f"{self.url}/repos/{repo.full_name}/milestones/{number}/labels",
            "id": ident,
            "node_id": f"MI_{ident}",
            "number": number,
            "state": body.get("state") or "open",
            "title": title,
            "description": body.get("description"),
            "creator": self._user(login),
            "open_issues": 0,
            "closed_issues": 0,
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "due_on": body.get("due_on"),
        }
        return repo.milestones[number]

    # -- shapes --------------------------------------------------------------------------------

    def _issue_json(self, repo: Repo, number: int) -> dict[str, Any]:
        issue = repo.issues[number]
        api = f"{self.url}/repos/{repo.full_name}"
        url = f"{api}/issues/{number}"
        return {
            "id": issue["id"],
            "node_id": f"I_{issue['id']}",
            "url": url,
            "repository_url": api,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"https://github.com/{repo.full_name}/issues/{number}",
            "number": number,
            "state": issue["state"],
            "state_reason": issue["state_reason"],
            "title": issue["title"],
            "body": issue["body"],
            "user": self._user(issue["user"]),
            "labels": [repo.labels[name] for name in issue["labels"]],
            "assignee": self._user(issue["assignees"][0]) if issue["assignees"] else None,
            "assignees": [self._user(login) for login in issue["assignees"]],
            "milestone": repo.milestones.get(issue["milestone"]) if issue["milestone"] else None,
            "locked": False,
            "active_lock_reason": None,
            "comments": len(repo.comments.get(number, [])),
            "closed_at": issue["closed_at"],
            "created_at": issue["created_at"],
            "updated_at": issue["updated_at"],
            "closed_by": self._user(issue["closed_by"]) if issue["closed_by"] else None,
            "author_association": "MEMBER",
        }

    def _user(self, login: str) -> dict[str, Any]:
        ident = sum(ord(c) for c in login)
        api = f"{self.url}/users/{login}"
        return {
            "login": login,
            "id": ident,
            "node_id": f"U_{ident}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{ident}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": f"https://github.com/{login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": "Bot" if login.endswith("-bot") else "User",
            "site_admin": False,
        }

    def _page(
        self, path: str, one: dict[str, str], items: list[dict[str, Any]]
    ) -> tuple[int, Any, dict[str, str]]:
        """One page of `items` with GitHub's Link header (only when there is more than one)."""
        try:
            per_page = min(max(int(one.get("per_page", "30")), 1), MAX_PER_PAGE)
            page = max(int(one.get("page", "1")), 1)
        except ValueError:
            raise _error(400, "Invalid pagination parameters") from None
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []

        def link(n: int, rel: str) -> str:
            query = urlencode({**one, "page": str(n), "per_page": str(per_page)})
            return f'<{self.url}{path}?{query}>; rel="{rel}"'

        if page > 1:
            links += [link(page - 1, "prev"), link(1, "first")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        return 200, copy.deepcopy(chunk), ({"Link": ", ".join(links)} if links else {})

    def _new_id(self) -> int:
        self._ids += 1
        return self._ids


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _error(400, "Problems parsing JSON")
    return body


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid("Issue", "since", value=value) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _handler_for(server: GitHubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            authorization = self.headers.get("Authorization", "")
            code, answer, headers = server.answer(self.command, self.path, authorization, raw)
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-GitHub-Media-Type", "github.v3; format=json")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    return Handler


__all__ = ["GitHubServer"]
