"""The administrative audit log: who did what to the deployment, and when.

Apart from each postmortem's own trail (AuditEvent), this log keeps the actions that change who
may do what or what is measured: API tokens made and revoked, SLOs imported, the policy file
changed, and action items closed by hand (their risk accepted). Entries are only ever added; each
carries a key made from what it records, so a retried write adds nothing.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from followthrough.domain.limits import AUDIT_DETAIL_CHARS as DETAIL_CHARS

TARGET_CHARS = 220  # an action item's id is the longest target
KEY_CHARS = 300
AUDIT_PAGE_SIZE = 50
CURSOR_CHARS = 400


class AdminActionKind(StrEnum):
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    SLO_IMPORTED = "slo.imported"
    POLICY_CHANGED = "policy.changed"
    ITEM_RISK_ACCEPTED = "item.risk_accepted"  # the council closed an item without its fix


class AdminAction(BaseModel):
    """One entry of the log. `key` says what it records, so writing it twice keeps one."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(max_length=KEY_CHARS)
    at: AwareDatetime
    actor: str = Field(max_length=128)  # a person, an OS user, or 'system'
    kind: AdminActionKind
    target: str = Field(max_length=TARGET_CHARS)
    detail: str = Field(default="", max_length=DETAIL_CHARS)


def bounded_detail(text: str) -> str:
    """A detail as the log keeps it: one line, control characters dropped, at most DETAIL_CHARS."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line if len(line) <= DETAIL_CHARS else line[: DETAIL_CHARS - 1] + "…"


def token_created(
    token_id: str, person: str, by: str, at: datetime, scope: str, expires: datetime | None
) -> AdminAction:
    until = f"expires {expires:%Y-%m-%d}" if expires else "no expiry"
    return AdminAction(
        key=f"token.created:{token_id}",
        at=at,
        actor=by,
        kind=AdminActionKind.TOKEN_CREATED,
        target=f"token {token_id} of {person}",
        detail=f"scope {scope}, {until}",
    )


def token_revoked(token_id: str, person: str, by: str, at: datetime) -> AdminAction:
    return AdminAction(
        key=f"token.revoked:{token_id}",  # a token is revoked once: the first revocation counts
        at=at,
        actor=by,
        kind=AdminActionKind.TOKEN_REVOKED,
        target=f"token {token_id} of {person}",
    )


def slo_imported(
    source: str, slo_ids: list[str], digest: str, by: str, at: datetime
) -> AdminAction:
    """An import of one file; the same content imported again at the same moment is one entry."""
    return AdminAction(
        key=f"slo.imported:{digest}:{at.isoformat()}",
        at=at,
        actor=by,
        kind=AdminActionKind.SLO_IMPORTED,
        target=bounded_detail(source)[:TARGET_CHARS],
        detail=bounded_detail(f"{len(slo_ids)} SLOs: " + ", ".join(slo_ids)),
    )


def recorded_policy(entry: AdminAction | None) -> str | None:
    """The policy content hash a policy.changed entry recorded (None: none recorded yet)."""
    return entry.key.rpartition("->")[2] if entry is not None else None


def policy_changed(
    previous: AdminAction | None, new: str, source: str, by: str, at: datetime
) -> AdminAction:
    """The policy's content differs from the last recorded. The key names the entry it follows,
    so two processes starting at once on the same change record it once."""
    old = recorded_policy(previous)
    after = previous.at.astimezone(UTC).isoformat() if previous else "first"
    return AdminAction(
        key=f"policy.changed:{after}:{old or 'none'}->{new}",
        at=at,
        actor=by,
        kind=AdminActionKind.POLICY_CHANGED,
        target=bounded_detail(source)[:TARGET_CHARS],
        detail=f"sha256 {old[:12] if old else '(none recorded)'} -> {new[:12]}",
    )


def item_closed(workflow_id: str, seq: int, by: str, at: datetime, reason: str) -> AdminAction:
    """An action item closed without its fix (its risk accepted), once per its own audit event."""
    return AdminAction(
        key=f"item.risk_accepted:{workflow_id}:{seq}",
        at=at,
        actor=by,
        kind=AdminActionKind.ITEM_RISK_ACCEPTED,
        target=workflow_id[:TARGET_CHARS],
        detail=bounded_detail(reason),
    )


# --- keyset paging, newest first -------------------------------------------------------------


class InvalidAuditCursor(ValueError):
    pass


_NOT_OURS = "cursor: not one this log gave; start from the first page"


def audit_cursor(entry: AdminAction) -> str:
    raw = f"{entry.at.astimezone(UTC).isoformat()}|{entry.key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_audit_cursor(cursor: str) -> tuple[datetime, str]:
    """Where the next page starts (strictly after, going back in time)."""
    if len(cursor) > CURSOR_CHARS:
        raise InvalidAuditCursor(f"cursor: longer than {CURSOR_CHARS} characters")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
        at_text, _, key = raw.partition("|")
        at = datetime.fromisoformat(at_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidAuditCursor(_NOT_OURS) from None
    if at.tzinfo is None or not key:
        raise InvalidAuditCursor(_NOT_OURS)
    return at, key
