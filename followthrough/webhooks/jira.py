"""Jira's webhooks for action-item tickets: a ticket moved to a done status is a done claim.

Admin webhooks with a secret sign the raw body: `X-Hub-Signature: sha256=<hex HMAC-SHA256>`.
`X-Atlassian-Webhook-Identifier` is stable across Jira's retries (we deduplicate on it). Edits,
comments and transitions all arrive as `jira:issue_updated`; only the changelog tells a status
change apart, and only a status in the done category is a claim.
"""

from __future__ import annotations

from collections.abc import Mapping

from followthrough.domain.tickets import TicketDone
from followthrough.webhooks.base import Ignored
from followthrough.webhooks.fields import parse_body
from followthrough.webhooks.signatures import (
    check_hex_signatures,
    hmac_sha256,
    optional_header,
    raw,
    required_header,
)

SIGNATURE = "X-Hub-Signature"
DELIVERY = "X-Atlassian-Webhook-Identifier"


def read_jira_event(headers: Mapping[str, str], body: bytes, secret: str) -> TicketDone | Ignored:
    """Verify, then read: a TicketDone for a move into done, else why it is ignored."""
    check_hex_signatures(
        required_header(headers, SIGNATURE), hmac_sha256(raw(secret), body), SIGNATURE, "sha256="
    )
    delivery = optional_header(headers, DELIVERY)
    payload = parse_body(body)
    event = payload.text("webhookEvent")
    if event != "jira:issue_updated":
        return Ignored(f"jira event {event} is not a ticket update", delivery)
    changelog = payload.maybe_obj("changelog")
    changes = changelog.maybe_objects("items") if changelog is not None else []
    if not any(change.maybe_text("field") == "status" for change in changes):
        return Ignored("jira update without a status change", delivery)
    issue = payload.obj("issue")
    fields = issue.obj("fields")
    status = fields.obj("status")
    if status.obj("statusCategory").text("key") != "done":
        return Ignored(f"{issue.text('key')} moved to {status.text('name')}, not done", delivery)
    resolution = fields.maybe_obj("resolution")
    user = payload.maybe_obj("user")
    return TicketDone(
        key=issue.text("key"),
        status=status.text("name"),
        resolution=resolution.maybe_text("name") if resolution is not None else None,
        by=user.maybe_text("displayName") if user is not None else None,
        at=payload.maybe_epoch("timestamp", 1000),  # Jira sends epoch milliseconds
        source="webhook",
    )


def jira_delivery(headers: Mapping[str, str]) -> str | None:
    return optional_header(headers, DELIVERY)
