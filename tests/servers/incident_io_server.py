"""An incident.io-API-compatible server for the tests, on 127.0.0.1 (a free port, a thread).

    with IncidentIoServer(api_key="key", incidents={"01INC": Timeline(updates=[...])}) as io:
        IncidentIoCollector("key", io.url).collect(incident)

It serves what the timeline collector calls, as incident.io documents it (api-docs.incident.io):
- `GET /v2/incident_updates` (List Incident Updates V2): `incident_id` (optional: without it,
  every incident's), `page_size` (default 25, at most 250), `after` (a record's id: the records
  after it). Answers `{"incident_updates": [...], "pagination_meta": {"page_size", "after"}}`,
  `after` present only when more follow.
- `GET /v2/incident_timeline_items` (List Incident Timeline Items V2): `incident_id` (required),
  the same paging; items oldest first by `timestamp`, then id. Answers
  `{"incident_timeline_items": [...], "pagination_meta": {...}}`.
- `Authorization: Bearer <api key>`; missing or wrong: 401 authentication_error.
- An unknown incident: 404 not_found; a bad parameter: 422 validation_error. Errors are
  incident.io's ErrorResponse: `{"type", "status", "request_id", "errors": [{"code", "message"}]}`.
- `rate_limit_next(n, retry_after="1")`: the next n calls answer 429 too_many_requests with
  `Retry-After`; `fail_next(n, status=500)`: the next n answer that status with an HTML body, as
  a proxy in front of it would.
- Anything else: 404.

For the tests: `calls` (path and query of each request, the 429s too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.servers.vendor_api import Answer, Query, VendorApiServer, first_values

PAGE_SIZE_DEFAULT = 25
PAGE_SIZE_MOST = 250


@dataclass
class Timeline:
    """One incident's records, as incident.io keeps them."""

    updates: list[dict[str, Any]] = field(default_factory=list)
    timeline_items: list[dict[str, Any]] = field(default_factory=list)


def user(name: str, user_id: str = "01USER") -> dict[str, Any]:
    return {"user": {"id": user_id, "name": name, "role": "responder", "email": "x@example.com"}}


def update(
    update_id: str,
    incident_id: str,
    created_at: str,
    *,
    message: str | None = None,
    status: str = "Investigating",
    severity: str | None = None,
    updater: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An IncidentUpdateV2 as incident.io answers it."""
    stamp = "2021-08-17T13:28:57.801578Z"
    record: dict[str, Any] = {
        "id": update_id,
        "incident_id": incident_id,
        "created_at": created_at,
        "new_incident_status": {
            "id": "01STATUS",
            "name": status,
            "description": "",
            "category": "live",
            "rank": 1,
            "created_at": stamp,
            "updated_at": stamp,
        },
        "updater": updater or user("Lisa Karlin Curtis"),
    }
    if message is not None:
        record["message"] = message
    if severity is not None:
        record["new_severity"] = {
            "id": "01SEV",
            "name": severity,
            "description": "",
            "rank": 1,
            "created_at": stamp,
            "updated_at": stamp,
        }
    return record


def timeline_item(
    item_id: str,
    incident_id: str,
    timestamp: str,
    title: str,
    *,
    description: str | None = None,
    creator: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An IncidentTimelineItemV2 as incident.io answers it."""
    record: dict[str, Any] = {
        "id": item_id,
        "incident_id": incident_id,
        "timestamp": timestamp,
        "title": title,
        "creator": creator or user("Lisa Karlin Curtis"),
        "created_at": timestamp,
        "updated_at": timestamp,
    }
    if description is not None:
        record["description"] = description
    return record


class IncidentIoServer(VendorApiServer):
    name = "the incident.io server"

    def __init__(self, *, api_key: str, incidents: dict[str, Timeline] | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.incidents = dict(incidents or {})
        self.calls: list[tuple[str, dict[str, str]]] = []

    def record(self, path: str, query: Query) -> None:
        self.calls.append((path, first_values(query)))

    def rate_limited(self, retry_after: str | None) -> Answer:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return 429, _error(429, "too_many_requests", "rate limit exceeded"), headers

    def failed(self, status: int) -> Answer:
        return status, "<html>Bad gateway</html>", {}

    def route(self, path: str, lists: Query, authorization: str) -> Answer:
        query = first_values(lists)
        if authorization != f"Bearer {self.api_key}":
            return 401, _error(401, "authentication_error", "invalid API key"), {}
        if path == "/v2/incident_updates":
            return self._list(query, "incident_updates", required=False)
        if path == "/v2/incident_timeline_items":
            return self._list(query, "incident_timeline_items", required=True)
        return 404, _error(404, "not_found", f"no route {path}"), {}

    def _list(self, query: dict[str, str], key: str, *, required: bool) -> Answer:
        incident_id = query.get("incident_id")
        if incident_id is None and required:
            return 422, _error(422, "validation_error", "incident_id is required"), {}
        if incident_id is not None and incident_id not in self.incidents:
            return 404, _error(404, "not_found", "incident not found"), {}
        try:
            page_size = int(query.get("page_size", PAGE_SIZE_DEFAULT))
        except ValueError:
            page_size = 0
        if not 1 <= page_size <= PAGE_SIZE_MOST:
            return 422, _error(422, "validation_error", "page_size out of range"), {}
        with self.lock:
            chosen = [self.incidents[incident_id]] if incident_id else self.incidents.values()
            records = [r for t in chosen for r in getattr(t, key.removeprefix("incident_"))]
        if key == "incident_timeline_items":
            records.sort(key=lambda r: (r["timestamp"], r["id"]))
        after = query.get("after")
        if after is not None:
            ids = [r["id"] for r in records]
            if after not in ids:
                return 422, _error(422, "validation_error", "after is not a record's id"), {}
            records = records[ids.index(after) + 1 :]
        page, more = records[:page_size], len(records) > page_size
        meta: dict[str, Any] = {"page_size": page_size}
        if more:
            meta["after"] = page[-1]["id"]
        return 200, {key: page, "pagination_meta": meta}, {}


def _error(status: int, kind: str, message: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "request_id": "req-test",
        "errors": [{"code": kind, "message": message}],
    }


__all__ = ["IncidentIoServer", "Timeline", "timeline_item", "update", "user"]
