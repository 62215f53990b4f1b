"""GitHub's webhooks for action-item issues: an issue closed as completed is a done claim.

A repository's or organization's webhook with a secret signs the raw body:
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256>` (checked before anything is parsed).
`X-GitHub-Event` names the event (`issues`, `ping`, ...), `X-GitHub-Delivery` is a GUID that
GitHub keeps on a redelivery (we deduplicate on it). An `issues` event with action `closed` and
`issue.state_reason` "completed" (or none, as before GitHub had reasons) is a claim; closed as
"not_planned" or "duplicate" is not: nobody says the work was done. The issue's key is
"{repository.full_name}#{issue.number}", as the tracker names it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from followthrough.domain.tickets import TicketDone
from followthrough.webhooks.base import Ignored
from followthrough.webhooks.errors import Malformed
from followthrough.webhooks.fields import parse_body
from followthrough.webhooks.signatures import (
    check_hex_signatures,
    hmac_sha256,
    optional_header,
    raw,
    required_header,
)

SIGNATURE = "X-Hub-Signature-256"
EVENT = "X-GitHub-Event"
DELIVERY = "X-GitHub-Delivery"
DONE_REASONS = (None, "completed")
# GitHub's owner/name: what a key is built from, so nothing longer reaches a workflow's signal.
REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")
LOGIN_MAX = 100


def read_github_event(headers: Mapping[str, str], body: bytes, secret: str) -> TicketDone | Ignored:
    """Verify, then read: a TicketDone for an issue closed as completed, else why it is
    ignored (a ping included: GitHub's test delivery when a webhook is made)."""
    check_hex_signatures(
        required_header(headers, SIGNATURE), hmac_sha256(raw(secret), body), SIGNATURE, "sha256="
    )
    delivery = optional_header(headers, DELIVERY)
    event = optional_header(headers, EVENT)
    payload = parse_body(body)
    if event == "ping":
        return Ignored("ping: the webhook reaches Followthrough", delivery)
    if event != "issues":
        return Ignored(f"github event {str(event)[:40]} is not about issues", delivery)
    action = payload.text("action")
    if action != "closed":
        return Ignored(f"issue {action[:40]}, not closed", delivery)
    issue = payload.obj("issue")
    number = issue.data.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 10**10:
        raise Malformed("issue.number: must be a positive whole number")
    repository = payload.obj("repository").text("full_name")
    if not REPOSITORY.fullmatch(repository):
        raise Malformed("repository.full_name: must be a GitHub repository, owner/name")
    key = f"{repository}#{number}"
    reason = issue.maybe_text("state_reason")
    if reason not in DONE_REASONS:
        return Ignored(f"{key[:200]} was closed as {reason[:40]}, not completed", delivery)
    sender = payload.maybe_obj("sender")
    login = sender.maybe_text("login") if sender is not None else None
    return TicketDone(
        key=key,
        status="closed",
        resolution=reason or "completed",
        by=login[:LOGIN_MAX] if login else None,
        at=issue.maybe_time("closed_at"),
        source="webhook",
    )


def github_delivery(headers: Mapping[str, str]) -> str | None:
    return optional_header(headers, DELIVERY)
