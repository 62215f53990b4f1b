"""The two ways a Jira call fails, as the workflows need to tell them apart.

`JiraRefused`: Jira answered and will answer the same again (bad credentials, no permission, a
project, issue type, priority or field it does not know): retrying cannot help, a person must
change the settings or Jira. `JiraUnavailable`: Jira did not answer, or asked us to come back
(429, 5xx, a timeout, a refused connection): the same call later will do. Messages name what
was being done and never carry the token.
"""

from __future__ import annotations


class JiraError(Exception):
    """A Jira call failed; `message` is safe to log and to record (no credentials)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JiraRefused(JiraError):
    """Permanent: retrying the same call cannot succeed."""


class JiraUnavailable(JiraError):
    """Transient: Jira is down, slow, or rate limiting; `retry_after` is its hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
