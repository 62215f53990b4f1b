"""A PagerDuty-REST-API-v2-compatible server for the tests, on 127.0.0.1 (a free port, a thread).

    with PagerDutyServer(token="pd-test", tls=loopback_certificate(tmp_path)) as pd:
        pd.incidents["PABC123"] = PagerDutyIncident(log_entries=[...], notes=[...])
        PagerDutyCollector("pd-test", pd.base_url, verify=trusting(cert)).collect(incident)

HTTPS only (on a certificate for 127.0.0.1 from `tls`): the official client refuses http://.
What the timeline collector calls, as PagerDuty documents it (its REST API v2 reference):

- GET /incidents/{id}/log_entries: classic pagination, `limit` (at most 100, default 25) and
  `offset`; answers {"log_entries": [...], "limit", "offset", "more", "total"} (`total` null
  unless `total=true`). `is_overview=true` keeps only the overview types (trigger, acknowledge,
  resolve, escalate, assign, annotate); `include[]=channels` keeps each entry's `channel`,
  which is otherwise left out as PagerDuty leaves it as a reference.
- GET /incidents/{id}/notes: {"notes": [...]}, not paginated.
- Auth: `Authorization: Token token=<key>`; a wrong or missing one is 401 {"error": {"message":
  "Unauthorized", "code": 2006}}. An unknown incident: 404 {"error": {"message": "Not Found",
  "code": 2100}}. Anything else: 404 as well.
- `rate_limit_next(n, retry_after=1)`: the next n requests answer 429 {"error": {"message":
  "Rate Limit Exceeded", "code": 2020}} with `Retry-After`. `fail_next(n, status=500)`: the next
  n requests answer that status with PagerDuty's error object.

For the tests: `requests` (path and query of each request, the 429s too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.servers.tls import serving
from tests.servers.vendor_api import Answer, Query, VendorApiServer

OVERVIEW_TYPES = {
    "trigger_log_entry",
    "acknowledge_log_entry",
    "resolve_log_entry",
    "escalate_log_entry",
    "assign_log_entry",
    "annotate_log_entry",
}
LIMIT_DEFAULT = 25
LIMIT_MOST = 100


@dataclass
class PagerDutyIncident:
    log_entries: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)


def log_entry(
    entry_id: str,
    kind: str,
    at: str,
    *,
    incident: str = "PABC123",
    agent: str | None = "Alice Adams",
    summary: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """A log entry as PagerDuty lists it (the agent a user reference)."""
    site = "https://acme.pagerduty.com"
    return {
        "id": entry_id,
        "type": kind,
        "summary": summary or kind.removesuffix("_log_entry").replace("_", " ").capitalize(),
        "self": f"https://api.pagerduty.com/log_entries/{entry_id}",
        "html_url": f"{site}/incidents/{incident}/log_entries/{entry_id}",
        "created_at": at,
        "agent": ({"id": "PUSER01", "type": "user_reference", "summary": agent} if agent else None),
        "channel": {"type": "web_ui"},
        "incident": {"id": incident, "type": "incident_reference"},
        "teams": [],
        "contexts": [],
        **extra,
    }


def note(note_id: str, content: str, at: str, *, user: str = "Alice Adams") -> dict[str, Any]:
    return {
        "id": note_id,
        "user": {"id": "PUSER01", "type": "user_reference", "summary": user},
        "channel": {"summary": "The PagerDuty website or APIs"},
        "content": content,
        "created_at": at,
    }


class PagerDutyServer(VendorApiServer):
    name = "the PagerDuty server"
    scheme = "https"

    def __init__(self, *, token: str, tls: tuple[Path, Path]) -> None:
        super().__init__()
        self.token = token
        self.tls = tls
        self.incidents: dict[str, PagerDutyIncident] = {}
        self.requests: list[str] = []

    def wrap(self, server: ThreadingHTTPServer) -> None:
        server.socket = serving(*self.tls).wrap_socket(server.socket, server_side=True)

    def record(self, path: str, query: Query) -> None:
        self.requests.append(f"{path}?{_query(query)}" if query else path)

    def rate_limited(self, retry_after: str | None) -> Answer:
        headers = {"Retry-After": retry_after} if retry_after else {}
        return 429, _error("Rate Limit Exceeded", 2020), headers

    def failed(self, status: int) -> Answer:
        return status, _error("Internal Server Error", 2001), {}

    def route(self, path: str, query: Query, auth: str) -> Answer:
        if auth != f"Token token={self.token}":
            return 401, _error("Unauthorized", 2006), {}
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "incidents" or parts[2] not in ("log_entries", "notes"):
            return 404, _error("Not Found", 2100), {}
        with self.lock:
            incident = self.incidents.get(parts[1])
        if incident is None:
            return 404, _error("Not Found", 2100), {}
        if parts[2] == "notes":
            return 200, {"notes": incident.notes}, {}
        return 200, _page(incident.log_entries, query), {}


def _page(entries: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    first = query.get
    limit = min(max(int((first("limit") or [str(LIMIT_DEFAULT)])[0]), 1), LIMIT_MOST)
    offset = max(int((first("offset") or ["0"])[0]), 0)
    if (first("is_overview") or ["false"])[0] == "true":
        entries = [e for e in entries if e["type"] in OVERVIEW_TYPES]
    channels = "channels" in query.get("include[]", [])
    shown = [e if channels else {k: v for k, v in e.items() if k != "channel"} for e in entries]
    page = shown[offset : offset + limit]
    total = len(entries) if (first("total") or ["false"])[0] == "true" else None
    return {
        "log_entries": page,
        "limit": limit,
        "offset": offset,
        "more": offset + limit < len(entries),
        "total": total,
    }


def _error(message: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "code": code}}


def _query(query: dict[str, list[str]]) -> str:
    return "&".join(f"{k}={v}" for k, values in sorted(query.items()) for v in values)


__all__ = ["PagerDutyIncident", "PagerDutyServer", "log_entry", "note"]
