"""The two ways a GitHub call fails, as the workflows need to tell them apart (as for Jira).

`GitHubRefused`: GitHub answered and will answer the same again (bad credentials, no access, a
repository it does not know, a field it refuses): a person must change the settings or GitHub.
`GitHubUnavailable`: GitHub did not answer, or asked us to come back (a rate limit, 5xx, a
timeout, a refused connection): the same call later will do. Messages never carry the token.
"""

from __future__ import annotations

from followthrough.integrations.trackers import TrackerError, TrackerRefused, TrackerUnavailable


class GitHubError(TrackerError):
    """A GitHub call failed; `message` is safe to log and to record (no credentials)."""


class GitHubRefused(GitHubError, TrackerRefused):
    """Permanent: retrying the same call cannot succeed."""


class GitHubUnavailable(GitHubError, TrackerUnavailable):
    """Transient: GitHub is down, slow or rate limiting; `retry_after` is its hint in seconds."""
