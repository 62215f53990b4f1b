"""Building an `atlassian-python-api` Confluence client that cannot surprise a worker, and naming
its failures.

The library is synchronous (call it in a thread). By default it sleeps out a 429's Retry-After
and sends the request again, a create included; here `retry_with_header` and
`backoff_and_retry` are off: a 429 or 503 comes back at once to the activity's retry policy,
which backs off (with Confluence's Retry-After) and finds a created page again before
creating. Every request waits at most the configured timeout.

The library raises `requests.HTTPError` carrying Confluence's `message`, or its own `ApiError`
subclasses wrapping one (`reason`); `translate()` turns either, and the network's failures, into
ConfluenceRefused or ConfluenceUnavailable, whose messages say what was being done and what
Confluence said, never the token.
"""

from __future__ import annotations

from typing import Any

import requests

from followthrough.integrations.confluence.config import ConfluenceConfig
from followthrough.integrations.confluence.errors import (
    ConfluenceError,
    ConfluenceRefused,
    ConfluenceUnavailable,
)
from followthrough.integrations.outbound import describe_error, network_failure, retry_after

SETTINGS_HINT = "check FOLLOWTHROUGH_CONFLUENCE_USER and FOLLOWTHROUGH_CONFLUENCE_TOKEN"


def connect(config: ConfluenceConfig) -> Any:
    """The library's client for the site (Cloud: under /wiki), sending nothing until called."""
    from atlassian import Confluence

    return Confluence(  # type: ignore[no-untyped-call]
        url=config.base_url,
        username=config.user,
        password=config.token,
        cloud=config.is_cloud,
        timeout=max(1, round(config.timeout)),
        backoff_and_retry=False,
        retry_with_header=False,
    )


def translate(
    err: BaseException, *, doing: str, config: ConfluenceConfig
) -> ConfluenceError | None:
    """Our error for a failed call (`doing`: "creating the page of PM"), or None when `err` is
    neither Confluence's nor the network's (a bug: let it raise)."""
    from atlassian.errors import ApiError

    base = config.base_url
    response = _response_of(err)
    if response is not None:
        found = _from_status(response, str(err), doing=doing, base=base, user=config.user)
    elif isinstance(err, requests.Timeout):
        found = ConfluenceUnavailable(
            f"Confluence at {base} did not answer within {config.timeout:g}s ({doing})"
        )
    elif isinstance(err, requests.ConnectionError):
        found = ConfluenceUnavailable(
            f"could not reach Confluence at {base} ({doing}): {network_failure(err)}"
        )
    elif isinstance(err, requests.exceptions.JSONDecodeError):
        found = ConfluenceRefused(
            f"Confluence at {base} answered {doing} with something other than JSON "
            "(is FOLLOWTHROUGH_CONFLUENCE_URL Confluence's base URL?)"
        )
    elif isinstance(err, (requests.RequestException, ApiError)):
        found = ConfluenceRefused(
            f"the request to Confluence at {base} failed ({doing}): {describe_error(err)}"
        )
    else:
        return None
    if config.token and config.token in found.message:
        found.message = found.message.replace(config.token, "***")
        found.args = (found.message,)
    return found


def _response_of(err: BaseException) -> requests.Response | None:
    """The HTTP answer behind the library's error: its own, or that of the HTTPError it wraps."""
    for candidate in (err, getattr(err, "reason", None)):
        response = getattr(candidate, "response", None)
        if isinstance(response, requests.Response):
            return response
    return None


def _from_status(
    response: requests.Response, said: str, *, doing: str, base: str, user: str
) -> ConfluenceError:
    status = response.status_code
    said = (confluence_said(response) or said).strip()[:1000]
    tail = f": {said}" if said else ""
    if status in (408, 409, 429) or status >= 500:
        wait = retry_after(response)
        hint = f"; it asked us to retry after {wait:g}s" if wait is not None else ""
        return ConfluenceUnavailable(f"Confluence answered {status} ({doing}){tail}{hint}", wait)
    if status == 401:
        return ConfluenceRefused(
            f"Confluence refused the credentials of {user} (401) ({doing}): {SETTINGS_HINT}"
        )
    if status == 403:
        return ConfluenceRefused(f"Confluence forbids {user} this (403) ({doing}){tail}")
    return ConfluenceRefused(f"Confluence refused this ({status}) ({doing}){tail}")


def confluence_said(response: requests.Response) -> str:
    """Confluence's own `message` (Cloud and Data Center both word errors so)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("message") or "") if isinstance(body, dict) else ""
