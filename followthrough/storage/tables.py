"""The schema. Alembic migrations under migrations/ own it; keep the two in step."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which keeps no offset) as well."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every stored time needs an offset")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, date: Date, dict[str, Any]: JSON}


class IncidentRow(Base):
    __tablename__ = "incidents"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    postmortem_id: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(32))
    resolved_at: Mapped[datetime]
    data: Mapped[dict[str, Any]]


# What the reliability figures read (storage/figures.py), in indexes of their own: reading a
# year of them from the rows' pages (each with its snapshot) cost more than the sums themselves.
FIGURE_COLUMNS = {
    "postmortems": (
        "resolved_at",
        "severity",
        "state",
        "started_at",
        "detected_at",
        "acknowledged_at",
        "mitigated_at",
        "communicated_at",
        "id",
    ),
    "action_items": ("postmortem_id", "state", "due", "opened_at", "verified_at"),
}


class PostmortemRow(Base):
    __tablename__ = "postmortems"
    __table_args__ = (Index("ix_postmortems_figures", *FIGURE_COLUMNS["postmortems"]),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(32), index=True)
    team: Mapped[str | None] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(32), index=True)
    opened_at: Mapped[datetime]
    draft_due: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    last_seq: Mapped[int]
    data: Mapped[dict[str, Any]]
    # The incident's facts the dashboard's metrics read, so they need not parse every snapshot.
    incident_id: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime | None]
    detected_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    mitigated_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None] = mapped_column(index=True)
    communicated_at: Mapped[datetime | None]
    services: Mapped[list[str] | None] = mapped_column(JSON)
    slo_burns: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # The draft's caused_by_change (migration 0024), for the change failure rate.
    caused_by_change: Mapped[str | None] = mapped_column(String(200))
    users_affected: Mapped[int | None] = mapped_column(BigInteger)  # the draft's, for the backlog
    # The group it is restricted to (migration 0030; domain/restricted.py), None: everyone's.
    restricted_to: Mapped[str | None] = mapped_column(String(64), index=True)


class ActionItemRow(Base):
    __tablename__ = "action_items"
    __table_args__ = (
        Index("ix_action_items_state_due", "state", "due"),
        Index("ix_action_items_figures", *FIGURE_COLUMNS["action_items"]),
    )

    id: Mapped[str] = mapped_column(String(220), primary_key=True)
    postmortem_id: Mapped[str] = mapped_column(ForeignKey("postmortems.id"), index=True)
    title: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    priority: Mapped[str] = mapped_column(String(8))
    due: Mapped[date]
    state: Mapped[str] = mapped_column(String(32), index=True)
    opened_at: Mapped[datetime]
    verified_at: Mapped[datetime | None]
    ticket: Mapped[str | None] = mapped_column(String(64), index=True)  # e.g. PAY-123
    removes_class: Mapped[str | None] = mapped_column(String(128))  # a policy failure class
    restricted_to: Mapped[str | None] = mapped_column(String(64), index=True)  # its postmortem's
    last_seq: Mapped[int]
    data: Mapped[dict[str, Any]]


class PostmortemReaderRow(Base):
    """The people on a restricted postmortem (domain/access.py, people_on_*), who may read it
    besides its group. Rows are only added: whoever was on it once keeps reading it."""

    __tablename__ = "postmortem_readers"

    postmortem_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    person: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)


class AuditEventRow(Base):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_postmortem_at", "postmortem_id", "at"),
        Index("ix_audit_events_action_at", "action", "at"),
    )

    workflow_id: Mapped[str] = mapped_column(String(220), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    postmortem_id: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)


class OutboxRow(Base):
    """Every message Followthrough sent or would send; the dedupe key makes sending idempotent."""

    __tablename__ = "outbox"

    dedupe_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    postmortem_id: Mapped[str] = mapped_column(String(200), index=True)
    action_item_id: Mapped[str | None] = mapped_column(String(220), index=True)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending, sent, kept (local) or failed
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)  # why a failed message did not go out


class NoticePreferenceRow(Base):
    """How a person takes non-urgent notices; no row: immediately."""

    __tablename__ = "notice_preferences"

    person: Mapped[str] = mapped_column(String(128), primary_key=True)
    delivery: Mapped[str] = mapped_column(String(16))  # immediate or daily
    updated_at: Mapped[datetime]


class HeldNoticeRow(Base):
    """A non-urgent notice held for one person's daily digest; `digest_key` names the digest
    that took it (None: still waiting), so each held copy goes out exactly once. `delivered` is
    set when that digest is recorded sent or kept: the daily "who is waiting" reads only the
    undelivered rows (ix_held_notices_waiting), never the whole history."""

    __tablename__ = "held_notices"
    __table_args__ = (Index("ix_held_notices_waiting", "delivered", "person", "created_at"),)

    dedupe_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    person: Mapped[str] = mapped_column(String(128), primary_key=True)
    address: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    digest_key: Mapped[str | None] = mapped_column(String(300), index=True)
    delivered: Mapped[bool] = mapped_column(default=False, server_default=false())


class ApiTokenRow(Base):
    """A personal API token: only its SHA-256 is kept, so a stolen database yields no token."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # shown in `token list`
    person: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # Tokens from before scopes and expiries (migration 0028) keep acting, with no expiry.
    scope: Mapped[str] = mapped_column(String(8), default="act", server_default="act")
    expires_at: Mapped[datetime | None]


