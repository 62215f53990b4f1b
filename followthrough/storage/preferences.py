"""Notice preferences (immediate or a daily digest, per person) and the notices held for them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, false, select, update
from sqlalchemy.orm import Session

from followthrough.domain.notice import NoticeDelivery, OutboxStatus
from followthrough.storage.database import Database
from followthrough.storage.outbox import DELIVERED
from followthrough.storage.tables import HeldNoticeRow, NoticePreferenceRow, OutboxRow


@dataclass(frozen=True)
class Held:
    """One recipient's copy of a notice, waiting for (or taken by) a digest."""

    dedupe_key: str
    person: str
    address: str


class PreferenceStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine

    def delivery(self, person: str) -> NoticeDelivery:
        with Session(self.engine) as session:
            row = session.get(NoticePreferenceRow, person)
            return NoticeDelivery(row.delivery) if row else NoticeDelivery.IMMEDIATE

    def deliveries(self, people: list[str]) -> dict[str, NoticeDelivery]:
        """Each person's choice (immediate unless they chose otherwise), in one read."""
        query = select(NoticePreferenceRow).where(NoticePreferenceRow.person.in_(people))
        with Session(self.engine) as session:
            chosen = {row.person: NoticeDelivery(row.delivery) for row in session.scalars(query)}
        return {p: chosen.get(p, NoticeDelivery.IMMEDIATE) for p in people}

    def choose(self, person: str, delivery: NoticeDelivery, at: datetime) -> None:
        values = {"person": person, "delivery": delivery.value, "updated_at": at}
        with self.db.transaction() as session:
            session.execute(
                self.db.insert(NoticePreferenceRow)
                .values(**values)
                .on_conflict_do_update(
                    index_elements=["person"],
                    set_={"delivery": delivery.value, "updated_at": at},
                )
            )

    def hold(self, dedupe_key: str, copies: dict[str, str], at: datetime) -> None:
        """Hold a notice for these people's digests ({person: address}); a retry holds nothing
        twice (the key and the person make the row)."""
        with self.db.transaction() as session:
            for person, address in copies.items():
                session.execute(
                    self.db.insert(HeldNoticeRow)
                    .values(dedupe_key=dedupe_key, person=person, address=address, created_at=at)
                    .on_conflict_do_nothing(index_elements=["dedupe_key", "person"])
                )

    def waiting(self, until: datetime) -> list[str]:
        """Who has held notices from before `until` that no digest has sent yet."""
        query = select(HeldNoticeRow.person).where(_unsent(until)).distinct()
        with Session(self.engine) as session:
            return sorted(session.scalars(query))

    def gather(self, person: str, digest_key: str, until: datetime) -> list[Held]:
        """Give the person's unsent notices to this digest and return all it holds.

        One transaction: a notice is in one digest at a time. A retried digest (same key) finds
        the very notices it took before; a digest that never went out (its run given up,
        cancelled or stopped partway) gives them up to the next one, and the outbox says so.
        Digest runs never overlap (a schedule skips a run while the last one runs), so a notice
        is taken from a digest only once that digest has stopped trying.
        """
        mine = (HeldNoticeRow.person == person) & _unsent(until)
        with self.db.transaction() as session:
            abandoned = list(
                session.scalars(
                    select(HeldNoticeRow.digest_key)
                    .where(mine, HeldNoticeRow.digest_key != digest_key)
                    .distinct()
                )
            )
            session.execute(update(HeldNoticeRow).where(mine).values(digest_key=digest_key))
            if abandoned:
                session.execute(
                    update(OutboxRow)
                    .where(
                        OutboxRow.dedupe_key.in_(abandoned),
                        OutboxRow.status == OutboxStatus.PENDING.value,
                    )
                    .values(
                        status=OutboxStatus.FAILED.value,
                        error=f"not sent; its notices went into {digest_key}",
                    )
                )
            rows = session.scalars(
                select(HeldNoticeRow)
                .where(HeldNoticeRow.digest_key == digest_key)
                .order_by(HeldNoticeRow.created_at, HeldNoticeRow.dedupe_key)
            )
            return [Held(r.dedupe_key, r.person, r.address) for r in rows]

    def held_for(self, dedupe_key: str) -> set[str]:
        """Who holds this notice for a digest (whether or not a digest took it yet)."""
        query = select(HeldNoticeRow.person).where(HeldNoticeRow.dedupe_key == dedupe_key)
        with Session(self.engine) as session:
            return set(session.scalars(query))

    def taken_by(self, digest_keys: list[str]) -> set[str]:
        """Whose held notices these digests took (a retried run finds whom it gathered for)."""
        query = (
            select(HeldNoticeRow.person).where(HeldNoticeRow.digest_key.in_(digest_keys)).distinct()
        )
        with Session(self.engine) as session:
            return set(session.scalars(query))


def _unsent(until: datetime) -> ColumnElement[bool]:
    """Held before `until`, and waiting: taken by no digest, or by one that has not gone out.

    Only undelivered rows are read (ix_held_notices_waiting), each checked against its own
    digest's outbox row, so the cost is what waits, not every notice ever held. A digest's rows
    are marked delivered as it is recorded sent (OutboxStore.mark); the check against the outbox
    keeps a row that missed it from going out twice."""
    gone_out = select(OutboxRow.dedupe_key).where(
        OutboxRow.dedupe_key == HeldNoticeRow.digest_key, OutboxRow.status.in_(DELIVERED)
    )
    return and_(
        HeldNoticeRow.delivered == false(),
        HeldNoticeRow.created_at <= until,
        ~gone_out.exists(),
    )
