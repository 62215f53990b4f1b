"""TeamSlotsWorkflow: one per team with a WIP cap, handing out its slots for open action items.

Items ask for a slot when they open and give it back when they are resolved; an item beyond the
cap waits, its clock not started, until a slot frees up (highest priority first, then oldest).
It is an entity workflow: it runs as long as the team has items, continuing as new when its
history grows.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from followthrough.domain.postmortem import SlotRelease, SlotRequest, TeamSlots

ADMITTED = "slot_admitted"  # the signal an item gets when it holds a slot
QUEUED = "slot_queued"  # ... and when it waits, with its place in line


@workflow.defn
class TeamSlotsWorkflow:
    @workflow.init
    def __init__(self, slots: TeamSlots) -> None:
        self.slots = slots
        self.lock = asyncio.Lock()  # one request or release at a time: they await signals

    @workflow.run
    async def run(self, slots: TeamSlots) -> None:
        await workflow.wait_condition(
            lambda: (
                workflow.info().is_continue_as_new_suggested() and workflow.all_handlers_finished()
            )
        )
        workflow.continue_as_new(self.slots)

    @workflow.signal
    async def request_slot(self, request: SlotRequest) -> None:
        async with self.lock:
            admitted = self.slots.request(request)
            await self._tell(admitted)
            position = self.slots.position(request.item_id)
            if position is not None:
                await self._signal(request.item_id, QUEUED, position)

    @workflow.signal
    async def release_slot(self, release: SlotRelease) -> None:
        async with self.lock:
            await self._tell(self.slots.release(release.item_id))

    @workflow.query
    def snapshot(self) -> TeamSlots:
        return self.slots

    async def _tell(self, admitted: list[str]) -> None:
        for item_id in admitted:
            await self._signal(item_id, ADMITTED)

    async def _signal(self, item_id: str, name: str, *args: object) -> None:
        try:
            await workflow.get_external_workflow_handle(item_id).signal(name, *args)
        except Exception as err:  # an item that closed meanwhile needs no answer
            workflow.logger.warning("could not signal %s: %s", item_id, err)
