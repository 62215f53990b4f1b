"""ticket_resolved: the Jira issue has reached a done status and carries a resolution.

"Resolved" means both `fields.status.statusCategory.key == "done"` (Jira's category for every
done-like status, whatever a workflow names it) and `fields.resolution` set: a ticket moved to
Done without a resolution, or resolved but reopened to an in-progress status, does not pass.

With the `jira` library (synchronous, so in a thread), constructed by
`followthrough.integrations.jira.connect()` (shared with the Jira tracker) to avoid its surprises:
`get_server_info=False` (else every check first GETs /rest/api/2/serverInfo, and a non-Jira
JSON answer there raises KeyError from the constructor), `max_retries=0` (else a refused
connection sleeps 10, 20, 40 s between retries, and a 429/503 with Retry-After sleeps too: the
workflow checks again later anyway), and a (connect, read) timeout (its default is none). One
request per check: GET /rest/api/2/issue/{key}?fields=status,resolution.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from followthrough.checks.base import Checker, result
from followthrough.checks.config import CheckConfig
from followthrough.domain.checks import CheckResult
from followthrough.domain.criteria import TicketResolved
from followthrough.integrations.outbound import describe_error, network_failure

FIELDS = "status,resolution"
SETTINGS = ("FOLLOWTHROUGH_JIRA_URL", "FOLLOWTHROUGH_JIRA_USER", "FOLLOWTHROUGH_JIRA_TOKEN")


@dataclass(frozen=True)
class _Fetched:
    fields: dict[str, Any] | None  # the issue's fields when Jira answered with it
    status: int | None = None
    text: str = ""  # what came back instead (Jira's error messages, or the body)
    reason: str = ""


class TicketChecker(Checker[TicketResolved]):
    kind = "ticket_resolved"

    async def check(
        self, criterion: TicketResolved, config: CheckConfig, now: datetime
    ) -> CheckResult:
        key = criterion.ticket
        if not (config.jira_url and config.jira_user and config.jira_token):
            asked = f"Jira issue {key or '(none named)'}: status and resolution"
            unset = [
                name
                for name, value in zip(
                    SETTINGS, (config.jira_url, config.jira_user, config.jira_token), strict=True
                )
                if not value
            ]
            why = f"Jira is not configured: set {', '.join(SETTINGS)} ({', '.join(unset)} unset)"
            return result(False, now, asked, "", why)
        base = config.jira_url.rstrip("/")
        user = config.jira_user
        if key is None:
            asked = f"Jira at {base}: the item's own ticket"
            why = (
                "the criterion names no ticket: give one (ticket: PM-123); checking the item's "
                "own Jira ticket is not supported yet"
            )
            return result(False, now, asked, "", why)
        asked = f"GET {base}/rest/api/2/issue/{key}?fields={FIELDS} (as {user})"
        fetched = await asyncio.to_thread(
            _fetch, base, user, config.jira_token, key, config.jira_timeout
        )
        if fetched.fields is None:
            shown = f"HTTP {fetched.status}\n{fetched.text}" if fetched.status else fetched.text
            return result(False, now, asked, shown, fetched.reason)
        return _verdict(key, fetched.fields, asked, now)


def _verdict(key: str, fields: dict[str, Any], asked: str, now: datetime) -> CheckResult:
    status = fields.get("status")
    resolution = fields.get("resolution")
    shown = json.dumps({"key": key, "fields": fields}, sort_keys=True)
    if not isinstance(status, dict):
        return result(False, now, asked, shown, f"Jira's answer for {key} has no status field")
    category = status.get("statusCategory") or {}
    name = status.get("name", "?")
    in_category = f"{key} is {name} (status category {category.get('key', '?')})"
    if category.get("key") != "done":
        return result(False, now, asked, shown, f"{in_category}, not done")
    if not isinstance(resolution, dict):
        return result(False, now, asked, shown, f"{in_category} but has no resolution")
    resolved = f"{in_category} with resolution {resolution.get('name', '?')}"
    return result(True, now, asked, shown, resolved)


def _fetch(base: str, user: str, token: str, key: str, timeout: float) -> _Fetched:
    """The issue's status and resolution, or why not; in a worker thread (the client blocks)."""
    import requests
    from jira import JIRAError

    from followthrough.integrations.jira.client import connect

    try:
        client = connect(base, user, token, timeout=timeout)
    except (JIRAError, requests.RequestException) as err:  # not expected without server info
        return _Fetched(None, reason=f"could not set up the Jira client: {describe_error(err)}")
    try:
        issue = client.issue(key, fields=FIELDS)
        raw = issue.raw
    except JIRAError as err:
        return _Fetched(None, err.status_code, _jira_text(err), _jira_reason(err, base, user, key))
    except requests.exceptions.JSONDecodeError:
        why = f"Jira at {base} answered with something other than JSON (is it Jira's base URL?)"
        return _Fetched(None, reason=why)
    except requests.Timeout:
        return _Fetched(None, reason=f"Jira at {base} did not answer within {timeout:g}s")
    except requests.ConnectionError as err:
        return _Fetched(None, reason=f"could not reach Jira at {base}: {network_failure(err)}")
    except requests.RequestException as err:
        return _Fetched(None, reason=f"the request to Jira failed: {describe_error(err)}")
    finally:
        client.close()  # type: ignore[no-untyped-call]
    fields = raw.get("fields") if isinstance(raw, dict) else None
    if not isinstance(fields, dict):
        why = f"Jira's answer for {key} has no fields (is {base} Jira's base URL?)"
        return _Fetched(None, reason=why, text=json.dumps(raw)[:2000])
    return _Fetched(fields)


def _jira_text(err: Any) -> str:
    """Jira's own words: its errorMessages (joined by the library), else the body."""
    if err.text:
        return str(err.text)
    response = getattr(err, "response", None)
    return str(getattr(response, "text", "") or "")


def _jira_reason(err: Any, base: str, user: str, key: str) -> str:
    status = err.status_code
    said = f": {err.text}" if err.text else ""
    if status == 401:
        return (
            f"Jira refused the credentials of {user} (401): check FOLLOWTHROUGH_JIRA_USER and "
            f"FOLLOWTHROUGH_JIRA_TOKEN" + (f". Jira said: {err.text}" if err.text else "")
        )
    if status == 403:
        return f"Jira forbids {user} to see {key} (403){said}"
    if status == 404:
        if not err.text:  # no Jira error messages: likely not Jira's REST API at all
            return f"{base} answered 404 for {key} without Jira's error messages: is it Jira's URL?"
        return f"Jira has no issue {key} that {user} can see (404){said}"
    return f"Jira answered {status}{said}"
