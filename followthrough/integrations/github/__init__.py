"""GitHub Issues, the tracker of teams that plan there: each routed action item is an issue.

    tracker = GitHubTracker(settings.github_config())   # None config: no GitHub
    ref = tracker.ensure_ticket(request)                 # TicketRef("owner/repo#12", html_url)
    tracker.comment(TicketComment(key=..., dedupe_key=..., escalation=...))  # once per key
    tracker.set_due(TicketDue(key=..., due=...))         # the body's "Due:" line, and a comment
    done = tracker.done_tickets("-1d")                   # closed as completed, for reconciliation

Through `githubkit` (REST v3), built by `connect()` without retries or cache of its own; each
failure is GitHubRefused (permanent: 401/403/404/422) or GitHubUnavailable (transient: 5xx,
timeouts, 429 and rate-limit 403s, with GitHub's Retry-After or reset as the hint). The words
people read on an issue are in templates/ (wording.py), in Markdown.
"""

from followthrough.integrations.github.client import connect
from followthrough.integrations.github.config import DEFAULT_URL, GitHubConfig
from followthrough.integrations.github.errors import GitHubError, GitHubRefused, GitHubUnavailable
from followthrough.integrations.github.tracker import GitHubTracker, github_label

__all__ = [
    "DEFAULT_URL",
    "GitHubConfig",
    "GitHubError",
    "GitHubRefused",
    "GitHubTracker",
    "GitHubUnavailable",
    "connect",
    "github_label",
]
