"""Calling out only where the policy allows (followthrough.domain.outbound says where), and
what went wrong on the way, in words.

    target = await pin(url, policy.outbound, timeout)   # OutboundRefused: not there
    await client.get(target.url, headers=target.headers, extensions=target.extensions)
    except httpx.HTTPError as err: network_failure(err)  # "connection refused", ...

The host name is resolved once, every address it resolves to is judged, and the request goes to
the address that was judged (with the name as Host and as the TLS server name, so certificates
are still verified for the name). A DNS answer that changes between the check and the connection
cannot smuggle in 127.0.0.1. Redirects are never followed by the checkers, so a public host
cannot bounce a check to a refused one.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from followthrough.domain.outbound import IPAddress, OutboundPolicy


class OutboundRefused(Exception):
    """The URL may not be called: `reason` says why, in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """Where to send the request: the judged address, and the name it stands for."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


async def pin(url: str, policy: OutboundPolicy, timeout: float) -> Target:
    """The URL with its host resolved and judged; OutboundRefused when the policy does not allow
    it. A name that does not resolve raises socket.gaierror, as a connection would."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as err:
        raise OutboundRefused(f"'{url}' is not a URL: {err}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise OutboundRefused(f"'{url}' is not an http:// or https:// URL with a host")
    host = parsed.host
    literal = _literal(host)
    addresses = [literal] if literal is not None else await _resolve(parsed, timeout)
    for address in addresses:
        reason = policy.refusal(host, address)
        if reason is not None:
            raise OutboundRefused(reason)
    if literal is not None:
        return Target(url=parsed)
    return Target(
        url=parsed.copy_with(host=str(addresses[0])),
        headers={"Host": parsed.netloc.decode("ascii")},
        extensions={"sni_hostname": host},
    )


async def _resolve(url: httpx.URL, timeout: float) -> list[IPAddress]:
    port = url.port or (443 if url.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        found = await loop.getaddrinfo(url.host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])  # fe80::1%eth0
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return addresses


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def describe_error(err: BaseException) -> str:
    """An exception as words a reader of the evidence understands, with its type for searching."""
    text = str(err).strip()
    name = type(err).__name__
    return f"{name}: {text}" if text else name


def network_failure(err: BaseException) -> str:
    """What went wrong on the network, in words: the innermost cause of a client library's
    wrapped exception (httpx says 'All connection attempts failed'; the socket said refused)."""
    seen: set[int] = set()
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        reason = getattr(current, "reason", None)  # urllib3 keeps the cause in .reason
        following = current.__cause__ or current.__context__
        current = reason if isinstance(reason, BaseException) else following
    for cause in reversed(chain):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed ({cause.verify_message})"
        if isinstance(cause, ssl.SSLError):
            return f"the TLS handshake failed ({cause.reason or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "the connection was reset"
        if isinstance(cause, socket.gaierror):
            return f"the host name does not resolve ({cause.strerror})"
        if isinstance(cause, TimeoutError):
            return "the connection timed out"
    return describe_error(chain[-1] if len(chain) > 1 else err)


def retry_after(response: Any) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date (which the library cannot parse)."""
    headers = getattr(response, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
