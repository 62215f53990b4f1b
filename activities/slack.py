"""Notices to Slack as well: each recipient's DM and the team's channel, once each.

The notice activity calls `SlackDelivery.deliver` beside the email, whatever became of the email.
Each (notice, DM or channel) is claimed in `slack_messages` before it is posted and marked with
the message's channel and ts after, so a retried activity posts nothing twice. Slack refusing for
good (an unknown user or channel, a bad token) is logged and recorded as failed; Slack out of
reach, or still limiting us after slack_sdk waited out each Retry-After, asks for a retry.

The DM honours the person's choice as the email does: a non-urgent notice the email held for
someone's daily digest (held_notices) is not posted to them on its own; the day's digest run
posts them one DM listing what it gathered (`deliver_digest`), once, beside the email digest.
Escalations are never held; a team's channel is no one's choice and hears at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from followthrough.domain.notice import NON_URGENT_KINDS, Notice, NoticeKind, OutboxMessage
from followthrough.domain.policy import Policy, PolicySource, current
from followthrough.domain.postmortem import ActionItem, Postmortem
from followthrough.integrations.slack import SlackApi, SlackRefused, SlackUnavailable
from followthrough.logging import get_logger
from followthrough.notices.render import Links
from followthrough.notices.slack_blocks import SlackPost, digest_message, slack_message
from followthrough.storage import Store
from followthrough.storage.slack import SlackMessage

log = get_logger(__name__)


@dataclass(frozen=True)
class Target:
    address: str  # a user id or a channel, as chat.postMessage takes it
    person: str | None  # None: a team's channel


@dataclass
class SlackDelivery:
    store: Store
    api: SlackApi
    source: PolicySource  # today's directory: whose Slack id, which team's channel
    links: Links

    @property
    def policy(self) -> Policy:
        return current(self.source)

    async def deliver(self, notice: Notice) -> bool:
        """Post the notice to each of its Slack targets not yet posted; True when Slack could
        not be reached for some of them (the caller retries later), never an exception."""
        try:
            return await asyncio.to_thread(self._deliver, notice)
        except Exception as err:  # nothing of Slack's may fail the notice
            log.error("slack delivery failed", dedupe_key=notice.dedupe_key, error=repr(err))
            return True

    def _deliver(self, notice: Notice) -> bool:
        pm = self.store.records.postmortem(notice.postmortem_id)
        if pm is None:
            return True  # not recorded yet: the retry finds it
        item = (
            self.store.records.action_item(notice.action_item_id) if notice.action_item_id else None
        )
        retry = False
        for target in self._targets(notice, pm, item):
            retry |= self._post(notice, pm, item, target)
        return retry

    async def deliver_digest(
        self, person: str, digest: OutboxMessage, day: date, held: list[OutboxMessage]
    ) -> bool:
        """One DM listing the notices the person's email `digest` gathered, posted once under
        its key; True when Slack could not be reached (the caller retries), never an exception."""
        try:
            return await asyncio.to_thread(self._deliver_digest, person, digest, day, held)
        except Exception as err:  # nothing of Slack's may fail the digest
            log.error("slack digest failed", dedupe_key=digest.dedupe_key, error=repr(err))
            return True

    def _deliver_digest(
        self, person: str, digest: OutboxMessage, day: date, held: list[OutboxMessage]
    ) -> bool:
        user = self._user(person, digest.recipients[0]) if digest.recipients else None
        if user is None:
            return False
        record = SlackMessage(
            dedupe_key=digest.dedupe_key,
            target=user,
            person=person,
            kind=NoticeKind.HANDOFF_DIGEST.value,
            postmortem_id=digest.postmortem_id,
            action_item_id=None,
            status="pending",
            created_at=digest.created_at,
        )
        return self._claim_and_post(record, lambda: digest_message(person, day, held, self.links))

    def _user(self, person: str, email: str) -> str | None:
        user = self.policy.slack_id_of(person)
        if user is None:
            try:
                user = self.api.user_by_email(email)
            except (SlackRefused, SlackUnavailable) as err:
                log.warning("slack user not looked up", person=person, error=str(err))
        return user

    def _targets(self, notice: Notice, pm: Postmortem, item: ActionItem | None) -> list[Target]:
        targets: list[Target] = []
        # Held by the email for their daily digest: the digest's DM carries it to them.
        held = (
            self.store.preferences.held_for(notice.dedupe_key)
            if notice.kind in NON_URGENT_KINDS
            else set()
        )
        for recipient in notice.to:
            if recipient.name in held:
                continue
            user = self._user(recipient.name, recipient.email)
            if user is not None and all(t.address != user for t in targets):
                targets.append(Target(user, recipient.name))
        team_name = item.team if item is not None else pm.team
        team = self.policy.teams.get(team_name) if team_name else None
        # A channel's members are not the people who may read a restricted postmortem: it hears
        # nothing of one (its recipients, each allowed to read it, still get their DMs).
        if team is not None and team.slack_channel and pm.restricted_to is None:
            targets.append(Target(team.slack_channel, None))
        return targets

    def _post(
        self, notice: Notice, pm: Postmortem, item: ActionItem | None, target: Target
    ) -> bool:
        record = SlackMessage(
            dedupe_key=notice.dedupe_key,
            target=target.address,
            person=target.person,
            kind=notice.kind.value,
            postmortem_id=pm.id,
            action_item_id=item.id if item else None,
            status="pending",
            created_at=notice.at,
        )
        return self._claim_and_post(
            record, lambda: slack_message(notice, pm, item, self.links, target.person)
        )

    def _claim_and_post(self, record: SlackMessage, message_of: Callable[[], SlackPost]) -> bool:
        """Post unless this (key, target) was posted or refused before; True: retry later."""
        claimed = self.store.slack.claim(record)
        if claimed.status != "pending":
            return False
        key, target = record.dedupe_key, record.target
        bound = log.bind(dedupe_key=key, slack_target=target)
        try:
            message = message_of()
        except Exception as err:  # it would fail the same way on every retry
            bound.error("slack message unrenderable", error=repr(err))
            self.store.slack.failed(key, target, f"unrenderable: {err!r}"[:200])
            return False
        try:
            channel, ts = self.api.post(target, text=message.text, blocks=message.blocks)
        except SlackRefused as refused:
            bound.error("slack message refused", error=refused.error)
            self.store.slack.failed(key, target, refused.error)
            return False
        except SlackUnavailable as err:
            bound.warning("slack unavailable; will retry", error=str(err))
            return True
        self.store.slack.posted(key, target, channel, ts, _now())
        bound.info("slack message posted", channel=channel, ts=ts)
        return False


def _now() -> datetime:
    return datetime.now(UTC)
