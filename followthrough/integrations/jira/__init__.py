"""Jira, the team's tracker: every action item is a ticket there, kept in sync both ways.

    tracker = JiraTracker(settings.jira_config())       # None config: no Jira, the built-in one
    ref = tracker.ensure_ticket(request)                 # TicketRef(key, url); found again on retry
    tracker.comment(TicketComment(key=..., dedupe_key=..., escalation=...))  # once per key
    tracker.set_due(TicketDue(key=..., due=...))
    done = tracker.done_tickets("-1d")                   # [TicketDone], source="reconciliation"

An edge like followthrough.checks: synchronous `jira` library calls (the activities run them in
threads), each failure either JiraRefused (permanent: credentials, permissions, a project, issue
type, priority or field Jira does not know) or JiraUnavailable (transient: 429, 5xx, timeouts,
refused connections). `connect()` builds the library's client without its surprises (no server
info request, no retries of its own, a timeout); the ticket_resolved check uses it too. The words
people read on a ticket, its description and comments, are in templates/ (wording.py).
"""

from followthrough.integrations.jira.client import connect
from followthrough.integrations.jira.config import DEFAULT_PRIORITIES, Deployment, JiraConfig
from followthrough.integrations.jira.errors import JiraError, JiraRefused, JiraUnavailable
from followthrough.integrations.jira.tracker import JiraTracker

__all__ = [
    "DEFAULT_PRIORITIES",
    "Deployment",
    "JiraConfig",
    "JiraError",
    "JiraRefused",
    "JiraTracker",
    "JiraUnavailable",
    "connect",
]
