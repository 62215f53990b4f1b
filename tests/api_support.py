"""The HTTP API in-process for tests: the real app around a real Temporal server and store.

Requests go through httpx's ASGI transport (no port needed); the worker, Temporal and the
database are the real ones from the fixtures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from followthrough.api import Services, create_app
from followthrough.api.auth import issue_token
from followthrough.domain.outbound import OutboundPolicy
from followthrough.domain.policy import DEFAULT_POLICY_PATH, Policy, load_policy
from followthrough.notices.delivery import Mailer
from followthrough.notices.render import Links
from followthrough.runtime import serve_api_until
from followthrough.settings import Settings
from followthrough.storage import Store

LINK_SECRET = "test-link-secret-0123456789abcdef"
PUBLIC_URL = "http://followthrough.test"
WEBHOOK_SECRETS = {
    "pagerduty": "pd-secret-for-tests",
    "opsgenie": "opsgenie-token-for-tests",
    "incidentio": "whsec_dGVzdC1zdml4LXNlY3JldC0xMjM0NTY3ODkw",
    "alertmanager": "alertmanager-token-for-tests",
    "grafana": "grafana-secret-for-tests",
    "firehydrant": "firehydrant-secret-for-tests",
    "generic": "generic-secret-for-tests",
}


# The test servers (HTTP endpoints, Prometheus) listen on loopback, which the shipped policy does
# not let checks call: the tests' policies list it, as an operator would list internal hosts.
LOOPBACK_HOSTS = ["127.0.0.1", "::1", "localhost"]


def loopback_policy_file(directory: Path) -> Path:
    """The shipped policy, with loopback under outbound.allowed_hosts, as a file in `directory`."""
    shipped = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    allowed = "allowed_hosts: [" + ", ".join(f"'{h}'" for h in LOOPBACK_HOSTS) + "]"
    assert "allowed_hosts: []" in shipped
    path = directory / "loopback-policy.yaml"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(shipped.replace("allowed_hosts: []", allowed), encoding="utf-8")
    return path


def loopback_policy() -> Policy:
    """The shipped policy, with loopback under outbound.allowed_hosts."""
    shipped = load_policy()
    return shipped.model_copy(update={"outbound": OutboundPolicy(allowed_hosts=LOOPBACK_HOSTS)})


def api_settings(data_dir: Path, task_queue: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "task_queue": task_queue,
        "policy": loopback_policy_file(data_dir),
        "link_secret": LINK_SECRET,
        "public_url": PUBLIC_URL,
        **{f"webhook_secret_{source}": secret for source, secret in WEBHOOK_SECRETS.items()},
    }
    values.update(overrides)
    return Settings(**values)


def link_mailer(outbox_dir: Path) -> Mailer:
    """The local outbox, with one-click links signed as the API expects."""
    return Mailer(
        sender="Followthrough <followthrough@localhost>",
        outbox_dir=outbox_dir,
        links=Links(
            temporal_ui="http://127.0.0.1:8233", public_url=PUBLIC_URL, link_secret=LINK_SECRET
        ),
    )


class Api:
    """An httpx client for the app, with a token per person on demand."""

    def __init__(self, http: httpx.AsyncClient, services: Services) -> None:
        self.http = http
        self.services = services
        self._tokens: dict[str, str] = {}

    def token(self, person: str) -> str:
        if person not in self._tokens:
            self._tokens[person] = issue_token(
                self.services.store, self.services.policy, person, "tests", datetime.now(UTC)
            )
        return self._tokens[person]

    async def get(self, path: str, person: str | None = None, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, headers=self._auth(person), **kwargs)

    async def post(
        self, path: str, person: str | None = None, json: Any = None, **kwargs: Any
    ) -> httpx.Response:
        return await self.http.post(path, headers=self._auth(person), json=json, **kwargs)

    def _auth(self, person: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(person)}"} if person else {}


@asynccontextmanager
async def api_served(client: Client, store: Store, settings: Settings) -> AsyncIterator[str]:
    """The real app on uvicorn at settings.api_port, as `followthrough api` serves it, until the
    block ends; its base URL once it accepts connections."""
    stop, listening = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(serve_api_until(client, store, settings, stop, listening))
    up = asyncio.create_task(listening.wait())
    await asyncio.wait([server, up], return_when=asyncio.FIRST_COMPLETED)
    up.cancel()
    if server.done():
        server.result()  # it failed to start: say why
    try:
        yield f"http://{settings.api_host}:{settings.api_port}"
    finally:
        stop.set()
        await server


@asynccontextmanager
async def api_for(
    client: Client, store: Store, settings: Settings, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[Api]:
    services = Services(settings=settings, store=store, client=client)
    if clock is not None:
        services.clock = clock
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
        yield Api(http, services)
