"""The notice activity: render, record once in the outbox, then deliver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import OperationalError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import ESCALATE_ITEM, SEND_COUNCIL_DIGEST, SEND_NOTICE
from activities.records import RecordActivities
from activities.slack import SlackDelivery
from followthrough.domain.access import may_read, readable_of
from followthrough.domain.decisions import as_seen
from followthrough.domain.metrics import Period, ReliabilityMetrics, period_of
from followthrough.domain.notice import (
    EMAIL_ONLY_KINDS,
    NON_URGENT_KINDS,
    Digest,
    DigestRequest,
    Notice,
    NoticeDelivery,
    NoticeKind,
    OutboxMessage,
    OutboxStatus,
)
from followthrough.domain.policy import Policy, PolicySource, current
from followthrough.domain.postmortem import ItemEscalation
from followthrough.logging import get_logger
from followthrough.notices.delivery import Mailer, PermanentDeliveryError
from followthrough.notices.render import (
    RenderedEmail,
    outbox_message,
    render_decision,
    render_digest,
    render_handoff_digest,
    render_monthly_digest,
    render_notice,
)
from followthrough.notices.themes import theme_email
from followthrough.reporting.digest import build_digest
from followthrough.reporting.metrics_view import measure
from followthrough.storage import Store

log = get_logger(__name__)


COUNCIL_DIGEST_ID = "council-digest"
HANDOFF_DIGEST_ID = "handoff-digest"  # the outbox's postmortem column for people's digests


def previous_month(today: date) -> str:
    """The month before today's, as the Metrics page names it: '2026-10' on any day of 2026-11."""
    last_day = today.replace(day=1) - timedelta(days=1)
    return f"{last_day.year:04d}-{last_day.month:02d}"


