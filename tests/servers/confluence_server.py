"""A Confluence-REST-compatible server for the tests, on 127.0.0.1 (a free port, a thread), in
its Cloud shape (everything under `/wiki`) or its Data Center shape (at the root).

    with ConfluenceServer(cloud=True, spaces={"PM"}) as wiki:
        Confluence(wiki.base_url, username=USER, password=TOKEN, cloud=True).create_page(...)

What `atlassian-python-api`'s Confluence client calls for publishing, as Confluence documents it
(developer.atlassian.com, "Confluence REST API v1": content, content labels, search):

- GET  rest/api/content?spaceKey&title&type&start&limit&expand  (get_page_by_title)
- POST rest/api/content  {"type","title","space":{"key"},"body":{"storage":{...}},"ancestors"}
  (create_page). A title taken in the space: 400 "A page with this title already exists: ...";
  an unknown space: 404; a space the user may not write: 403; a storage body that is not
  well-formed XHTML: 400 "Error parsing xhtml: ...".
- GET  rest/api/content/{id}?expand=body.storage,version,space  and  rest/api/content/{id}/history
- PUT  rest/api/content/{id}?status=current  (update_page): the version must be the current
  one + 1, else 409 "Version must be incremented on update. Current version is: N".
- GET/POST rest/api/content/{id}/label  (get_page_labels, set_page_label: {"prefix","name"})
- GET  rest/api/content/search?cql&limit&start|cursor&expand: the CQL the publisher writes
  (`type=page AND label="..."`, optionally `AND space="..."`); paged with `_links.next`: by
  `start` on Data Center, by an opaque `cursor` on Cloud. `lag_search=True` keeps new pages and
  labels out of search until `index()` (Cloud's index lags creates by seconds to minutes).
- Auth: HTTP Basic; a wrong or missing one: 401. Errors are JSON
  {"statusCode", "data": {...}, "message", "reason"} as Confluence words them.
- `rate_limit_next(n, retry_after=1)`: 429 with Retry-After; `fail_next(n, status=503)`;
  `lose_next_create()`: the next create happens but its answer is a 504 (a lost reply);
  `edit_before_next_update()`: someone saves the page just before our update (a 409).

For the tests: `requests` [(method, path, query)] and `pages` {id: ConfluencePage}.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from tests.servers.daemon import LoopbackThreadServer

USER = "publisher@example.com"
TOKEN = "confluence-test-token"
FIRST_ID = 65537
STORAGE_NAMESPACES = (
    'xmlns:ac="http://atlassian.com/content" xmlns:ri="http://atlassian.com/resource/identifier"'
)


@dataclass
class ConfluencePage:
    id: str
    space: str
    title: str
    body: str
    version: int = 1
    message: str = ""
    minor_edit: bool = False
    labels: list[str] = field(default_factory=list)
    ancestors: list[str] = field(default_factory=list)


Answer = tuple[int, dict[str, Any], dict[str, str]]


class ConfluenceServer(LoopbackThreadServer):
    name = "the Confluence server"

    def __init__(
        self,
        *,
        cloud: bool = False,
        spaces: set[str] | None = None,
        read_only_spaces: set[str] | None = None,
        lag_search: bool = False,
    ) -> None:
        super().__init__()
        self.cloud = cloud
        self.prefix = "/wiki" if cloud else ""
        self.spaces = set(spaces or {"PM"})
        self.read_only_spaces = set(read_only_spaces or ())
        self.lag_search = lag_search
        self.lock = threading.Lock()
        self.pages: dict[str, ConfluencePage] = {}
        self.indexed: set[tuple[str, str]] = set()  # (page id, label) that search sees
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self._next_id = FIRST_ID
        self._limited = 0
        self._retry_after: str | None = "1"
        self._failing = 0
        self._failing_status = 503
        self._lose_create = False
        self._edited_meanwhile = False
        self.rate_limited = 0  # 429s answered

    # --- what tests do ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def rate_limit_next(self, n: int, retry_after: int | None = 1) -> None:
        with self.lock:
            self._limited, self._retry_after = n, None if retry_after is None else str(retry_after)

    def fail_next(self, n: int, status: int = 503) -> None:
        with self.lock:
            self._failing, self._failing_status = n, status

    def lose_next_create(self) -> None:
        with self.lock:
            self._lose_create = True

    def edit_before_next_update(self) -> None:
        """A person saves the page between our reading its version and our writing."""
        with self.lock:
            self._edited_meanwhile = True

    def index(self) -> None:
        """The search index catches up with every page and label."""
        with self.lock:
            for page in self.pages.values():
                self.indexed.update((page.id, label) for label in page.labels)

    def add_page(self, space: str, title: str, body: str = "<p>x</p>") -> ConfluencePage:
        with self.lock:
            return self._new_page(space, title, body, [])

    def labelled(self, label: str) -> list[ConfluencePage]:
        return [p for p in self.pages.values() if label in p.labels]

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests if m in ("POST", "PUT", "DELETE")]

    # --- serving ------------------------------------------------------------------------------

    def open(self) -> tuple[ThreadingHTTPServer, threading.Thread]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name=self.name, daemon=True
        )
        thread.start()
        return server, thread

    def answer(self, method: str, target: str, authorization: str, body: bytes) -> Answer:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        with self.lock:
            self.requests.append((method, parts.path, query))
            if self._limited > 0:
                self._limited -= 1
                self.rate_limited += 1
                headers = {"Retry-After": self._retry_after} if self._retry_after else {}
                return _error(429, "Rate limit exceeded", "Too Many Requests", headers)
            if self._failing > 0:
                self._failing -= 1
                return _error(self._failing_status, "Service unavailable", "Unavailable")
            if authorization != "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode():
                return _error(
                    401,
                    "Basic authentication with passwords is not allowed or the "
                    "credentials are wrong",
                    "Unauthorized",
                )
            if not parts.path.startswith(self.prefix + "/rest/api/"):
                return _error(404, f"null for uri: {parts.path}", "Not Found")
            path = parts.path[len(self.prefix + "/rest/api") :].rstrip("/")
            try:
                data = json.loads(body) if body else {}
            except ValueError:
                return _error(400, "Could not parse the JSON body", "Bad Request")
            return self._route(method, path, query, data)

    def _route(self, method: str, path: str, query: dict[str, list[str]], data: Any) -> Answer:
        q = {k: v[0] for k, v in query.items()}
        if path == "/content" and method == "GET":
            return self._by_title(q)
        if path == "/content" and method == "POST":
            return self._create(data)
        if path == "/content/search" and method == "GET":
            return self._search(q)
        found = re.fullmatch(r"/content/(\d+)(/history|/label)?", path)
        if not found:
            return _error(404, f"null for uri: {path}", "Not Found")
        page = self.pages.get(found.group(1))
        if page is None:
            return _error(
                404, f"No content found with id: ContentId{{id={found.group(1)}}}", "Not Found"
            )
        tail = found.group(2)
        if tail == "/history" and method == "GET":
            return 200, {"latest": True, "lastUpdated": {"number": page.version}}, {}
        if tail == "/label" and method == "GET":
            return 200, self._labels(page), {}
        if tail == "/label" and method == "POST":
            for label in data if isinstance(data, list) else [data]:
                name = str(label.get("name", "")).lower()
                if not name or " " in name:
                    return _error(400, f"Label '{name}' is not valid", "Bad Request")
                if name not in page.labels:
                    page.labels.append(name)
                    if not self.lag_search:
                        self.indexed.add((page.id, name))
            return 200, self._labels(page), {}
        if tail is None and method == "GET":
            return 200, self._json(page, q.get("expand", "")), {}
        if tail is None and method == "PUT":
            return self._update(page, data)
        return _error(405, "Method not allowed", "Method Not Allowed")

    def _by_title(self, q: dict[str, str]) -> Answer:
        space, title = q.get("spaceKey"), q.get("title")
        matches = [
            p
            for p in self.pages.values()
            if (space is None or p.space == space) and (title is None or p.title == title)
        ]
        start, limit = int(q.get("start", 0)), int(q.get("limit", 25))
        shown = matches[start : start + limit]
        results = [self._json(p, q.get("expand", "")) for p in shown]
        return (
            200,
            {
                "results": results,
                "start": start,
                "limit": limit,
                "size": len(results),
                "_links": self._links(),
            },
            {},
        )

    def _create(self, data: dict[str, Any]) -> Answer:
        space = str((data.get("space") or {}).get("key", ""))
        title = str(data.get("title", ""))
        body = str(((data.get("body") or {}).get("storage") or {}).get("value", ""))
        if space not in self.spaces:
            return _error(404, f"No space with key : {space}", "Not Found")
        if space in self.read_only_spaces:
            return _error(403, f"User not permitted to create page in space {space}", "Forbidden")
        if not title.strip() or len(title) > 255:
            return _error(400, "Title must be between 1 and 255 characters", "Bad Request")
        if any(p.space == space and p.title == title for p in self.pages.values()):
            return _error(
                400,
                "A page with this title already exists: A page already exists "
                f"with the title {title} in the space with key {space}",
                "Bad Request",
            )
        problem = _xhtml_problem(body)
        if problem:
            return _error(400, f"Error parsing xhtml: {problem}", "Bad Request")
        ancestors = [str(a.get("id")) for a in data.get("ancestors") or []]
        for ancestor in ancestors:
            if ancestor not in self.pages:
                return _error(404, f"No parent page with id {ancestor}", "Not Found")
        page = self._new_page(space, title, body, ancestors)
        if self._lose_create:
            self._lose_create = False
            return _error(504, "Gateway timeout", "Gateway Timeout")
        return 200, self._json(page, "version,space"), {}

    def _update(self, page: ConfluencePage, data: dict[str, Any]) -> Answer:
        if self._edited_meanwhile:
            self._edited_meanwhile = False
            page.version += 1
        version = (data.get("version") or {}).get("number")
        if version != page.version + 1:
            return _error(
                409,
                f"Version must be incremented on update. Current version is: {page.version}",
                "Conflict",
            )
        title = str(data.get("title") or page.title)
        if any(
            p.space == page.space and p.title == title and p.id != page.id
            for p in self.pages.values()
        ):
            return _error(400, "A page with this title already exists", "Bad Request")
        body = ((data.get("body") or {}).get("storage") or {}).get("value")
        if body is not None:
            problem = _xhtml_problem(str(body))
            if problem:
                return _error(400, f"Error parsing xhtml: {problem}", "Bad Request")
            page.body = str(body)
        page.title = title
        page.version = int(version)
        page.message = str((data.get("version") or {}).get("message") or "")
        page.minor_edit = bool((data.get("version") or {}).get("minorEdit"))
        return 200, self._json(page, "version,space"), {}

    def _search(self, q: dict[str, str]) -> Answer:
        cql = q.get("cql", "")
        wanted = _parse_cql(cql)
        if wanted is None:
            return _error(400, f"Could not parse cql : {cql}", "Bad Request")
        hits = [
            p
            for p in sorted(self.pages.values(), key=lambda p: int(p.id))
            if all(self._matches(p, key, value) for key, value in wanted)
        ]
        limit = min(int(q.get("limit", 25)), 100)
        start = int(q["cursor"]) if self.cloud and "cursor" in q else int(q.get("start", 0))
        shown = hits[start : start + limit]
        links = self._links()
        if start + limit < len(hits):
            more: dict[str, Any] = {"cql": cql, "limit": limit}
            if "expand" in q:
                more["expand"] = q["expand"]
            if self.cloud:
                more = {"next": "true", "cursor": str(start + limit), **more}
            else:
                more["start"] = start + limit
            links["next"] = "/rest/api/content/search?" + urlencode(more)
        answer = {
            "results": [self._json(p, q.get("expand", "")) for p in shown],
            "start": start,
            "limit": limit,
            "size": len(shown),
            "_links": links,
        }
        if not self.cloud:
            answer["totalSize"] = len(hits)
        return 200, answer, {}

    def _matches(self, page: ConfluencePage, key: str, value: str) -> bool:
        if key == "type":
            return value == "page"
        if key == "space":
            return page.space == value
        if key == "label":
            return (page.id, value) in self.indexed
        return page.title == value

    # --- shapes -------------------------------------------------------------------------------

    def _new_page(self, space: str, title: str, body: str, ancestors: list[str]) -> ConfluencePage:
        page = ConfluencePage(str(self._next_id), space, title, body, ancestors=ancestors)
        self._next_id += 1
        self.pages[page.id] = page
        return page

    def _links(self) -> dict[str, Any]:
        return {"base": self.base_url, "context": self.prefix}

    def _labels(self, page: ConfluencePage) -> dict[str, Any]:
        results = [
            {"prefix": "global", "name": n, "id": str(1000 + i), "label": n}
            for i, n in enumerate(page.labels)
        ]
        return {"results": results, "start": 0, "limit": 200, "size": len(results)}

    def _json(self, page: ConfluencePage, expand: str) -> dict[str, Any]:
        webui = (
            f"/spaces/{page.space}/pages/{page.id}/{quote(page.title.replace(' ', '+'))}"
            if self.cloud
            else f"/pages/viewpage.action?pageId={page.id}"
        )
        answer: dict[str, Any] = {
            "id": page.id,
            "type": "page",
            "status": "current",
            "title": page.title,
            "_links": {
                "webui": webui,
                "self": f"{self.base_url}/rest/api/content/{page.id}",
                "base": self.base_url,
                "context": self.prefix,
            },
        }
        expanded = set(expand.split(","))
        if "space" in expanded:
            answer["space"] = {"key": page.space, "name": page.space, "type": "global"}
        if "version" in expanded:
            answer["version"] = {
                "number": page.version,
                "minorEdit": page.minor_edit,
                "message": page.message,
            }
        if "body.storage" in expanded:
            answer["body"] = {"storage": {"value": page.body, "representation": "storage"}}
        if "ancestors" in expanded:
            answer["ancestors"] = [{"id": a, "type": "page"} for a in page.ancestors]
        return answer


def _error(status: int, message: str, reason: str, headers: dict[str, str] | None = None) -> Answer:
    body = {
        "statusCode": status,
        "data": {
            "authorized": status != 403,
            "valid": status != 400,
            "errors": [],
            "successful": False,
        },
        "message": message,
        "reason": reason,
    }
    return status, body, headers or {}


def _parse_cql(cql: str) -> list[tuple[str, str]] | None:
    """`key = value` clauses joined by AND (values quoted or bare): all this server reads."""
    clauses = []
    for part in re.split(r"\s+AND\s+", cql.strip(), flags=re.IGNORECASE):
        found = re.fullmatch(r'\s*(type|space|label|title)\s*=\s*("([^"]*)"|[\w.-]+)\s*', part)
        if not found:
            return None
        clauses.append(
            (found.group(1), found.group(3) if found.group(3) is not None else found.group(2))
        )
    return clauses


def _xhtml_problem(body: str) -> str | None:
    try:
        ET.fromstring(f"<root {STORAGE_NAMESPACES}>{body}</root>")
    except ET.ParseError as err:
        return str(err)
    return None


def _handler_for(server: ConfluenceServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, answer, headers = server.answer(
                self.command, self.path, self.headers.get("Authorization", ""), body
            )
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


__all__ = ["TOKEN", "USER", "ConfluencePage", "ConfluenceServer"]
