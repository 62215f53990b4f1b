"""One write for the deliveries that arrive together (a group commit): alert events, and the
webhook deliveries that started postmortems.

Alerts come many times as often as incidents, often several at once, and incident webhooks come
in floods. Each delivery writing its own transaction makes them queue on the database's write
lock (SQLite's busy handler sleeps, PostgreSQL's row locks wait) and every one of them pays a
commit. Here the first delivery to find no write under way writes everything waiting, its own
items and those that arrived while the previous write ran, in one call and one transaction
(`AlertStore.keep`, `DeliveryStore.record_all`); the others wait for the write that took theirs.
Every delivery is answered only once its items are committed, and if that write fails every
delivery in it gets the error (a 500: its source sends it again, and writing is idempotent), so
nothing is lost or acknowledged unwritten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")

# The most alert events one write takes (11 columns each: far below SQLite's 32,766 and
# PostgreSQL's 65,535 bound parameters); a delivery holds at most ALERTS_PER_DELIVERY (200).
EVENTS_PER_WRITE = 1000


@dataclass
class _Waiting(Generic[Item, Answer]):
    items: list[Item]
    written: asyncio.Future[Answer]


@dataclass
class GroupCommit(Generic[Item, Answer]):
    """Hands deliveries' items to `write` (a blocking store call, run in a thread), many
    deliveries to a call when they arrive together, at most `per_write` items a call. Each
    delivery gets the answer of the write that took its items."""

    write: Callable[[list[Item]], Answer]
    per_write: int = EVENTS_PER_WRITE
    _waiting: list[_Waiting[Item, Answer]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _writing: asyncio.Lock | None = None

    async def add(self, items: list[Item]) -> Answer | None:
        """Return once `items` are committed, with the write's answer (None for no items);
        raise what the write that took them raised."""
        if not items:
            return None
        lock = self._lock()
        mine: _Waiting[Item, Answer] = _Waiting(
            list(items), asyncio.get_running_loop().create_future()
        )
        self._waiting.append(mine)
        while not mine.written.done():
            async with lock:
                if mine.written.done():  # the write before ours took them
                    break
                batch = self._take()
                # Shielded: a delivery whose client went away must not leave the others of its
                # batch unanswered; the write finishes and settles them all.
                await asyncio.shield(self._write(batch))
        return mine.written.result()

    def _take(self) -> list[_Waiting[Item, Answer]]:
        """The deliveries waiting, oldest first, up to `per_write` items (at least one)."""
        taken: list[_Waiting[Item, Answer]] = []
        count = 0
        while self._waiting:
            size = len(self._waiting[0].items)
            if taken and count + size > self.per_write:
                break
            taken.append(self._waiting.pop(0))
            count += size
        return taken

    async def _write(self, batch: list[_Waiting[Item, Answer]]) -> None:
        items = [item for waiting in batch for item in waiting.items]
        try:
            answer = await asyncio.to_thread(self.write, items)
        except Exception as err:  # each delivery of the batch answers with it
            for waiting in batch:
                waiting.written.set_exception(err)
        else:
            for waiting in batch:
                waiting.written.set_result(answer)

    def _lock(self) -> asyncio.Lock:
        """One lock per event loop (tests run apps on several loops, one after another)."""
        loop = asyncio.get_running_loop()
        if self._writing is None or self._loop is not loop:
            self._loop, self._writing, self._waiting = loop, asyncio.Lock(), []
        return self._writing