@asynccontextmanager
async def heartbeating(every: float = 2.0) -> AsyncIterator[None]:
    """Tell Temporal the attempt is alive while it works, so that an attempt whose worker died is
    retried after the heartbeat timeout, not after the whole start-to-close timeout."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


class Unrenderable(Exception):
    """A notice the templates cannot turn into an email: `message` is what the outbox keeps."""

    def __init__(self, message: OutboxMessage, reason: str) -> None:
        super().__init__(reason)
        self.message = message
        self.reason = reason


@contextmanager
def _rendering(notice: Notice, postmortem_id: str) -> Iterator[None]:
    """Rendering reads nothing but its facts, so any error in it is for good: Unrenderable."""
    try:
        yield
    except Exception as err:
        reason = f"the notice cannot be rendered: {type(err).__name__}: {err}"
        raise Unrenderable(
            OutboxMessage(
                dedupe_key=notice.dedupe_key,
                kind=notice.kind,
                postmortem_id=postmortem_id,
                action_item_id=notice.action_item_id,
                recipients=[r.email for r in notice.to],
                subject=f"({notice.kind.value} for {postmortem_id}: not rendered)",
                text="",
                html="",
                status=OutboxStatus.FAILED,
                created_at=notice.at,
                sent_at=None,
                error=reason,
            ),
            reason,
        ) from err


class NoticeActivities:
    def __init__(
        self,
        store: Store,
        mailer: Mailer,
        policy: PolicySource,
        slack: SlackDelivery | None = None,
    ) -> None:
        self.store = store
        self.mailer = mailer
        self.source = policy
        self.slack = slack  # None: Slack is not configured
        self.records = RecordActivities(store)

    @property
    def policy(self) -> Policy:
        """Today's directory: who is on the council now."""
        return current(self.source)

    @activity.defn(name=SEND_NOTICE)
    async def send_notice(self, notice: Notice) -> OutboxStatus:
        """The email, then Slack (when configured) whatever became of the email.

        Slack never fails the email: its own record keeps each message to one post, and only
        Slack out of reach makes the activity retry (the email is then already marked sent).
        """
        readers = await asyncio.to_thread(self._readers_only, notice)
        if readers is None:
            log.info(
                "notice withheld: none of its recipients may read the restricted postmortem",
                dedupe_key=notice.dedupe_key,
            )
            return OutboxStatus.KEPT
        notice = readers
        if self.slack is None or notice.kind in EMAIL_ONLY_KINDS:
            return await self._email(notice)
        try:
            status = await self._email(notice)
        except Exception:
            await self.slack.deliver(notice)
            raise
        if await self.slack.deliver(notice):
            raise ApplicationError("Slack is unavailable; retrying", type="SlackUnavailable")
        return status

    @activity.defn(name=ESCALATE_ITEM)
    async def escalate_item(self, escalation: ItemEscalation) -> OutboxStatus:
        """A ladder step: its record, then its notice, in one activity instead of two, so that
        a burst of due steps does not queue every notice behind every other step's record.

        A retry writes and sends nothing twice (the record is keyed by its seq, the notice by its
        dedupe key). A record the database refuses for good is logged and the notice still goes,
        as it did when they were two activities.
        """
        async with heartbeating():
            with suppress(ApplicationError):  # refused for good, and logged: the notice goes
                await asyncio.to_thread(self.records.record_action_item, escalation.change)
            return await self.send_notice(escalation.notice)

    async def _email(self, notice: Notice) -> OutboxStatus:
        """Idempotent by the notice's dedupe key: a retry or a restarted worker sends nothing twice.

        The message is recorded as pending before it is handed to SMTP and marked sent after, so
        only a crash between the server's OK and our commit (or a database down for longer than
        the attempt can wait) could repeat it, and the repeat then carries the same Message-ID.
        """
        bound = log.bind(dedupe_key=notice.dedupe_key, workflow_id=activity.info().workflow_id)
        try:
            claimed = await asyncio.to_thread(self._claim, notice)
        except Unrenderable as err:  # the same facts fail the same template every time
            bound.error("notice cannot be rendered", error=err.reason)
            await asyncio.to_thread(self.store.outbox.fail, err.message, err.reason)
            raise ApplicationError(
                err.reason, type="NoticeUnrenderable", non_retryable=True
            ) from err
        if claimed.status is not OutboxStatus.PENDING:
            bound.info("notice already handled", status=claimed.status.value)
            return claimed.status
        if notice.kind in NON_URGENT_KINDS:
            claimed = await asyncio.to_thread(self._hold_for_digests, notice, claimed)
            if claimed.status is OutboxStatus.HELD:
                bound.info("notice held for daily digests", to=[r.name for r in notice.to])
                return claimed.status
        return await self._deliver(claimed, notice.at)

    def _hold_for_digests(self, notice: Notice, claimed: OutboxMessage) -> OutboxMessage:
        """Hold the copies of those who take a daily digest; the rest go out now. Held first,
        then marked: a retry holds nothing twice and finds the message held or still to send."""
        chosen = self.store.preferences.deliveries([r.name for r in notice.to])
        daily = {r.name: r.email for r in notice.to if chosen[r.name] is NoticeDelivery.DAILY}
        if not daily:
            return claimed
        self.store.preferences.hold(notice.dedupe_key, daily, notice.at)
        now = [r.email for r in notice.to if r.name not in daily]
        if not now:
            self.store.outbox.mark(notice.dedupe_key, OutboxStatus.HELD, notice.at)
            return claimed.model_copy(update={"status": OutboxStatus.HELD})
        return claimed.model_copy(update={"recipients": now})

    async def _deliver(self, claimed: OutboxMessage, at: datetime) -> OutboxStatus:
        """Hand a recorded message over; a refusal, or the last attempt failing, is kept as failed
        (with the reason) for the operators to see, and the workflow is not held up by it."""
        bound = log.bind(dedupe_key=claimed.dedupe_key, workflow_id=activity.info().workflow_id)
        try:
            status = await self.mailer.deliver(claimed)
        except PermanentDeliveryError as err:
            bound.error("notice refused", error=str(err))
            await asyncio.to_thread(self.store.outbox.fail, claimed, str(err))
            raise ApplicationError(str(err), type="DeliveryRefused", non_retryable=True) from err
        except Exception as err:
            info = activity.info()
            last = info.retry_policy.maximum_attempts if info.retry_policy else 0
            if last and info.attempt >= last:
                reason = f"given up after {info.attempt} attempts: {err}"
                bound.error("notice not delivered", error=reason)
                await asyncio.to_thread(self.store.outbox.fail, claimed, reason)
            raise
        await self._mark_delivered(claimed.dedupe_key, status, at)
        bound.info("notice delivered", status=status.value, to=claimed.recipients)
        return status

    @activity.defn(name=SEND_COUNCIL_DIGEST)
    async def send_council_digest(self, request: DigestRequest) -> OutboxStatus:
        """One weekly digest per ISO week, one monthly per month: a retried or re-triggered run
        sends nothing twice."""
        at = request.at or activity.info().current_attempt_scheduled_time
        if request.period == "day":
            return await self._send_handoff_digests(at)
        if request.period == "month":
            return await self._send_monthly_digest(at)
        digest = await asyncio.to_thread(self._digest, at)
        return await self._send_to_council(
            f"{COUNCIL_DIGEST_ID}/{digest.week}",
            NoticeKind.COUNCIL_DIGEST,
            render_digest(digest),
            at,
            week=digest.week,
            escalated=len(digest.escalated),
            overdue=len(digest.overdue),
        )

    async def _send_handoff_digests(self, at: datetime) -> OutboxStatus:
        """Each person's held notices, in one email each (and one Slack DM, when Slack is
        configured). The digest's key is the person and the run's time, so a retried run sends
        what it gathered before, and nothing twice; what a run left unsent (given up,
        cancelled, stopped partway) goes out in the next run's."""
        status = OutboxStatus.SENT  # nobody waiting: nothing to send is done
        day = self.policy.calendar.local_date(at)

        def key_of(person: str) -> str:
            return f"{HANDOFF_DIGEST_ID}/{person}/{at.isoformat(timespec='minutes')}"

        # Those waiting, and whom a failed attempt of this run gathered for already: their
        # email or Slack DM may still be owed (each is claimed once under the run's key).
        keys = [key_of(person) for person in sorted(self.policy.people)]
        people = set(await asyncio.to_thread(self.store.preferences.waiting, at))
        people |= await asyncio.to_thread(self.store.preferences.taken_by, keys)
        slack_unavailable = False
        for person in sorted(people):
            gathered = await asyncio.to_thread(
                self._claim_handoff_digest, person, key_of(person), day, at
            )
            if gathered is None:
                continue
            claimed, messages = gathered
            if claimed.status is OutboxStatus.PENDING:
                try:
                    status = await self._deliver(claimed, at)
                except ApplicationError as err:  # refused for good: kept as failed; others go
                    log.error("hand-off digest refused", person=person, error=str(err))
            if self.slack is not None:
                slack_unavailable |= await self.slack.deliver_digest(person, claimed, day, messages)
        if slack_unavailable:  # each email and DM sent is recorded: the retry sends the rest
            raise ApplicationError("Slack is unavailable; retrying", type="SlackUnavailable")
        return status

    def _claim_handoff_digest(
        self, person: str, key: str, day: date, at: datetime
    ) -> tuple[OutboxMessage, list[OutboxMessage]] | None:
        """The person's digest email (claimed once under `key`) and the notices it holds."""
        held = self.store.preferences.gather(person, key, at)
        messages = [m for h in held if (m := self.store.outbox.message(h.dedupe_key))]
        if not messages:
            return None
        email = render_handoff_digest(person, day, messages)
        claimed = self.store.outbox.claim(
            OutboxMessage(
                dedupe_key=key,
                kind=NoticeKind.HANDOFF_DIGEST,
                postmortem_id=HANDOFF_DIGEST_ID,
                action_item_id=None,
                recipients=[held[0].address],
                subject=email.subject,
                text=email.text,
                html=email.html,
                status=OutboxStatus.PENDING,
                created_at=at,
                sent_at=None,
            )
        )
        return claimed, messages

    async def _send_monthly_digest(self, at: datetime) -> OutboxStatus:
        """The previous month's headline numbers (the schedule fires on the 1st)."""
        period, metrics = await asyncio.to_thread(self._month, at)
        return await self._send_to_council(
            f"{COUNCIL_DIGEST_ID}/monthly/{period.label}",
            NoticeKind.MONTHLY_DIGEST,
            render_monthly_digest(period, metrics, self.mailer.links),
            at,
            month=period.label,
            incidents=metrics.incidents,
        )

    async def _send_to_council(
        self, dedupe_key: str, kind: NoticeKind, email: RenderedEmail, at: datetime, **facts: Any
    ) -> OutboxStatus:
        """Record the email under its key, then send it, unless the key was sent before."""
        claimed = await asyncio.to_thread(
            self.store.outbox.claim,
            OutboxMessage(
                dedupe_key=dedupe_key,
                kind=kind,
                postmortem_id=COUNCIL_DIGEST_ID,
                action_item_id=None,
                recipients=self.policy.council_emails(),
                subject=email.subject,
                text=email.text,
                html=email.html,
                status=OutboxStatus.PENDING,
                created_at=at,
                sent_at=None,
            ),
        )
        if claimed.status is not OutboxStatus.PENDING:
            return claimed.status
        status = await self._deliver(claimed, at)
        log.info(f"{kind.value.replace('_', ' ')} delivered", status=status.value, **facts)
        return status

    async def _mark_delivered(self, dedupe_key: str, status: OutboxStatus, at: datetime) -> None:
        """Record a message that has left, waiting out a database that is briefly unreachable.

        Failing here would make the retry find the row still pending and send the message again
        (tests/test_faults.py cut the database while SMTP said 250: people got it twice). So keep
        trying while this attempt has time left; only a longer outage, or a crash, repeats it.
        """
        info = activity.info()
        timeout = info.start_to_close_timeout or timedelta(seconds=60)
        deadline = info.started_time + timeout - timedelta(seconds=5)
        pause = 0.25
        while True:
            try:
                await asyncio.to_thread(self.store.outbox.mark, dedupe_key, status, at)
                return
            except OperationalError as err:  # the connection failed, not the data
                if datetime.now(UTC) + timedelta(seconds=pause) >= deadline:
                    raise
                log.warning(
                    "delivered, not yet recorded; retrying",
                    dedupe_key=dedupe_key,
                    error=str(err).splitlines()[0],
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, 4)

    def _month(self, at: datetime) -> tuple[Period, ReliabilityMetrics]:
        calendar = self.policy.calendar
        today = calendar.local_date(at)
        period = period_of(today, calendar, month=previous_month(today))
        return period, measure(self.store, self.policy, period, at)

    def _digest(self, at: datetime) -> Digest:
        # The council's digest names items: those of a restricted postmortem are counted in its
        # figures but not listed (build_digest), whoever is on the council.
        items = self.store.records.action_items()
        postmortems = {pm.id: pm for pm in self.store.records.postmortems()}
        return build_digest(at, items, postmortems, self.policy)

    def _readers_only(self, notice: Notice) -> Notice | None:
        """The notice to those of its recipients who may read its postmortem (all, unless it
        is restricted); None when that leaves nobody. A plain address (an audience's) is no
        person of the policy, so it never hears of a restricted postmortem."""
        if notice.kind is NoticeKind.RECURRING_THEME:
            return notice  # its email lists only the unrestricted (notices/themes.py)
        if notice.kind is NoticeKind.COUNCIL_DECISION:
            return self._decision_readers(notice)
        pm = self.store.records.postmortem(notice.postmortem_id)
        if pm is None or pm.restricted_to is None:
            return notice  # unrestricted (or not yet recorded: _claim retries until it is)
        readable = readable_of(pm, self.store.records.action_items(postmortem_id=pm.id))
        allowed = [r for r in notice.to if may_read(readable, r.name, self.policy)]
        if not allowed:
            return None
        return notice if allowed == notice.to else notice.model_copy(update={"to": allowed})

    def _decision_readers(self, notice: Notice) -> Notice | None:
        """A council decision's notice as domain/decisions.py as_seen shows it: to those who
        may see it, without the restricted postmortems any of them may not read."""
        decision = notice.decision
        if decision is None:
            return notice
        restricted = {}
        for pm_id in decision.opening.postmortem_ids:
            pm = self.store.records.postmortem(pm_id)
            if pm is not None and pm.restricted_to is not None:
                items = self.store.records.action_items(postmortem_id=pm.id)
                restricted[pm.id] = readable_of(pm, items)
        if not restricted:
            return notice
        allowed, hidden = [], set()
        for recipient in notice.to:
            theirs = {
                i for i, r in restricted.items() if not may_read(r, recipient.name, self.policy)
            }
            if as_seen(decision, theirs) is not None:
                allowed.append(recipient)
                hidden |= theirs
        seen = as_seen(decision, hidden)
        if not allowed or seen is None:
            return None
        return notice.model_copy(update={"to": allowed, "decision": seen})

    def _claim(self, notice: Notice) -> OutboxMessage:
        existing = self.store.outbox.message(notice.dedupe_key)
        if existing is not None:
            return existing
        if notice.kind is NoticeKind.COUNCIL_DECISION:  # its facts are all in the notice
            with _rendering(notice, notice.postmortem_id):
                decided = render_decision(notice, self.mailer.links)
            return self._store_claim(notice, notice.postmortem_id, decided)
        pm = self.store.records.postmortem(notice.postmortem_id)
        if pm is None:
            raise RuntimeError(f"{notice.postmortem_id} is not recorded yet")  # retried
        if notice.kind is NoticeKind.RECURRING_THEME:
            return self._store_claim(notice, pm.id, self._theme_email(notice))
        item = (
            self.store.records.action_item(notice.action_item_id) if notice.action_item_id else None
        )
        earlier = [
            m
            for m in self.store.outbox.messages(
                postmortem_id=None if item else pm.id,
                action_item_id=item.id if item else None,
            )
            if m.dedupe_key != notice.dedupe_key
        ]
        earlier.reverse()  # oldest first reads like a story
        with _rendering(notice, pm.id):
            email = render_notice(notice, pm, item, earlier, self.mailer.links)
        return self._store_claim(notice, pm.id, email)

    def _theme_email(self, notice: Notice) -> RenderedEmail:
        with _rendering(notice, notice.postmortem_id):
            return theme_email(self.store.records, self.policy, notice, self.mailer.links)

    def _store_claim(
        self, notice: Notice, postmortem_id: str, email: RenderedEmail
    ) -> OutboxMessage:
        return self.store.outbox.claim(outbox_message(notice, postmortem_id, email))