class AdminActionRow(Base):
    """The administrative audit log. Append-only: rows are inserted (ON CONFLICT DO NOTHING on
    their key), never updated or deleted; read newest first by (at, key)."""

    __tablename__ = "admin_actions"
    __table_args__ = (Index("ix_admin_actions_at_key", "at", "key"),)

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(220))
    detail: Mapped[str] = mapped_column(Text)


class DashboardSessionRow(Base):
    """A signed-in browser: only the SHA-256 of its cookie is kept. It ends at sign-out, at
    `expires_at`, or when the API token it was opened with is revoked. One opened through the
    identity provider has no token; its ID token is kept for the provider's logout."""

    __tablename__ = "dashboard_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    person: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    id_token: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # What the next page shows once (the outcome of the last form post): "done" or "error".
    flash_kind: Mapped[str | None] = mapped_column(String(8))
    flash_text: Mapped[str | None] = mapped_column(Text)


class OidcSignInRow(Base):
    """A sign-in under way at the identity provider, keyed by the hash of the browser's cookie:
    the state and nonce it must come back with, and the PKCE verifier; used once (0027)."""

    __tablename__ = "oidc_sign_ins"

    browser_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_path: Mapped[str] = mapped_column(String(2000))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class SignInRoleRow(Base):
    """The roles a person's provider groups granted at their last sign-in (migration 0027)."""

    __tablename__ = "sign_in_roles"

    person: Mapped[str] = mapped_column(String(128), primary_key=True)
    reviewer: Mapped[bool]
    council: Mapped[bool]
    signed_in_at: Mapped[datetime]


class WebhookDeliveryRow(Base):
    """Each webhook delivery seen, keyed by the source's delivery id, and what came of it."""

    __tablename__ = "webhook_deliveries"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(32))
    workflow_id: Mapped[str | None] = mapped_column(String(200))


class UsedLinkRow(Base):
    """One-click links that were used: a link's nonce is claimed once, then refused."""

    __tablename__ = "used_links"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    action: Mapped[str] = mapped_column(String(32))
    action_item_id: Mapped[str] = mapped_column(String(220))
    person: Mapped[str] = mapped_column(String(128))
    used_at: Mapped[datetime]


class FactorTagRow(Base):
    """A contributing-factor tag of an approved postmortem, with its incident's time."""

    __tablename__ = "factor_tags"

    postmortem_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    resolved_at: Mapped[datetime]
    severity: Mapped[str] = mapped_column(String(32))
    team: Mapped[str | None] = mapped_column(String(64))
    services: Mapped[list[str]] = mapped_column(JSON)
    recorded_at: Mapped[datetime]

    __table_args__ = (Index("ix_factor_tags_tag_resolved_at", "tag", "resolved_at"),)


class ThemeRow(Base):
    """A recurring theme: one per tag and window start, however often it is computed."""

    __tablename__ = "themes"

    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    window_end: Mapped[datetime]
    reached_at: Mapped[datetime]
    reached_by: Mapped[str] = mapped_column(String(200))


class SloRow(Base):
    """An SLO imported from a Sloth or OpenSLO file; re-importing replaces it by id."""

    __tablename__ = "slos"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    service: Mapped[str] = mapped_column(String(128), index=True)
    source: Mapped[str] = mapped_column(String(16))
    imported_at: Mapped[datetime]
    data: Mapped[dict[str, Any]]


