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
    await _signal_team(request.team, request.cap, "request_slot", request)


@activity.defn(name=RELEASE_SLOT)
async def release_slot(release: SlotRelease) -> None:
    """Idempotent: releasing a slot that is not held changes nothing."""
    await _signal_team(release.team, release.cap, "release_slot", release)


async def _signal_team(
    team: str, cap: int, signal: str, payload: SlotRequest | SlotRelease
) -> None:
    """Signal the team's workflow, starting it first if this is the team's first item."""
    task_queue = activity.info().task_queue
    await activity.client().start_workflow(
        TeamSlotsWorkflow.run,
        TeamSlots(team=team, cap=cap),
        id=team_slots_id(team, task_queue),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal=signal,
        start_signal_args=[payload],
    )
