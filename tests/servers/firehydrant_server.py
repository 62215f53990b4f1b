"""A FireHydrant-API-compatible server for the tests, on 127.0.0.1 (a free port, a thread).

    with FireHydrantServer(api_key="fhb-key", incidents={"inc-1": [event(...)]}) as fh:
        FireHydrantCollector("fhb-key", fh.url).collect(incident)

It serves what the timeline collector calls, as FireHydrant documents it (its API reference,
"List events for an incident"):
- `GET /v1/incidents/{incident_id}/events`: `page` (from 1, default 1), `per_page` (default 20,
  at most 200), `types` (a comma-separated list of event types to keep). Answers
  `{"data": [IncidentEventEntity...], "pagination": {"count", "page", "items", "pages", "last",
  "prev", "next"}}`, `prev`/`next` null at the ends; a page past the last is empty.
- `Authorization: Bearer <api key>` (or the bare key); missing or wrong: 401.
- An unknown incident: 404. Errors are `{"error": "...", "detail": "..."}`.
- `rate_limit_next(n, retry_after="1")`: the next n calls answer 429 with `Retry-After`;
  `fail_next(n, status=503)`: the next n answer that status with an HTML body.
- Anything else: 404.

For the tests: `calls` (path and query of each request, the 429s too).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.servers.daemon import LoopbackThreadServer
from tests.servers.incident_io_server import send_answer

PER_PAGE_DEFAULT = 20
PER_PAGE_MOST = 200


def event(
    event_id: str,
    kind: str,
    occurred_at: str,
    data: dict[str, Any] | None = None,
    *,
    author: str | None = "Robert Ross",
) -> dict[str, Any]:
    """An IncidentEventEntity as FireHydrant answers it."""
    record: dict[str, Any] = {
        "id": event_id,
        "incident_id": "inc",
        "type": kind,
        "context": None,
        "data": data or {},
        "occurred_at": occurred_at,
        "visibility": "private_to_org",
        "votes": {"up": 0, "down": 0},
        "conversations": [],
    }
    if author is not None:
        record["author"] = {"id": "u-1", "name": author, "source": "firehydrant_user"}
    return record


class FireHydrantServer(LoopbackThreadServer):
    name = "the FireHydrant server"

    def __init__(
        self, *, api_key: str, incidents: dict[str, list[dict[str, Any]]] | None = None
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.incidents = dict(incidents or {})
        self.lock = threading.Lock()
        self.calls: list[tuple[str, dict[str, str]]] = []
        self._limited = 0
        self._retry_after = "1"
        self._failing = 0
        self._fail_status = 503

    def open(self) -> tuple[ThreadingHTTPServer, threading.Thread]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="firehydrant-server", daemon=True
        )
        thread.start()
        return server, thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rate_limit_next(self, n: int, retry_after: str = "1") -> None:
        with self.lock:
            self._limited, self._retry_after = n, retry_after

    def fail_next(self, n: int, status: int = 503) -> None:
        with self.lock:
            self._failing, self._fail_status = n, status

    def answer(
        self, path: str, query: dict[str, str], authorization: str
    ) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
        with self.lock:
            self.calls.append((path, dict(query)))
            if self._limited > 0:
                self._limited -= 1
                headers = {"Retry-After": self._retry_after}
                return 429, {"error": "Too Many Requests"}, headers
            if self._failing > 0:
                self._failing -= 1
                return self._fail_status, "<html>Service Unavailable</html>", {}
        if authorization.removeprefix("Bearer ").strip() != self.api_key:
            return 401, {"error": "Unauthorized", "detail": "invalid API key"}, {}
        parts = path.split("/")
        if len(parts) != 5 or parts[:3] != ["", "v1", "incidents"] or parts[4] != "events":
            return 404, {"error": "Not Found"}, {}
        incident_id = unquote(parts[3])
        with self.lock:
            events = list(self.incidents.get(incident_id, [])) if incident_id else []
            known = incident_id in self.incidents
        if not known:
            return 404, {"error": "Not Found", "detail": "Record not found"}, {}
        try:
            page = int(query.get("page", 1))
            per_page = int(query.get("per_page", PER_PAGE_DEFAULT))
        except ValueError:
            return 400, {"error": "Bad Request", "detail": "page and per_page are integers"}, {}
        if page < 1 or not 1 <= per_page <= PER_PAGE_MOST:
            return 400, {"error": "Bad Request", "detail": "page or per_page out of range"}, {}
        if "types" in query:
            wanted = set(query["types"].split(","))
            events = [e for e in events if e["type"] in wanted]
        pages = max(1, -(-len(events) // per_page))
        chosen = events[(page - 1) * per_page : page * per_page]
        pagination = {
            "count": len(events),
            "page": page,
            "items": len(chosen),
            "pages": pages,
            "last": pages,
            "prev": page - 1 if page > 1 else None,
            "next": page + 1 if page < pages else None,
        }
        return 200, {"data": chosen, "pagination": pagination}, {}


def _handler_for(fh: FireHydrantServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            auth = self.headers.get("Authorization", "")
            code, answer, headers = fh.answer(parts.path, query, auth)
            send_answer(self, code, answer, headers)

    return Handler


__all__ = ["FireHydrantServer", "event"]
