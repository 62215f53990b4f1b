"""The HTTP edge on a real uvicorn (as `followthrough api` serves it), over raw loopback sockets.

What a client sends cannot make the server hold memory or a connection it has not agreed to: a
body is refused on its Content-Length or while it streams (413), an `/api` request without a
token before one body byte is read (401), a body that trickles in at its deadline (408). Every
answer carries the security headers; /metrics wants a token; /docs works offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from followthrough.api.auth import issue_token
from followthrough.domain.limits import REQUEST_BODY_BYTES
from followthrough.storage import Store
from followthrough.storage.migrate import upgrade
from tests.api_support import WEBHOOK_SECRETS, api_served, api_settings
from tests.processes import free_port

METRICS_TOKEN = "scrape-token-for-tests"
DEADLINE_SECONDS = 2  # the served app's request_body_seconds
NO_ANSWER = 20  # seconds: only a guard, so a server that waits for the whole body fails the test
HUGE = 200 * 1024 * 1024


@dataclass
class Served:
    host: str
    port: int
    token: str  # bob's API token

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@pytest.fixture(scope="module")
async def served(
    time_skipping: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp("edge")
    url = f"sqlite:///{data_dir / 'followthrough.db'}"
    upgrade(url)
    store = Store(url)
    settings = api_settings(
        data_dir,
        "edge-unused",
        api_port=free_port(),
        metrics_token=METRICS_TOKEN,
        request_body_seconds=DEADLINE_SECONDS,
    )
    token = issue_token(store, settings.loaded_policy, "bob", "edge", datetime.now(UTC))
    async with api_served(time_skipping.client, store, settings):
        yield Served(settings.api_host, settings.api_port, token)
    store.close()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and (Content-Length) body of one HTTP/1.1 response."""
    status_line = await asyncio.wait_for(reader.readline(), NO_ANSWER)
    assert status_line, "the server closed the connection without answering"
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def _send(
    served: Served, head: list[str], body: bytes = b""
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(served.host, served.port)
    request = [*head, f"Host: {served.host}:{served.port}", "", ""]
    writer.write("\r\n".join(request).encode() + body)
    await writer.drain()
    return reader, writer


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def test_a_huge_body_without_a_token_is_refused_before_it_is_read(served: Served) -> None:
    """Four 200 MB bodies without a token at once: each is refused (413, by its length) after
    the server got only a small prefix, and the serving process's memory does not grow."""
    prefix = b"[" * 8192  # what a client sends before it reads the answer; the rest never
    tracemalloc.start()
    try:
        connections = [
            await _send(
                served,
                [
                    "POST /api/postmortems/x/approve HTTP/1.1",
                    "Content-Type: application/json",
                    f"Content-Length: {HUGE}",
                ],
                prefix,
            )
            for _ in range(4)
        ]
        answers = [await _answer(reader) for reader, _ in connections]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for _, writer in connections:
        await _close(writer)
    for code, _, body in answers:
        assert code == 413, body
    assert peak < 8 * 1024 * 1024, f"the server held {peak} bytes"


async def test_a_streamed_body_without_a_token_is_refused_before_it_is_read(
    served: Served,
) -> None:
    reader, writer = await _send(
        served,
        ["POST /api/postmortems/x/approve HTTP/1.1", "Transfer-Encoding: chunked"],
        b"10000\r\n" + b"[" * 0x10000 + b"\r\n",  # one 64 KiB chunk, and no end
    )
    code, headers, body = await _answer(reader)
    await _close(writer)
    assert code == 401, body
    assert headers["www-authenticate"] == "Bearer"
    assert b"Authorization: Bearer ft_" in body


async def test_a_body_over_the_limit_is_refused_by_its_length_naming_the_limit(
    served: Served,
) -> None:
    for path, auth in (
        ("/api/postmortems/x/approve", [f"Authorization: Bearer {served.token}"]),
        ("/webhooks/generic", []),
        ("/login", []),
    ):
        reader, writer = await _send(
            served, [f"POST {path} HTTP/1.1", *auth, f"Content-Length: {HUGE}"], b"{"
        )
        code, headers, body = await _answer(reader)
        await _close(writer)
        assert code == 413, (path, body)
        assert f"{REQUEST_BODY_BYTES} bytes".encode() in body
        assert headers["connection"] == "close"


async def test_a_body_a_little_over_the_limit_is_read_before_its_refusal(served: Served) -> None:
    """Refused by its length, but read to its end first: a connection closed while bytes are
    still arriving resets, and the client would never read its 413."""
    size = REQUEST_BODY_BYTES + 200_000
    head = ["POST /webhooks/generic HTTP/1.1", f"Content-Length: {size}"]
    reader, writer = await _send(served, head, b"{" * (size // 2))
    with pytest.raises(TimeoutError):  # no answer while the body is still on its way
        await asyncio.wait_for(reader.readline(), 0.5)
    writer.write(b"{" * (size - size // 2))
    await writer.drain()
    code, headers, body = await _answer(reader)
    await _close(writer)
    assert code == 413, body
    assert headers["connection"] == "close"


async def test_a_streamed_body_is_cut_off_at_the_limit(served: Served) -> None:
    """Chunked, with no Content-Length and no end: answered 413 once the limit is passed, not
    buffered until the sender stops (a webhook's signature is over the raw body, so the bytes
    read before verifying are bounded this way)."""
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    over = REQUEST_BODY_BYTES // 0x10000 + 1  # one chunk past the limit, all of it read
    for path, auth in (
        ("/webhooks/generic", [f"Authorization: Bearer {WEBHOOK_SECRETS['generic']}"]),
        ("/api/postmortems/x/approve", [f"Authorization: Bearer {served.token}"]),
    ):
        reader, writer = await _send(
            served, [f"POST {path} HTTP/1.1", *auth, "Transfer-Encoding: chunked"], chunk * over
        )
        code, _, body = await _answer(reader)
        await _close(writer)
        assert code == 413, (path, body)
        assert f"{REQUEST_BODY_BYTES} bytes".encode() in body


async def test_a_body_that_trickles_in_is_cut_off_at_its_deadline(served: Served) -> None:
    reader, writer = await _send(
        served,
        [
            "POST /api/postmortems/x/approve HTTP/1.1",
            f"Authorization: Bearer {served.token}",
            "Content-Type: application/json",
            "Content-Length: 100",
        ],
        b'{"comment": ',  # and then nothing more
    )
    code, headers, body = await _answer(reader)
    await _close(writer)
    assert code == 408, body
    assert f"within {DEADLINE_SECONDS} s".encode() in body
    assert headers["connection"] == "close"


async def test_every_answer_carries_the_security_headers(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        answers = {
            "/login": await http.get("/login"),
            "/act/forged": await http.get("/act/forged"),
            "/nowhere": await http.get("/nowhere"),
            "/docs": await http.get("/docs"),
            "/api/me": await http.get("/api/me"),
        }
    for path, answer in answers.items():
        policy = answer.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in policy, path
        assert answer.headers.get("x-content-type-options") == "nosniff", path
        assert answer.headers.get("referrer-policy") == "no-referrer", path


async def test_the_docs_work_offline_and_take_a_bearer_token(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        docs = await http.get("/docs")
        assert docs.status_code == 200
        assert "cdn." not in docs.text and "https://" not in docs.text
        assert '"/docs/assets/swagger-ui-bundle.js"' in docs.text
        script = await http.get("/docs/assets/swagger-ui-bundle.js")
        assert script.status_code == 200 and "SwaggerUIBundle" in script.text
        assert (await http.get("/docs/assets/swagger-ui.css")).status_code == 200
        spec = (await http.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["api_token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a personal API token: `followthrough token create --for NAME`",
    }
    assert {"api_token": []} in spec["paths"]["/api/me"]["get"]["security"]


async def test_metrics_need_the_scrape_token_or_a_persons_token(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer not-it"})
        assert wrong.status_code == 401
        for token in (METRICS_TOKEN, served.token):
            scraped = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert scraped.status_code == 200
            assert "followthrough_http_requests_total" in scraped.text
