"""The two ways a Jira call fails, as the workflows need to tell them apart.

`JiraRefused`: Jira answered and will answer the same again (bad credentials, no permission, a
project, issue type, priority or field it does not know): retrying cannot help, a person must
change the settings or Jira. `JiraUnavailable`: Jira did not answer, or asked us to come back
(429, 5xx, a timeout, a refused connection): the same call later will do. Messages name what
was being done and never carry the token.
"""

from __future__ import annotations

from followthrough.integrations.trackers import TrackerError, TrackerRefused, TrackerUnavailable


class JiraError(TrackerError):
    """A Jira call failed; `message` is safe to log and to record (no credentials)."""


class JiraRefused(JiraError, TrackerRefused):
    """Permanent: retrying the same call cannot succeed."""


class JiraUnavailable(JiraError, TrackerUnavailable):
    """Transient: Jira is down, slow, or rate limiting; `retry_after` is its hint in seconds."""
