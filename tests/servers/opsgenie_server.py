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

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tests.servers.vendor_api import Answer, Query, VendorApiServer

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


class OpsgenieServer(VendorApiServer):
    name = "the Opsgenie server"

    def __init__(self, *, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.alerts: dict[str, OpsgenieAlert] = {}
        self.requests: list[str] = []

    def record(self, path: str, query: Query) -> None:
        self.requests.append(f"{path}?{urlencode(query, doseq=True)}" if query else path)

    def rate_limited(self, retry_after: str | None) -> Answer:
        headers = {"X-RateLimit-State": "THROTTLED"}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        return 429, _said("Rate limit exceeded"), headers

    def failed(self, status: int) -> Answer:
        return status, _said("Internal Server Error"), {}

    def route(self, path: str, query: Query, auth: str) -> Answer:
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


__all__ = ["OpsgenieAlert", "OpsgenieServer", "log", "note"]
