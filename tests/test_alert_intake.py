"""The API keeps alert events with one write for the deliveries that arrive together (a group
commit): every delivery is answered only once its own events are committed, a failed write
fails every delivery in it (their sources send them again) and none other, and no write takes
more than EVENTS_PER_WRITE events."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

from followthrough.api.alert_intake import EVENTS_PER_WRITE, AlertIntake
from followthrough.domain.alert_quality import AlertEvent
from followthrough.storage import Store

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
    intake: AlertIntake, gated: Gated, deliveries: list[list[AlertEvent]]
) -> list[BaseException | None]:
    """The first delivery's write is held; the others arrive meanwhile; then it is let go."""
    first = asyncio.ensure_future(intake.add(deliveries[0]))
    while intake._writing is None or not intake._writing.locked():
        await asyncio.sleep(0)
    rest = [asyncio.ensure_future(intake.add(d)) for d in deliveries[1:]]
    for _ in range(5):
        await asyncio.sleep(0)  # each queued behind the write under way
    gated.gate.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


async def test_deliveries_arriving_together_are_one_write(sqlite_store: Store) -> None:
    gated = Gated(sqlite_store)
    intake = AlertIntake(gated.keep)
    deliveries = [[_event(f"d{i}-a"), _event(f"d{i}-b")] for i in range(6)]
    answers = await _arrive_while_writing(intake, gated, deliveries)
    assert answers == [None] * 6
    assert gated.writes == [["d0-a", "d0-b"], [f"d{i}-{x}" for i in range(1, 6) for x in "ab"]]
    assert sqlite_store.alerts.count() == 12
    await intake.add([])  # nothing to keep: no write
    assert len(gated.writes) == 2


async def test_a_failed_write_fails_its_deliveries_and_no_other(sqlite_store: Store) -> None:
    gated = Gated(sqlite_store, fail_on="d2")
    intake = AlertIntake(gated.keep)
    deliveries = [[_event(f"d{i}")] for i in range(4)]
    answers = await _arrive_while_writing(intake, gated, deliveries)
    assert answers[0] is None
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
    intake = AlertIntake(gated.keep)
    size = 200  # ALERTS_PER_DELIVERY
    deliveries = [[_event(f"d{i}-{j}") for j in range(size)] for i in range(12)]
    answers = await _arrive_while_writing(intake, gated, deliveries)
    assert answers == [None] * 12
    assert all(len(write) <= EVENTS_PER_WRITE for write in gated.writes)
    assert [len(w) for w in gated.writes] == [200, 1000, 1000, 200]
    assert sqlite_store.alerts.count() == 12 * size
