"""Building a `jira` client that cannot surprise a worker, and naming its failures.

The library is synchronous (call it in a thread) and has defaults that do not suit a worker:
it GETs /rest/api/2/serverInfo in its constructor (and a non-Jira JSON answer there raises
KeyError), it retries a 429 or 503 with Retry-After by sleeping, POST /rest/api/2/issue
included (a create whose reply was lost becomes two issues), it retries a refused connection
after 10, 20, 40 s, and it waits for an answer forever. So every client here is built with
`get_server_info=False`, `max_retries=0` and a (connect, read) timeout: one HTTP request per
call, and a failure comes back at once, to the activity's retry policy (which backs off, and
finds a created issue again before creating: see `JiraTracker.ensure_ticket`).

A `JIRAError`'s str() carries the request headers, Basic credentials included: never log or
chain one. `translate()` turns it (and the `requests` failures) into our JiraRefused or
JiraUnavailable, whose messages say what was being done, what Jira said, and no token.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import requests

from followthrough.integrations.jira.errors import JiraError, JiraRefused, JiraUnavailable
from followthrough.integrations.outbound import describe_error, network_failure, retry_after

if TYPE_CHECKING:
    from jira import JIRA

SETTINGS_HINT = "check FOLLOWTHROUGH_JIRA_USER and FOLLOWTHROUGH_JIRA_TOKEN"


def connect(
    url: str,
    user: str,
    token: str,
    *,
    timeout: float,
    connect_timeout: float = 10.0,
    cloud: bool | None = None,
) -> JIRA:
    """A client that sends nothing until called, never retries, and waits at most `timeout`.

    `cloud` sets what the library would have read from serverInfo (its Cloud-only paths, such
    as user search by `query`); None leaves it unknown, which the library treats as Server.
    """
    from jira import JIRA

    client = JIRA(
        server=url.rstrip("/"),
        basic_auth=(user, token),
        get_server_info=False,
        max_retries=0,
        timeout=(min(connect_timeout, timeout), timeout),
    )
    if cloud is not None:
        client.deploymentType = "Cloud" if cloud else "Server"
    return client


def translate(
    err: BaseException, *, doing: str, base: str, user: str, token: str, timeout: float
) -> JiraError | None:
    """Our error for a failed call (`doing`: "creating PM's ticket for X"), or None when `err`
    is not a Jira or network failure (a bug: let it raise)."""
    from jira import JIRAError

    if isinstance(err, JIRAError):
        found = _from_jira_error(err, doing=doing, base=base, user=user)
    elif isinstance(err, requests.exceptions.JSONDecodeError):
        found = JiraRefused(
            f"Jira at {base} answered {doing} with something other than JSON "
            "(is FOLLOWTHROUGH_JIRA_URL Jira's base URL?)"
        )
    elif isinstance(err, requests.Timeout):
        found = JiraUnavailable(f"Jira at {base} did not answer within {timeout:g}s ({doing})")
    elif isinstance(err, requests.ConnectionError):
        found = JiraUnavailable(f"could not reach Jira at {base} ({doing}): {network_failure(err)}")
    elif isinstance(err, requests.RequestException):
        found = JiraRefused(
            f"the request to Jira at {base} failed ({doing}): {describe_error(err)}"
        )
    else:
        return None
    return _scrubbed(found, token)


def _from_jira_error(err: Any, *, doing: str, base: str, user: str) -> JiraError:
    status: int | None = err.status_code
    said = jira_said(err)
    tail = f": {said}" if said else ""
    if status is None:
        return JiraUnavailable(f"Jira at {base} gave no usable answer ({doing}){tail}")
    if status in (429, 408) or status >= 500:
        wait = retry_after(getattr(err, "response", None))
        hint = f"; it asked us to retry after {wait:g}s" if wait is not None else ""
        return JiraUnavailable(f"Jira answered {status} ({doing}){tail}{hint}", wait)
    if status == 401:
        return JiraRefused(
            f"Jira refused the credentials of {user} (401) ({doing}): {SETTINGS_HINT}"
            + (f". Jira said: {said}" if said else "")
        )
    if status == 403:
        return JiraRefused(f"Jira forbids {user} this (403) ({doing}){tail}")
    if status == 404 and not _jira_json(err):
        return JiraRefused(
            f"{base} answered 404 without Jira's error messages ({doing}): "
            "is FOLLOWTHROUGH_JIRA_URL Jira's base URL?"
        )
    return JiraRefused(f"Jira refused this ({status}) ({doing}){tail}")


def jira_said(err: Any) -> str:
    """Jira's own words: its errorMessages and field errors (the library joins them); a proxy's
    HTML error page as its text."""
    said = str(err.text or "").strip()
    if said.startswith("<"):
        said = " ".join(re.sub(r"<[^>]*>", " ", said).split())
    return said[:2000]


def _jira_json(err: Any) -> bool:
    """Whether the error's body is Jira's error JSON (errorMessages/errors), not a web page."""
    response = getattr(err, "response", None)
    try:
        body = response.json() if response is not None else None
    except ValueError:
        return False
    return isinstance(body, dict) and ("errorMessages" in body or "errors" in body)


def field_errors(err: Any) -> dict[str, str]:
    """The `errors` object of Jira's error JSON: {field: message}; {} when there is none."""
    response = getattr(err, "response", None)
    try:
        body = response.json() if response is not None else None
    except ValueError:
        return {}
    errors = body.get("errors") if isinstance(body, dict) else None
    return {str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {}


def _scrubbed(error: JiraError, token: str) -> JiraError:
    """Belt and braces: a token in a URL or an echoed header never reaches a message."""
    if token and token in error.message:
        error.message = error.message.replace(token, "***")
        error.args = (error.message,)
    return error
