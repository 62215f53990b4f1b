"""http_check: GET a URL and compare its status, and optionally its body or a JSON value.

Decisions, so that evidence means what it says:

- Redirects are NOT followed. The expected status is the URL's own answer, so a criterion can
  check a redirect itself (expect 301/308), and a login redirect (302 to an SSO page) never
  passes as "200". A 3xx that was not expected fails with its Location in the reason.
- TLS certificates are verified (a self-signed or expired certificate fails the check, saying so).
- `timeout_seconds` bounds the whole exchange (connect, send, and reading the body), not each
  phase. At most MAX_BODY bytes of the body are read; a longer body is cut there.
- json_path: keys separated by dots, list indexes in brackets (`status`, `checks[0].state`,
  `a.b[2][0]`); a key is always a key, even when it is all digits. json_equals compares as JSON
  does: 1 == 1.0, but true is not 1 and "1" is not 1.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from datetime import datetime
from typing import Any

import httpx

from followthrough.checks.base import Checker, result
from followthrough.checks.config import CheckConfig
from followthrough.domain.checks import CheckResult
from followthrough.domain.criteria import HttpCheck
from followthrough.domain.outbound import OutboundPolicy
from followthrough.integrations.outbound import (
    OutboundRefused,
    describe_error,
    network_failure,
    pin,
)

MAX_BODY = 1_000_000
USER_AGENT = "Followthrough-check/1 (+acceptance criterion)"
_SEGMENT = re.compile(r"\.?([A-Za-z0-9_\-]+)|\[(\d+)\]")
_MISSING = object()


class HttpChecker(Checker[HttpCheck]):
    kind = "http_check"

    async def check(self, criterion: HttpCheck, config: CheckConfig, now: datetime) -> CheckResult:
        timeout = criterion.timeout_seconds
        asked = f"GET {criterion.url} (timeout {timeout:g}s, redirects not followed)"
        try:
            status_line, headers, body, cut = await _get(criterion.url, timeout, config.outbound)
        except OutboundRefused as err:
            return result(False, now, asked, "", f"not called: {err.reason}")
        except socket.gaierror as err:
            return result(False, now, asked, "", _connect_failure(criterion.url, err))
        except (TimeoutError, httpx.TimeoutException):
            return result(False, now, asked, "", f"no answer within {timeout:g}s (the timeout)")
        except httpx.ConnectError as err:
            return result(False, now, asked, "", _connect_failure(criterion.url, err))
        except httpx.TransportError as err:
            return result(False, now, asked, "", f"the request failed: {network_failure(err)}")
        except (httpx.HTTPError, httpx.InvalidURL) as err:
            return result(False, now, asked, "", f"the request failed: {describe_error(err)}")

        status, text = status_line[0], _text(body, headers)
        shown = "\n".join(
            [f"HTTP/1.1 {status} {status_line[1]}".rstrip()]
            + [f"{k}: {v}" for k, v in headers.items() if k in ("content-type", "location")]
        )
        answer = f"{shown}\n\n{text}" + (f"\n(body cut at {MAX_BODY} bytes)" if cut else "")

        if status != criterion.expect_status:
            why = f"{status} where {criterion.expect_status} was expected"
            if 300 <= status < 400 and "location" in headers:
                why += f" (a redirect to {headers['location']}; redirects are not followed)"
            return result(False, now, asked, answer, why)
        passed_because = [f"{status} as expected"]

        if criterion.body_contains is not None:
            if criterion.body_contains not in text:
                where = f" (in the first {MAX_BODY} bytes)" if cut else ""
                why = f"the body does not contain {criterion.body_contains!r}{where}"
                return result(False, now, asked, answer, f"{status} as expected, but {why}")
            passed_because.append(f"the body contains {criterion.body_contains!r}")

        if criterion.json_path is not None:
            try:
                document = json.loads(body)
            except ValueError as err:
                why = f"the body is not JSON ({err}), so {criterion.json_path} cannot be read"
                return result(False, now, asked, answer, f"{status} as expected, but {why}")
            found, missing = json_lookup(document, criterion.json_path)
            if found is _MISSING:
                why = f"{criterion.json_path} is not in the JSON: {missing}"
                return result(False, now, asked, answer, f"{status} as expected, but {why}")
            expected = json.dumps(criterion.json_equals)
            if not json_equal(found, criterion.json_equals):
                why = f"{criterion.json_path} is {json.dumps(found)}, not {expected}"
                return result(False, now, asked, answer, f"{status} as expected, but {why}")
            passed_because.append(f"{criterion.json_path} is {expected}")

        return result(True, now, asked, answer, "; ".join(passed_because))

    async def preflight(self, criterion: HttpCheck, config: CheckConfig) -> list[str]:
        """The URL must be one the policy lets checks call: its name is resolved, nothing asked."""
        try:
            await pin(criterion.url, config.outbound, config.preflight_timeout)
        except OutboundRefused as err:
            return [f"url: {err.reason}"]
        except (OSError, TimeoutError):
            return []  # it does not resolve now: the check says so when it runs
        return []


async def _get(
    url: str, timeout: float, outbound: OutboundPolicy
) -> tuple[tuple[int, str], dict[str, str], bytes, bool]:
    """(status, reason phrase), headers (lower-case names), at most MAX_BODY bytes, and whether
    the body was cut; the whole exchange (the name's lookup included) within `timeout` seconds,
    and only to an address the policy allows."""
    async with (
        asyncio.timeout(timeout),
        httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT},
        ) as client,
    ):
        target = await pin(url, outbound, timeout)
        async with client.stream(
            "GET", target.url, headers=target.headers, extensions=target.extensions
        ) as response:
            return await _read(response)


async def _read(response: httpx.Response) -> tuple[tuple[int, str], dict[str, str], bytes, bool]:
    body = bytearray()
    cut = False
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_BODY:
            del body[MAX_BODY:]
            cut = True
            break
    headers = {k.lower(): v for k, v in response.headers.items()}
    return (response.status_code, response.reason_phrase), headers, bytes(body), cut


def _text(body: bytes, headers: dict[str, str]) -> str:
    charset = "utf-8"
    match = re.search(r"charset=\"?([\w.:-]+)", headers.get("content-type", ""), re.IGNORECASE)
    if match:
        charset = match.group(1)
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def _connect_failure(url: str, err: httpx.ConnectError | socket.gaierror) -> str:
    return f"could not connect to {httpx.URL(url).netloc.decode()}: {network_failure(err)}"


def json_lookup(document: Any, path: str) -> tuple[Any, str]:
    """The value at `path` (dots and [n] indexes), or (_MISSING, what is missing, in words)."""
    value = document
    walked = ""
    for match in _SEGMENT.finditer(path):
        key, index = match.group(1), match.group(2)
        if key is not None:
            if not isinstance(value, dict):
                where = walked or "the document"
                return _MISSING, f"{where} is {_json_kind(value)}, no key {key!r}"
            if key not in value:
                return _MISSING, f"{walked or 'the document'} has no key {key!r}"
            value = value[key]
            walked = f"{walked}.{key}" if walked else key
        else:
            position = int(index)
            if not isinstance(value, list):
                return _MISSING, f"{walked or 'the document'} is {_json_kind(value)}, not a list"
            if position >= len(value):
                return _MISSING, f"{walked or 'the document'} has {len(value)} items, no [{index}]"
            value = value[position]
            walked = f"{walked}[{index}]"
    return value, ""


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string"


def json_equal(found: Any, expected: Any) -> bool:
    """Equality as JSON means it: numbers by value, but booleans are not numbers."""
    if isinstance(found, bool) or isinstance(expected, bool):
        return isinstance(found, bool) and isinstance(expected, bool) and found == expected
    if isinstance(found, int | float) and isinstance(expected, int | float):
        return found == expected
    if isinstance(found, list) and isinstance(expected, list | tuple):
        return len(found) == len(expected) and all(
            json_equal(a, b) for a, b in zip(found, expected, strict=True)
        )
    if isinstance(found, dict) and isinstance(expected, dict):
        return found.keys() == expected.keys() and all(
            json_equal(found[k], expected[k]) for k in found
        )
    return type(found) is type(expected) and bool(found == expected)
