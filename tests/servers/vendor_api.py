"""What the vendors' read-only JSON APIs in tests share (PagerDuty, Opsgenie, incident.io,
FireHydrant): a threaded HTTP server on 127.0.0.1 answering GET, the 429s and failures a test
asks for, and writing each answer.

A subclass says what is the vendor's own: `record` (the request log its tests read), how it
words a 429 (`rate_limited`) and a failure (`failed`), and `route`, the documented endpoints.
`wrap` may put TLS around the socket (PagerDuty's client accepts only https).

    server.rate_limit_next(2, retry_after=7)   # the next 2 requests: 429 (None: no Retry-After)
    server.fail_next(1, status=503)            # the next request: that status
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers.daemon import LoopbackThreadServer

Query = dict[str, list[str]]
Answer = tuple[int, dict[str, Any] | str, dict[str, str]]  # status, JSON (or text), headers


class VendorApiServer(LoopbackThreadServer):
    scheme = "http"
    fail_status = 500  # what `fail_next` answers unless told

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self._limited = 0
        self._retry_after: str | None = "1"
        self._failing = 0
        self._failing_status = self.fail_status

    # -- what a subclass says ----------------------------------------------------------------

    def record(self, path: str, query: Query) -> None:
        """Note the request for the tests (called under the lock, 429s and failures too)."""

    def rate_limited(self, retry_after: str | None) -> Answer:
        raise NotImplementedError

    def failed(self, status: int) -> Answer:
        raise NotImplementedError

    def route(self, path: str, query: Query, authorization: str) -> Answer:
        raise NotImplementedError

    def wrap(self, server: ThreadingHTTPServer) -> None:
        """Around the listening socket before it serves (e.g. TLS)."""

    # -- shared ------------------------------------------------------------------------------

    def open(self) -> tuple[ThreadingHTTPServer, threading.Thread]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.wrap(server)
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name=self.name, daemon=True
        )
        thread.start()
        return server, thread

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def rate_limit_next(self, n: int, retry_after: int | str | None = 1) -> None:
        with self.lock:
            self._limited = n
            self._retry_after = None if retry_after is None else str(retry_after)

    def fail_next(self, n: int, status: int | None = None) -> None:
        with self.lock:
            self._failing, self._failing_status = n, status or self.fail_status

    def answer(self, path: str, query: Query, authorization: str) -> Answer:
        with self.lock:
            self.record(path, query)
            if self._limited > 0:
                self._limited -= 1
                return self.rate_limited(self._retry_after)
            if self._failing > 0:
                self._failing -= 1
                return self.failed(self._failing_status)
        return self.route(path, query, authorization)


def first_values(query: Query) -> dict[str, str]:
    """Each parameter's first value, for APIs that take each once."""
    return {name: values[0] for name, values in query.items()}


def _handler_for(server: VendorApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            authorization = self.headers.get("Authorization", "")
            code, answer, headers = server.answer(parts.path, parse_qs(parts.query), authorization)
            is_json = isinstance(answer, dict)
            data = json.dumps(answer).encode() if is_json else str(answer).encode()
            self.send_response(code)
            kind = "application/json; charset=utf-8" if is_json else "text/html"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


__all__ = ["Answer", "Query", "VendorApiServer", "first_values"]
