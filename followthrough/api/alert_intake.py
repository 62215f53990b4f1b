"""Keeping alert events with one write for many deliveries (a group commit).

Alerts come many times as often as incidents, often several at once. Each delivery writing its
own transaction makes them queue on the database's write lock (SQLite's busy handler sleeps,
PostgreSQL's row locks wait) and every one of them pays a commit. Here the first delivery to
find no write under way writes everything waiting, its own events and those that arrived while
the previous write ran, in one statement and one transaction (`AlertStore.keep`); the others
wait for the write that took theirs. Every delivery is answered only once its events are
committed, and if that write fails every delivery in it gets the error (a 500: its source sends
it again, and keeping is idempotent), so nothing is lost or acknowledged unkept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from followthrough.domain.alert_quality import AlertEvent

# The most events one write takes (11 columns each: far below SQLite's 32,766 and PostgreSQL's
# 65,535 bound parameters); a delivery holds at most ALERTS_PER_DELIVERY (200).
EVENTS_PER_WRITE = 1000


@dataclass
class _Waiting:
    events: list[AlertEvent]
    kept: asyncio.Future[None]


@dataclass
class AlertIntake:
    """Hands deliveries' alert events to `keep` (a blocking store call, run in a thread), many
    deliveries to a call when they arrive together."""

    keep: Callable[[list[AlertEvent]], object]
    _waiting: list[_Waiting] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _writing: asyncio.Lock | None = None

    async def add(self, events: list[AlertEvent]) -> None:
        """Return once `events` are committed; raise what the write that took them raised."""
        if not events:
            return
        lock = self._lock()
        mine = _Waiting(list(events), asyncio.get_running_loop().create_future())
        self._waiting.append(mine)
        while not mine.kept.done():
            async with lock:
                if mine.kept.done():  # the write before ours took them
                    break
                batch = self._take()
                # Shielded: a delivery whose client went away must not leave the others of its
                # batch unanswered; the write finishes and settles them all.
                await asyncio.shield(self._write(batch))
        mine.kept.result()

    def _take(self) -> list[_Waiting]:
        """The deliveries waiting, oldest first, up to EVENTS_PER_WRITE events (at least one)."""
        taken: list[_Waiting] = []
        count = 0
        while self._waiting:
            size = len(self._waiting[0].events)
            if taken and count + size > EVENTS_PER_WRITE:
                break
            taken.append(self._waiting.pop(0))
            count += size
        return taken

    async def _write(self, batch: list[_Waiting]) -> None:
        events = [event for waiting in batch for event in waiting.events]
        try:
            await asyncio.to_thread(self.keep, events)
        except Exception as err:  # each delivery of the batch answers with it
            for waiting in batch:
                waiting.kept.set_exception(err)
        else:
            for waiting in batch:
                waiting.kept.set_result(None)

    def _lock(self) -> asyncio.Lock:
        """One lock per event loop (tests run apps on several loops, one after another)."""
        loop = asyncio.get_running_loop()
        if self._writing is None or self._loop is not loop:
            self._loop, self._writing, self._waiting = loop, asyncio.Lock(), []
        return self._writing
