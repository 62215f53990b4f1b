"""Stuck work: a workflow whose tasks keep failing, or an activity retried past a sane number of
attempts.

Temporal retries both forever and tells nobody: a follow-up stops moving and looks fine. The
operations sweep finds them from Temporal's own description of each workflow, lists them on the
operations page and tells the operators once per workflow and problem.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict

# Temporal itself flags a workflow after two consecutive workflow task failures (the
# `TemporalReportedProblems` search attribute); one failure can be a worker restarting mid-task.
WORKFLOW_TASK_FAILURES = 2
# Storage, notices and tickets retry with backoff (at most 5-10 minutes apart): ten failed attempts
# is some quarter of an hour of the same failure, long past a blip.
ACTIVITY_ATTEMPTS = 10
# The error as shown and mailed: its first lines say what failed; a traceback does not fit a page.
ERROR_CHARS = 1_000

STUCK_WORK_ID = "operations"  # the outbox's postmortem column for the operators' emails


class StuckWork(BaseModel):
    """One workflow that is not moving, and why, as Temporal describes it."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    workflow_type: str
    problem: str  # "workflow task", or "activity send_notice"
    attempts: int
    error: str
    since: AwareDatetime | None = None  # when it last failed, when Temporal says

    @property
    def dedupe_key(self) -> str:
        """The operators hear of each workflow's problem once, however often the sweep runs."""
        return f"stuck-work/{self.workflow_id}/{self.problem}"


class StuckWorkReport(BaseModel):
    """What one sweep found: the stuck workflows, and how many running ones it looked at."""

    stuck: list[StuckWork]
    described: int  # running workflows whose description was read
    more: bool = False  # more were running than one sweep describes (limits.py)
    unsupported: str | None = None  # this Temporal server cannot list workflows: why


class StuckWorkSweep(BaseModel):
    """The sweep's input: which task queue's workflows to look at."""

    task_queue: str
    at: AwareDatetime | None = None  # None: when the activity runs


def workflow_task_stuck(attempt: int) -> bool:
    """`attempt` is the pending workflow task's: attempt 3 follows two failures."""
    return attempt > WORKFLOW_TASK_FAILURES


def activity_stuck(attempt: int) -> bool:
    return attempt >= ACTIVITY_ATTEMPTS


def short_error(message: str) -> str:
    """One error, bounded, with control characters other than newlines removed."""
    kept = "".join(c for c in message if c == "\n" or c.isprintable()).strip()
    return kept if len(kept) <= ERROR_CHARS else kept[: ERROR_CHARS - 1] + "…"
