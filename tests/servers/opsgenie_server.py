"""An Opsgenie-Alert-API-compatible server for the tests, on 127.0.0.1 (a free port, a thread).

    with OpsgenieServer(api_key="og-test") as og:
        og.alerts["8418d193-..."] = OpsgenieAlert(logs=[log(...)], notes=[note(...)])
        OpsgenieCollector("og-test", og.base_url).collect(incident)

What the timeline collector calls, as Opsgenie documents it (docs.opsgenie.com, Alert API and
Pagination):

- GET /v2/alerts/{identifier}/logs and /v2/alerts/{identifier}/notes, `identifierType` id
  (the default; alias and tiny are not served here: 422). Paginated by `offset` (an item's own
  offset, e.g. "1492434433555_1492434433555000000"), `direction` next (items after it, the
  default) or prev, `limit` (1..100, default 20) and `order` (asc or desc, the default). The
  answer: {"data": [...], "paging": {"first", "next"}, "took", "requestId"}; `next` is the URL
  of the following page and is left out on the last one.
- Auth: `Authorization: GenieKey <key>`; a wrong or missing one: 401 {"message": "Could not
  authenticate", ...}. An unknown alert: 404 {"message": "Alert does not exist", ...}.
- `rate_limit_next(n, retry_after=1)`: the next n requests answer 429 with
  `X-RateLimit-State: THROTTLED`, as Opsgenie documents, and `Retry-After` (None: without);
  `fail_next(n, status=500)`: the next n answer that status.

For the tests: `requests` (path and query of each request, the 429s too).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.servers.daemon import LoopbackThreadServer

LIMIT_DEFAULT = 20
LIMIT_MOST = 100


@dataclass
class OpsgenieAlert:
    logs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)


def _offset(at: str, n: int) -> str:
    from datetime import datetime

    ms = int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() * 1000)
    return f"{ms}_{ms * 1_000_000 + n:019d}"


def log(text: str, at: str, *, owner: str = "alice@example.com", n: int = 0) -> dict[str, Any]:
    """A log entry as Opsgenie lists it; `n` tells apart entries of the same millisecond."""
    return {
        "offset": _offset(at, n),
        "log": text,
        "owner": owner,
        "createdAt": at,
        "type": "system",
    }


def note(text: str, at: str, *, owner: str = "alice@example.com", n: int = 0) -> dict[str, Any]:
    return {"offset": _offset(at, n), "note": text, "owner": owner, "createdAt": at}


class OpsgenieServer(LoopbackThreadServer):
    name = "the Opsgenie server"

    def __init__(self, *, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.alerts: dict[str, OpsgenieAlert] = {}
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self._limited = 0
        self._retry_after: str | None = "1"
        self._failing = 0
        self._fail_status = 500

    def open(self) -> tuple[ThreadingHTTPServer, threading.Thread]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="opsgenie-server", daemon=True
        )
        thread.start()
        return server, thread

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rate_limit_next(self, n: int, retry_after: int | str | None = 1) -> None:
        """None: a 429 without Retry-After."""
        with self.lock:
            self._limited = n
            self._retry_after = None if retry_after is None else str(retry_after)

    def fail_next(self, n: int, status: int = 500) -> None:
        with self.lock:
            self._failing, self._fail_status = n, status

    def answer(
        self, path: str, query: dict[str, list[str]], auth: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            self.requests.append(f"{path}?{urlencode(query, doseq=True)}" if query else path)
            if self._limited > 0:
                self._limited -= 1
                headers = {"X-RateLimit-State": "THROTTLED"}
                if self._retry_after is not None:
                    headers["Retry-After"] = self._retry_after
                return 429, _said("Rate limit exceeded"), headers
            if self._failing > 0:
                self._failing -= 1
                return self._fail_status, _said("Internal Server Error"), {}
        if auth != f"GenieKey {self.api_key}":
            return 401, _said("Could not authenticate"), {}
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v2", "alerts"] or parts[3] not in ("logs", "notes"):
            return 404, _said("Resource or handler not found"), {}
        if query.get("identifierType", ["id"])[0] != "id":
            return 422, _said("identifierType must be id here"), {}
        with self.lock:
            alert = self.alerts.get(parts[2])
        if alert is None:
            return 404, _said("Alert does not exist"), {}
        items = alert.logs if parts[3] == "logs" else alert.notes
        return 200, self._page(path, items, query), {}

    def _page(
        self, path: str, items: list[dict[str, Any]], query: dict[str, list[str]]
    ) -> dict[str, Any]:
        def one(name: str, default: str) -> str:
            return query.get(name, [default])[0]

        limit = min(max(int(one("limit", str(LIMIT_DEFAULT))), 1), LIMIT_MOST)
        order, direction, offset = one("order", "desc"), one("direction", "next"), one("offset", "")
        ordered = sorted(items, key=lambda i: str(i["offset"]), reverse=order == "desc")
        if offset:
            after = [i for i in ordered if (i["offset"] > offset) == (order == "asc")]
            before = [i for i in ordered if i["offset"] != offset and i not in after]
            ordered = after if direction == "next" else before[-limit:]
        page = ordered[:limit]
        base = f"{self.base_url}{path}"
        paging = {"first": f"{base}?{urlencode({'limit': limit, 'order': order})}"}
        if len(ordered) > limit:
            following = {"offset": page[-1]["offset"], "direction": "next", "limit": limit}
            paging["next"] = f"{base}?{urlencode({**following, 'order': order})}"
        return {"data": page, "paging": paging, "took": 0.01, "requestId": str(uuid.uuid4())}


def _said(message: str) -> dict[str, Any]:
    return {"message": message, "took": 0.0, "requestId": str(uuid.uuid4())}


def _handler_for(og: OpsgenieServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            code, answer, headers = og.answer(
                parts.path, parse_qs(parts.query), self.headers.get("Authorization", "")
            )
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


__all__ = ["OpsgenieAlert", "OpsgenieServer", "log", "note"]
