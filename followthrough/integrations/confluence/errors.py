"""The two ways a Confluence call fails, as the workflows need to tell them apart.

`ConfluenceRefused`: Confluence answered and will answer the same again (bad credentials, no
permission on the space, a space or parent page it does not know, a body it cannot take):
retrying cannot help. `ConfluenceUnavailable`: it did not answer, or asked us to come back
(429, 5xx, a timeout, a refused connection, a page edited while we wrote it: 409): the same
call later will do. Messages name what was being done and never carry the token.
"""

from __future__ import annotations


class ConfluenceError(Exception):
    """A Confluence call failed; `message` is safe to log and to record (no credentials)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfluenceRefused(ConfluenceError):
    """Permanent: retrying the same call cannot succeed."""


class ConfluenceUnavailable(ConfluenceError):
    """Transient; `retry_after` is Confluence's hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
