"""WIP slots: ask the team's TeamSlotsWorkflow for one, or give it back (signal-with-start)."""

from __future__ import annotations

from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy

from activities import RELEASE_SLOT, REQUEST_SLOT
from followthrough.domain.postmortem import SlotRelease, SlotRequest, TeamSlots
from workflows.team_slots import TeamSlotsWorkflow


def team_slots_id(team: str, task_queue: str) -> str:
    """One per team and environment (environments sharing a namespace differ by task queue)."""
    return f"team-slots-{task_queue}-{team}"


@activity.defn(name=REQUEST_SLOT)
async def request_slot(request: SlotRequest) -> None:
    """Idempotent: the team's workflow answers a repeated request with the same answer."""
    await activity.client().start_workflow(
        TeamSlotsWorkflow.run,
        TeamSlots(team=request.team, cap=request.cap),
        id=team_slots_id(request.team, activity.info().task_queue),
        task_queue=activity.info().task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="request_slot",
        start_signal_args=[request],
    )


@activity.defn(name=RELEASE_SLOT)
async def release_slot(release: SlotRelease) -> None:
    """Idempotent: releasing a slot that is not held changes nothing."""
    await activity.client().start_workflow(
        TeamSlotsWorkflow.run,
        TeamSlots(team=release.team, cap=release.cap),
        id=team_slots_id(release.team, activity.info().task_queue),
        task_queue=activity.info().task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="release_slot",
        start_signal_args=[release],
    )
