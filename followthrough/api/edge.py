"""What every request meets before the app reads it.

FastAPI reads and parses a body before it runs a route's dependencies, so a check made there comes
after the memory is spent. These plain ASGI middlewares decide first:

* `Edge` refuses a client past its failed attempts (429), a body over REQUEST_BODY_BYTES by its
  Content-Length (413), an `/api/...` request without a live API token (401, expired included)
  or one its token's scope does not allow (403: a `read` token changes nothing), and a `/scim/...`
  request without FOLLOWTHROUGH_SCIM_TOKEN (401; 404 when SCIM is off, in SCIM's error shape),
  all before one body byte is read; it then bounds what the app may read: 413 past the limit
  while streaming, 408 when the body has not arrived within the deadline.
* `SecurityHeaders` puts the Content-Security-Policy, nosniff and no-referrer on every response,
  the app's own error pages and the refusals above included.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import TYPE_CHECKING

from fastapi import HTTPException, status
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from followthrough.api.auth import token_holder
from followthrough.api.throttle import LINKS, TOKENS, Client, Guessed
from followthrough.domain.limits import REQUEST_BODY_BYTES

if TYPE_CHECKING:
    from followthrough.api.services import Services

# The dashboard's pages: nothing from elsewhere, no scripts at all, never framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# /docs runs Swagger UI: its script and styles from our own /docs/assets, plus the one inline
# script FastAPI writes to start it; "Try it out" calls this same server.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)

BODY_LIMIT = f"{REQUEST_BODY_BYTES} bytes ({REQUEST_BODY_BYTES // 1024 // 1024} MiB)"
# A body refused from the request's head is still read (and dropped) up to this size before the
# answer: a connection closed with unread bytes resets, and the client never reads its refusal.
# Past it (or streamed, or waiting on 100-continue) the answer goes at once.
DRAINED_MOST = 4 * REQUEST_BODY_BYTES


# CI/CD gates read whether a service is frozen with FOLLOWTHROUGH_GATE_TOKEN, as this "person".
FREEZES = "/api/freezes"
GATE = "ci-gate"
# The identity provider provisions people and groups here with FOLLOWTHROUGH_SCIM_TOKEN.
SCIM = "/scim/"
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def _guessed_at(method: str, path: str) -> Guessed | None:
    """The secret a request to this path presents, which failed attempts are counted for."""
    if path.startswith(("/api/", SCIM)) or (method == "POST" and path == "/login"):
        return TOKENS
    return LINKS if path.startswith("/act/") else None


class Edge:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self._admit(scope)
        except HTTPException as refused:
            await self._drain(scope, receive)
            await _answer(refused, scope["path"])(scope, receive, send)
            return
        await self.app(scope, self._bounded(receive), send)

    async def _admit(self, scope: Scope) -> None:
        """Everything decided from the request's head alone: raises the refusal."""
        method, path = scope["method"], scope["path"]
        headers = Headers(scope=scope)
        client, throttle = scope.get("client"), self.services.throttle
        guessed = _guessed_at(method, path)
        if guessed and (wait := throttle.retry_after(guessed, client)) is not None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"too many failed attempts at {guessed} from your address; try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "Content-Length: not a number")
        if length is not None and int(length) > REQUEST_BODY_BYTES:
            raise _too_large()
        if path.startswith(SCIM):
            self._scim(headers.get("authorization", ""), client)
        if path.startswith("/api/"):
            credentials = headers.get("authorization", "")
            if method == "GET" and path == FREEZES and self._gate(credentials):
                scope.setdefault("state", {})["person"] = GATE  # a machine: reads freezes only
                return
            try:
                held = await token_holder(self.services, credentials, method)
            except HTTPException as refused:
                if refused.status_code == status.HTTP_401_UNAUTHORIZED and credentials.strip():
                    throttle.failed(TOKENS, client)  # a request without a token guesses nothing
                raise
            state = scope.setdefault("state", {})
            state["person"] = held.person  # auth.current_person reads it
            state["token"] = held  # a token made with it lives no longer (api/tokens.py)

    def _scim(self, credentials: str, client: Client) -> None:
        """The identity provider's bearer secret, compared in constant time; none configured:
        there is no SCIM here at all."""
        expected = self.services.settings.scim_token
        if not expected:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "SCIM is not enabled here")
        scheme, _, secret = credentials.partition(" ")
        sent = f"{scheme.lower()} {secret.strip()}".encode()
        if not hmac.compare_digest(sent, f"bearer {expected}".encode()):
            if credentials.strip():
                self.services.throttle.failed(TOKENS, client)
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "send FOLLOWTHROUGH_SCIM_TOKEN as 'Authorization: Bearer ...'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def _gate(self, credentials: str) -> bool:
        expected = self.services.settings.gate_token
        sent = credentials.encode()
        return bool(expected) and hmac.compare_digest(sent, f"Bearer {expected}".encode())

    async def _drain(self, scope: Scope, receive: Receive) -> None:
        """Read and drop the body of a refused request, if it is small enough and on its way."""
        headers = Headers(scope=scope)
        length = headers.get("content-length", "")
        if not length.isdigit() or not 0 < int(length) <= DRAINED_MOST:
            return
        if "100-continue" in headers.get("expect", "").lower():
            return  # the client sends nothing until told to
        try:
            async with asyncio.timeout(self.services.settings.request_body_seconds):
                while (message := await receive())["type"] == "http.request":
                    if not message.get("more_body", False):
                        return
        except TimeoutError:
            return

    def _bounded(self, receive: Receive) -> Receive:
        """`receive`, refusing a body past the limit or past the deadline."""
        seconds = self.services.settings.request_body_seconds
        deadline = asyncio.get_running_loop().time() + seconds
        received, complete = 0, False

        async def bounded() -> Message:
            nonlocal received, complete
            if complete:  # after the body: a disconnect, awaited for as long as the app likes
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    status.HTTP_408_REQUEST_TIMEOUT,
                    f"the request body did not arrive within {seconds:g} s",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > REQUEST_BODY_BYTES:
                    raise _too_large()
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        return bounded


def _too_large() -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"request body over the limit of {BODY_LIMIT}",
        headers={"Connection": "close"},  # the rest of the body is not read
    )


def _answer(refused: HTTPException, path: str) -> JSONResponse:
    if path.startswith(SCIM):  # what an identity provider reads (RFC 7644 3.12)
        return JSONResponse(
            {"schemas": [SCIM_ERROR], "status": str(refused.status_code), "detail": refused.detail},
            status_code=refused.status_code,
            headers=refused.headers,
            media_type="application/scim+json",
        )
    return JSONResponse(
        {"detail": refused.detail}, status_code=refused.status_code, headers=refused.headers
    )


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = (
            DOCS_CONTENT_SECURITY_POLICY if scope["path"] == "/docs" else CONTENT_SECURITY_POLICY
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", policy)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
            await send(message)

        await self.app(scope, receive, send_with_headers)
