"""Notices to Slack as well: each recipient's DM and the team's channel, once each.

The notice activity calls `SlackDelivery.deliver` beside the email, whatever became of the email.
Each (notice, DM or channel) is claimed in `slack_messages` before it is posted and marked with
the message's channel and ts after, so a retried activity posts nothing twice. Slack refusing for
good (an unknown user or channel, a bad token) is logged and recorded as failed; Slack out of
reach, or still limiting us after slack_sdk waited out each Retry-After, asks for a retry.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from followthrough.domain.notice import Notice
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItem, Postmortem
from followthrough.integrations.slack import SlackApi, SlackRefused, SlackUnavailable
from followthrough.logging import get_logger
from followthrough.notices.render import Links
from followthrough.notices.slack_blocks import slack_message
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
    policy: Policy
    links: Links

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

    def _targets(self, notice: Notice, pm: Postmortem, item: ActionItem | None) -> list[Target]:
        targets: list[Target] = []
        for recipient in notice.to:
            user = self.policy.slack_id_of(recipient.name)
            if user is None:
                try:
                    user = self.api.user_by_email(recipient.email)
                except (SlackRefused, SlackUnavailable) as err:
                    log.warning("slack user not looked up", person=recipient.name, error=str(err))
            if user is not None and all(t.address != user for t in targets):
                targets.append(Target(user, recipient.name))
        team_name = item.team if item is not None else pm.team
        team = self.policy.teams.get(team_name) if team_name else None
        if team is not None and team.slack_channel:
            targets.append(Target(team.slack_channel, None))
        return targets

    def _post(
        self, notice: Notice, pm: Postmortem, item: ActionItem | None, target: Target
    ) -> bool:
        claimed = self.store.slack.claim(
            SlackMessage(
                dedupe_key=notice.dedupe_key,
                target=target.address,
                person=target.person,
                kind=notice.kind.value,
                postmortem_id=pm.id,
                action_item_id=item.id if item else None,
                status="pending",
                created_at=notice.at,
            )
        )
        if claimed.status != "pending":
            return False
        bound = log.bind(dedupe_key=notice.dedupe_key, slack_target=target.address)
        message = slack_message(notice, pm, item, self.links, target.person)
        try:
            channel, ts = self.api.post(target.address, text=message.text, blocks=message.blocks)
        except SlackRefused as refused:
            bound.error("slack message refused", error=refused.error)
            self.store.slack.failed(notice.dedupe_key, target.address, refused.error)
            return False
        except SlackUnavailable as err:
            bound.warning("slack unavailable; will retry", error=str(err))
            return True
        self.store.slack.posted(notice.dedupe_key, target.address, channel, ts, _now())
        bound.info("slack message posted", channel=channel, ts=ts)
        return False


def _now() -> datetime:
    return datetime.now(UTC)