class SlackMessageRow(Base):
    """A notice posted to Slack: once per (notice, DM or channel); `ts` finds it again when its
    buttons are clicked."""

    __tablename__ = "slack_messages"
    __table_args__ = (Index("ix_slack_messages_channel_ts", "channel", "ts"),)

    dedupe_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    target: Mapped[str] = mapped_column(String(100), primary_key=True)  # a user id or a channel
    person: Mapped[str | None] = mapped_column(String(128))  # None: a team's channel
    kind: Mapped[str] = mapped_column(String(40))
    postmortem_id: Mapped[str] = mapped_column(String(200))
    action_item_id: Mapped[str | None] = mapped_column(String(220))
    status: Mapped[str] = mapped_column(String(16))  # pending, posted or failed
    channel: Mapped[str | None] = mapped_column(String(100))  # where it landed (a DM's D...)
    ts: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    posted_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class ChatMessageRow(Base):
    """One message of the incident channel's transcript, kept with its postmortem once (by ts)."""

    __tablename__ = "chat_messages"

    postmortem_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    ts: Mapped[str] = mapped_column(String(32), primary_key=True)  # Slack's id in the channel
    channel: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime]
    user: Mapped[str | None] = mapped_column(String(100))
    author: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    reactions: Mapped[list[str]] = mapped_column(JSON)
    mark: Mapped[str | None] = mapped_column(String(20))  # decision, status_update, chat_message
    link: Mapped[str | None] = mapped_column(String(2000))
    kept_at: Mapped[datetime]


class TimelineEventRow(Base):
    """An event collected from one of an incident's sources (migration 0015): collecting again
    finds it by (postmortem, source, source id) and updates it; `dropped` is the owner's no."""

    __tablename__ = "timeline_events"

    postmortem_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    author: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(Text)
    collected_at: Mapped[datetime]
    dropped: Mapped[bool] = mapped_column(default=False)


class SourceReportRow(Base):
    """How the latest collection from one source went for one postmortem (migration 0015)."""

    __tablename__ = "source_reports"

    postmortem_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    events: Mapped[int]
    at: Mapped[datetime]


class CouncilNarrativeRow(Base):
    """The council's narrative of a quarter, as last saved (migration 0023); `version` counts
    saves, so a save written against an older one is refused instead of overwriting it."""

    __tablename__ = "council_narratives"

    quarter: Mapped[str] = mapped_column(String(8), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    version: Mapped[int]
    written_by: Mapped[str] = mapped_column(String(128))
    written_at: Mapped[datetime]


class PublicationRow(Base):
    """Where a postmortem is published (migration 0022): its Confluence page, the version we
    last wrote or found, or why publishing was refused."""

    __tablename__ = "publications"

    postmortem_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    space: Mapped[str | None] = mapped_column(String(255))
    page_id: Mapped[str | None] = mapped_column(String(50))
    title: Mapped[str | None] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(String(2000))
    version: Mapped[int | None]
    published_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class DeployRow(Base):
    """A deploy as its source reported it last (migration 0024), keyed by (source, deploy_id);
    `at` is when it took effect (its finish, else its start), which every read filters on."""

    __tablename__ = "deploys"
    __table_args__ = (Index("ix_deploys_service_at", "service", "at"), Index("ix_deploys_at", "at"))

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    deploy_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    service: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(128))
    environment: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    at: Mapped[datetime]
    rollback_of: Mapped[str | None] = mapped_column(String(128))
    by: Mapped[str | None] = mapped_column(String(128))
    link: Mapped[str | None] = mapped_column(String(2000))
    received_at: Mapped[datetime]


class DecisionRow(Base):
    """A council decision as it stands (migration 0021): the snapshot its workflow records."""

    __tablename__ = "council_decisions"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    trigger: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), index=True)
    subject: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class FreezeRow(Base):
    """A service's pause of feature work or release freeze: active from its decision until
    `lifted_at` (migration 0021). One row per decision and service."""

    __tablename__ = "freezes"

    decision_id: Mapped[str] = mapped_column(
        String(200), ForeignKey("council_decisions.id"), primary_key=True
    )
    service: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    decided_by: Mapped[str] = mapped_column(String(128))
    decided_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    lifts_when: Mapped[str] = mapped_column(Text)
    lifted_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_freezes_service_lifted_at", "service", "lifted_at"),)


class AlertEventRow(Base):
    """One alert's firing episode from Alertmanager or Grafana (migration 0025): the same
    source, fingerprint and start is the same episode however often it is delivered."""

    __tablename__ = "alert_events"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(128), primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    service: Mapped[str | None] = mapped_column(String(128))
    severity: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    ends_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    paged: Mapped[bool | None]
    acknowledged: Mapped[bool | None]

    __table_args__ = (
        Index("ix_alert_events_starts_at", "starts_at"),
        Index("ix_alert_events_received_at", "received_at"),
    )
