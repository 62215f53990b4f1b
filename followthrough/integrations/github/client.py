"""Building a `githubkit` client that cannot surprise a worker, and naming its failures.

githubkit's defaults do not suit a worker: it retries a rate limit (after sleeping its reset
time) and a 5xx three times by itself, POST /issues included (a create whose reply was lost
becomes two issues), and keeps an HTTP cache. So every client here has `auto_retry=False`,
`http_cache=False` and a (connect, read) timeout: one HTTP request per call, and a failure comes
back at once, to the activity's retry policy (which backs off, and finds a created issue again
before creating: see `GitHubTracker.ensure_ticket`).

`translate()` turns githubkit's exceptions into GitHubRefused or GitHubUnavailable, whose
messages say what was being done and what GitHub said, never the token.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from githubkit import GitHub, TokenAuthStrategy
from githubkit.exception import RateLimitExceeded, RequestError, RequestFailed, RequestTimeout
from pydantic import ValidationError

from followthrough.integrations.github.config import GitHubConfig
from followthrough.integrations.github.errors import GitHubError, GitHubRefused, GitHubUnavailable
from followthrough.integrations.outbound import network_failure, retry_after

SETTINGS_HINT = "check FOLLOWTHROUGH_GITHUB_TOKEN"


def connect(config: GitHubConfig) -> GitHub[TokenAuthStrategy]:
    """A client that never retries, caches nothing, and waits at most `config.timeout`."""
    return GitHub(
        TokenAuthStrategy(config.token),
        base_url=config.base_url,
        timeout=httpx.Timeout(config.timeout, connect=min(config.connect_timeout, config.timeout)),
        auto_retry=False,
        http_cache=False,
        user_agent="Followthrough",
    )


def translate(err: BaseException, *, doing: str, config: GitHubConfig) -> GitHubError | None:
    """Our error for a failed call, or None when `err` is not GitHub's (a bug: let it raise)."""
    base = config.base_url
    found: GitHubError
    if isinstance(err, RateLimitExceeded):
        wait = max(0.0, err.retry_after.total_seconds())
        found = GitHubUnavailable(
            f"GitHub's rate limit was reached ({doing}); it asked us to retry after {wait:g}s",
            wait,
        )
    elif isinstance(err, RequestFailed):
        found = _from_status(err.response.raw_response, doing=doing, base=base)
    elif isinstance(err, RequestTimeout):
        found = GitHubUnavailable(
            f"GitHub at {base} did not answer within {config.timeout:g}s ({doing})"
        )
    elif isinstance(err, RequestError):
        found = GitHubUnavailable(
            f"could not reach GitHub at {base} ({doing}): {network_failure(err.exc)}"
        )
    elif isinstance(err, ValidationError):  # an answer that is not GitHub's shape: it repeats
        found = GitHubRefused(
            f"{base} answered {doing} with something other than GitHub's REST API "
            "(is FOLLOWTHROUGH_GITHUB_URL GitHub's API URL?)"
        )
    else:
        return None
    if config.token and config.token in found.message:  # belt and braces
        found.message = found.message.replace(config.token, "***")
        found.args = (found.message,)
    return found


def _from_status(response: httpx.Response, *, doing: str, base: str) -> GitHubError:
    status = response.status_code
    said = github_said(response)
    tail = f": {said}" if said else ""
    if status in (429, 408) or status >= 500 or rate_limited(response):
        wait = retry_after(response) if "retry-after" in response.headers else reset_in(response)
        hint = f"; it asked us to retry after {wait:g}s" if wait is not None else ""
        return GitHubUnavailable(f"GitHub answered {status} ({doing}){tail}{hint}", wait)
    if status == 401:
        return GitHubRefused(f"GitHub refused the token (401) ({doing}): {SETTINGS_HINT}{tail}")
    if status == 403:
        return GitHubRefused(f"GitHub forbids the token this (403) ({doing}){tail}")
    if status == 404:
        return GitHubRefused(
            f"GitHub answered 404 ({doing}): no such repository or issue, or the token cannot "
            f"see it (is FOLLOWTHROUGH_GITHUB_URL {base} GitHub's API URL?){tail}"
        )
    return GitHubRefused(f"GitHub refused this ({status}) ({doing}){tail}")


def rate_limited(response: httpx.Response) -> bool:
    """A 403 that is GitHub's rate limit (primary: no requests left; secondary: Retry-After)."""
    return response.status_code == 403 and (
        response.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in response.headers
    )


def reset_in(response: httpx.Response) -> float | None:
    """Seconds until x-ratelimit-reset (epoch seconds), when GitHub sent it."""
    value = response.headers.get("x-ratelimit-reset", "")
    if not value.isdigit():
        return None
    return max(0.0, (datetime.fromtimestamp(int(value), UTC) - datetime.now(UTC)).total_seconds())


def github_said(response: httpx.Response) -> str:
    """GitHub's own words: `message`, and each of `errors` (field, code, value or message)."""
    try:
        body: Any = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300]
    if not isinstance(body, dict):
        return ""
    words = [str(body.get("message", ""))]
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            parts = [
                f"{k}={error[k]}" for k in ("resource", "field", "code", "value") if k in error
            ]
            words.append(str(error.get("message") or ", ".join(parts)))
        else:
            words.append(str(error))
    return "; ".join(w for w in words if w)[:2000]


def field_errors(err: BaseException) -> set[str]:
    """The fields a 422's `errors` name (e.g. {"assignees"}); empty for anything else."""
    if not isinstance(err, RequestFailed) or err.response.status_code != 422:
        return set()
    try:
        body: Any = err.response.raw_response.json()
    except ValueError:
        return set()
    errors = body.get("errors") if isinstance(body, dict) else None
    return {str(e.get("field")) for e in errors or [] if isinstance(e, dict) and e.get("field")}


def error_codes(err: BaseException) -> set[str]:
    """The `code`s of a 422's errors (e.g. {"already_exists"})."""
    if not isinstance(err, RequestFailed) or err.response.status_code != 422:
        return set()
    try:
        body: Any = err.response.raw_response.json()
    except ValueError:
        return set()
    errors = body.get("errors") if isinstance(body, dict) else None
    return {str(e.get("code")) for e in errors or [] if isinstance(e, dict) and e.get("code")}
