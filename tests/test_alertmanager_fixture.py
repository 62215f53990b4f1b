"""The Alertmanager fixture works: a real Alertmanager delivers firing, then resolved, webhooks.

The receiver here is a tiny http.server on loopback that records every request. With
FOLLOWTHROUGH_SAVE_PAYLOADS=1 the test also rewrites
tests/webhook_payloads/alertmanager_real_resolved.json with the bytes Alertmanager sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.servers.alertmanager import Alertmanager

SAVED_RESOLVED = Path(__file__).parent / "webhook_payloads" / "alertmanager_real_resolved.json"
WAIT = 30.0


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Recorder:
    """Every request the webhook receiver got, in order."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._lock = threading.Lock()

    def add(self, request: Received) -> None:
        with self._lock:
            self.requests.append(request)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    async def wait_for(
        self, what: str, predicate: Callable[[Received], bool], timeout: float = WAIT
    ) -> Received:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for request in self.snapshot():
                if predicate(request):
                    return request
            await asyncio.sleep(0.05)
        got = [r.body.decode(errors="replace") for r in self.snapshot()]
        raise AssertionError(f"no {what} notification within {timeout:.0f}s; got: {got}")


@contextmanager
def webhook_receiver(path: str) -> Iterator[tuple[str, Recorder]]:
    """An HTTP server on 127.0.0.1 answering 200 to everything; yields (url, recorder)."""
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            recorder.add(Received("POST", self.path, dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{path}", recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_alertmanager_delivers_firing_then_resolved(tmp_path: Path) -> None:
    token = f"test-token-{uuid.uuid4().hex}"
    labels = {
        "alertname": "FollowthroughFixtureCheck",
        "service": "checkout",
        "severity": "page",
        "run": uuid.uuid4().hex[:8],
    }
    annotations = {"summary": "Checkout latency above 2s", "runbook": "https://runbooks.test/x"}
    starts_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)

    with webhook_receiver("/webhooks/alertmanager") as (url, recorder):
        async with Alertmanager(tmp_path, webhook_url=url, bearer_token=token) as am:
            began = time.monotonic()
            await am.fire(labels, annotations, starts_at)
            firing = await recorder.wait_for("firing", lambda r: r.json()["status"] == "firing")
            fired_after = time.monotonic() - began

            resolving = time.monotonic()
            await am.resolve(labels, annotations, starts_at)
            resolved = await recorder.wait_for(
                "resolved", lambda r: r.json()["status"] == "resolved"
            )
            resolved_after = time.monotonic() - resolving
    print(f"\nfiring notification after {fired_after:.2f}s, resolved after {resolved_after:.2f}s")

    # Exactly one firing and one resolved: repeat_interval keeps the firing one from repeating.
    assert [r.json()["status"] for r in recorder.snapshot()] == ["firing", "resolved"]

    for request in (firing, resolved):
        assert request.method == "POST"
        assert request.path == "/webhooks/alertmanager"
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert headers["authorization"] == f"Bearer {token}"
        assert headers["content-type"] == "application/json"
        payload = request.json()
        assert payload["version"] == "4"
        assert payload["receiver"] == "followthrough"
        assert payload["groupKey"].startswith("{}:{")
        assert f'run="{labels["run"]}"' in payload["groupKey"]
        assert payload["commonLabels"] == labels
        assert payload["commonAnnotations"] == annotations
        assert payload["groupLabels"] == labels  # group_by: ['...']
        assert payload["truncatedAlerts"] == 0
        assert len(payload["alerts"]) == 1
        alert = payload["alerts"][0]
        assert alert["labels"] == labels
        assert alert["annotations"] == annotations
        assert _parse(alert["startsAt"]) == starts_at
        assert isinstance(alert["fingerprint"], str) and len(alert["fingerprint"]) == 16

    fired, done = firing.json(), resolved.json()
    assert fired["groupKey"] == done["groupKey"]
    assert fired["alerts"][0]["fingerprint"] == done["alerts"][0]["fingerprint"]
    assert fired["alerts"][0]["status"] == "firing"
    # A firing alert's endsAt is Go's zero time, whatever Alertmanager holds internally.
    assert fired["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert done["alerts"][0]["status"] == "resolved"
    ended = _parse(done["alerts"][0]["endsAt"])
    assert starts_at < ended <= datetime.now(UTC)

    if os.environ.get("FOLLOWTHROUGH_SAVE_PAYLOADS") == "1":
        SAVED_RESOLVED.parent.mkdir(exist_ok=True)
        SAVED_RESOLVED.write_bytes(resolved.body)
    if SAVED_RESOLVED.exists():
        # The saved reference still has the shape a live Alertmanager sends.
        saved = json.loads(SAVED_RESOLVED.read_bytes())
        assert saved.keys() == done.keys()
        assert saved["alerts"][0].keys() == done["alerts"][0].keys()
        assert saved["status"] == "resolved"


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
