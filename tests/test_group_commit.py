"""The API keeps alert events, and remembers incident webhook deliveries, with one write for the
deliveries that arrive together (a group commit): every delivery is answered only once its own
items are committed, a failed write fails every delivery in it (their sources send them again)
and none other, no write takes more than its bound, and of two deliveries of one id written
together only the first is new."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

from followthrough.api.group_commit import EVENTS_PER_WRITE, GroupCommit
from followthrough.domain.alert_quality import AlertEvent
from followthrough.storage import Store
from followthrough.storage.deliveries import Delivery

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
EVERYTHING = (NOW - timedelta(days=1), NOW + timedelta(days=1), 10_000)


def _event(fingerprint: str) -> AlertEvent:
    return AlertEvent(
        source="alertmanager",
        fingerprint=fingerprint,
        name="HighLatency",
        service="checkout",
        status="firing",
        starts_at=NOW - timedelta(minutes=5),
        received_at=NOW,
    )


class Gated:
    """The store's keep, holding its first write until the test opens the gate (so the next
    deliveries arrive while a write is under way, as they do under load), recording each write."""

    def __init__(self, store: Store, fail_on: str | None = None) -> None:
        self.store = store
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.writes: list[list[str]] = []

    def keep(self, events: list[AlertEvent]) -> int:
        if not self.writes:
            self.gate.wait(timeout=30)
        self.writes.append([e.fingerprint for e in events])
        if self.fail_on in self.writes[-1]:
            raise RuntimeError("the database went away")
        return self.store.alerts.keep(events)


async def _arrive_while_writing(
    intake: GroupCommit[AlertEvent, int], gated: Gated, deliveries: list[list[AlertEvent]]
) -> list[int | BaseException | None]:
    """The first delivery's write is held; the others arrive meanwhile; then it is let go."""
    first = asyncio.ensure_future(intake.add(deliveries[0]))
    while intake._writing is None or not intake._writing.locked():
        await asyncio.sleep(0)
    rest = [asyncio.ensure_future(intake.add(d)) for d in deliveries[1:]]
    for _ in range(5):
        await asyncio.sleep(0)  # each queued behind the write under way
    gated.gate.set()
    return list(await asyncio.gather(first, *rest, return_exceptions=True))


async def test_deliveries_arriving_together_are_one_write(sqlite_store: Store) -> None:
    gated = Gated(sqlite_store)
    intake = GroupCommit(gated.keep)
    deliveries = [[_event(f"d{i}-a"), _event(f"d{i}-b")] for i in range(6)]
    answers = await _arrive_while_writing(intake, gated, deliveries)
    assert answers == [2] + [10] * 5  # each delivery gets its write's answer (episodes kept)
    assert gated.writes == [["d0-a", "d0-b"], [f"d{i}-{x}" for i in range(1, 6) for x in "ab"]]
    assert sqlite_store.alerts.count() == 12
    await intake.add([])  # nothing to keep: no write
    assert len(gated.writes) == 2


async def test_a_failed_write_fails_its_deliveries_and_no_other(sqlite_store: Store) -> None:
    gated = Gated(sqlite_store, fail_on="d2")
    intake = GroupCommit(gated.keep)
    deliveries = [[_event(f"d{i}")] for i in range(4)]
    answers = await _arrive_while_writing(intake, gated, deliveries)
    assert answers[0] == 1
    assert all(isinstance(a, RuntimeError) for a in answers[1:]), answers
    kept = [e.fingerprint for e in sqlite_store.alerts.started_between(*EVERYTHING)]
    assert kept == ["d0"]
    gated.fail_on = None
    for delivery in deliveries[1:]:  # each source sends its delivery again: kept this time
        await intake.add(delivery)
    kept = [e.fingerprint for e in sqlite_store.alerts.started_between(*EVERYTHING)]
    assert sorted(kept) == ["d0", "d1", "d2", "d3"]


async def test_no_write_takes_more_than_its_bound(sqlite_store: Store) -> None:
    gated = Gated(sqlite_store)
    intake = GroupCommit(gated.keep)
    size = 200  # ALERTS_PER_DELIVERY
    deliveries = [[_event(f"d{i}-{j}") for j in range(size)] for i in range(12)]
    answers = await _arrive_while_writing(intake, gated, deliveries)
    assert not any(isinstance(a, BaseException) for a in answers), answers
    assert all(len(write) <= EVENTS_PER_WRITE for write in gated.writes)
    assert [len(w) for w in gated.writes] == [200, 1000, 1000, 200]
    assert sqlite_store.alerts.count() == 12 * size


def _delivery(delivery_id: str, outcome: str = "started") -> Delivery:
    return Delivery("generic", delivery_id, NOW, outcome, f"postmortem-{delivery_id}")


def test_deliveries_written_together_are_new_once(store: Store) -> None:
    """Of two deliveries of one id in one write only the first is new, and one seen before is
    not new again (SQLite and PostgreSQL)."""
    assert store.deliveries.record("generic", "seen", NOW, "started", "postmortem-seen")
    first, again, seen, other = (
        _delivery("a"),
        _delivery("a", "already open"),
        _delivery("seen"),
        _delivery("b"),
    )
    new = store.deliveries.record_all([first, again, seen, other])
    assert new == [first, other]  # by identity: `again` equals `first` in every field but one
    assert store.deliveries.record_all([]) == []
    assert not store.deliveries.record("generic", "b", NOW, "started", None)


async def test_deliveries_arriving_together_are_one_write_each_told_if_new(
    sqlite_store: Store,
) -> None:
    writes: list[list[str]] = []
    gate = threading.Event()

    def record_all(deliveries: list[Delivery]) -> list[Delivery]:
        if not writes:
            gate.wait(timeout=30)
        writes.append([d.delivery_id for d in deliveries])
        return sqlite_store.deliveries.record_all(deliveries)

    intake = GroupCommit(record_all, per_write=3)
    deliveries = [_delivery(i) for i in ["a", "b", "a", "c", "d", "b"]]
    first = asyncio.ensure_future(intake.add([deliveries[0]]))
    while intake._writing is None or not intake._writing.locked():
        await asyncio.sleep(0)
    rest = [asyncio.ensure_future(intake.add([d])) for d in deliveries[1:]]
    for _ in range(5):
        await asyncio.sleep(0)
    gate.set()
    answers = await asyncio.gather(first, *rest)
    assert writes == [["a"], ["b", "a", "c"], ["d", "b"]]
    told_new = [d in (answer or []) for d, answer in zip(deliveries, answers, strict=True)]
    assert told_new == [True, True, False, True, True, False]
