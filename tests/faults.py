"""Fault injection shared by the restart and fault tests: a TCP relay that can be cut, and polling.

`Relay` sits between a client and a server on loopback and copies bytes both ways, in a thread of
its own so that sync and async tests can use it alike. Point the client at `relay.address` (or
`relay.port`) instead of the server and:

- `cut()` makes the server unreachable: the relay stops listening, so new connections are refused
  by the kernel, and every open connection is reset (a transaction in progress dies with it);
- `restore()` listens on the same port again;
- `watch`, if given, makes one watcher per connection that sees every byte the client sends
  (tests/test_follow_up_restarts.py reads the workers' sticky queue names that way).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client

from tests.processes import free_port

Watcher = Callable[[bytes], None]


class Relay:
    """A byte-for-byte TCP relay to `target` ("host:port") that a test can cut and restore."""

    def __init__(self, target: str, watch: Callable[[], Watcher] | None = None) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.watch = watch
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.connections = 0  # accepted, over the relay's life
        self.resets = 0  # open connections reset by cut()
        self.cuts: list[float] = []  # how long each cut lasted, in seconds
        self._cut_at: float | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> Relay:
        self._thread.start()
        self._run(self._listen())
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    @property
    def is_cut(self) -> bool:
        return self._cut_at is not None

    def cut(self) -> int:
        """Refuse new connections and reset the open ones; how many were reset."""
        assert not self.is_cut, "already cut"
        reset: int = self._run(self._cut())
        self._cut_at = time.monotonic()
        return reset

    def restore(self) -> float:
        """Listen again on the same port; how long the cut lasted."""
        assert self._cut_at is not None, "not cut"
        self._run(self._listen())
        lasted = time.monotonic() - self._cut_at
        self.cuts.append(lasted)
        self._cut_at = None
        return lasted

    def _run(self, work: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)

    async def _cut(self) -> int:
        if self._server is not None:
            self._server.close()
            self._server = None
        reset = len(self._open)
        for writer in list(self._open):
            writer.transport.abort()  # an RST, as when the server's host goes away
        self.resets += reset
        return reset

    async def _close(self) -> None:
        await self._cut()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_writer}
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, self.watch() if self.watch else None),
                self._pipe(up_reader, writer, None),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            pass  # the relay is closing; asyncio would log a cancelled connection as an error
        finally:
            self._open -= {writer, up_writer}

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, watch: Watcher | None
    ) -> None:
        try:
            while data := await reader.read(65536):
                if watch is not None:
                    watch(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


async def poll(
    check: Callable[[], Any], *, what: str, timeout: float = 120, every: float = 0.1
) -> Any:
    """Until check() (awaited if need be) is truthy; its value. Bounded in wall-clock time."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(every)


async def quiet(client: Client, workflow_ids: list[str]) -> bool:
    """No workflow task and no activity outstanding: the clock can skip."""
    closing = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
    }
    task_done = {
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    }
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        activities: set[int] = set()
        task_open = False
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                activities.add(event.event_id)
            elif event.event_type in closing:
                activities.discard(getattr(event, closing[event.event_type]).scheduled_event_id)
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                task_open = True
            elif event.event_type in task_done:
                task_open = False
        if activities or task_open:
            return False
    return True


async def retried_activities(client: Client, workflow_id: str) -> list[str]:
    """Activities that took more than one attempt, and workflow tasks that failed or timed out."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    names: dict[int, str] = {}
    seen = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            names[event.event_id] = scheduled.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if started.attempt > 1:
                seen.append(f"{names[started.scheduled_event_id]} attempt {started.attempt}")
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            cause = event.workflow_task_failed_event_attributes.cause
            seen.append(f"workflow task failed ({WorkflowTaskFailedCause.Name(cause)})")
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            seen.append("workflow task timed out")
    return seen
