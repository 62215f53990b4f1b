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

from typing import Any
from urllib.parse import unquote

from tests.servers.vendor_api import Answer, Query, VendorApiServer, first_values

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


class FireHydrantServer(VendorApiServer):
    fail_status = 503
    name = "the FireHydrant server"

    def __init__(
        self, *, api_key: str, incidents: dict[str, list[dict[str, Any]]] | None = None
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.incidents = dict(incidents or {})
        self.calls: list[tuple[str, dict[str, str]]] = []

    def record(self, path: str, query: Query) -> None:
        self.calls.append((path, first_values(query)))

    def rate_limited(self, retry_after: str | None) -> Answer:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return 429, {"error": "Too Many Requests"}, headers

    def failed(self, status: int) -> Answer:
        return status, "<html>Service Unavailable</html>", {}

    def route(self, path: str, lists: Query, authorization: str) -> Answer:
        query = first_values(lists)
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


__all__ = ["FireHydrantServer", "event"]
