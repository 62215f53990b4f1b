"""Recorded histories replay under today's workflow code: the determinism guards.

tests/histories/<workflow type>/*.json were written by real lifecycles (tests/histories/record.py).
A change to a workflow that a running workflow of one of those shapes could not replay fails here,
naming the file; the README's "Changing a running workflow" says what to do about it. The
`before-slo-review-*` histories were recorded with the code of 978dcff, from before the
`slo-review` patch, and show why that patch is there.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, WorkflowReplayResult

import workflows
from activities import OPEN_TICKET, SEND_NOTICE, SLO_EVIDENCE
from followthrough.domain.notice import Notice, NoticeKind
from followthrough.domain.tickets import TicketComment, TicketRequest
from followthrough.integrations.jira.wording import comment_text, ticket_description
from followthrough.notices.render import _environment as render_environment
from workflows.action_item import ActionItemWorkflow
from workflows.council_decision import CouncilDecisionWorkflow
from workflows.council_digest import CouncilDigestWorkflow
from workflows.postmortem import PostmortemWorkflow
from workflows.stuck_work import StuckWorkWorkflow
from workflows.team_slots import TeamSlotsWorkflow
from workflows.ticket_reconciliation import TicketReconciliationWorkflow

HISTORIES = Path(__file__).parent / "histories"
# The worker's workflows (followthrough/temporal/worker.py, build_worker).
WORKFLOWS = [
    PostmortemWorkflow,
    ActionItemWorkflow,
    TeamSlotsWorkflow,
    CouncilDigestWorkflow,
    TicketReconciliationWorkflow,
    StuckWorkWorkflow,
    CouncilDecisionWorkflow,
]
RECORDED = sorted(HISTORIES.glob("*/*.json"))
T = TypeVar("T")
BEFORE_SLO_REVIEW = sorted(HISTORIES.glob("PostmortemWorkflow/before-slo-review-*.json"))


def load(path: Path) -> WorkflowHistory:
    document = json.loads(path.read_text())
    return WorkflowHistory.from_json(document["workflowId"], document)


def workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def type_name(cls: type) -> str:
    """The workflow type a class registers (its @workflow.defn name)."""
    name = workflow._Definition.must_from_class(cls).name
    assert name is not None, f"{cls.__name__} is a dynamic workflow"
    return name


async def replay(history: WorkflowHistory) -> WorkflowReplayResult:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    return await replayer.replay_workflow(history, raise_on_replay_failure=False)


@pytest.mark.parametrize("path", RECORDED, ids=lambda path: f"{path.parent.name}/{path.name}")
async def test_recorded_history_replays(path: Path) -> None:
    history = load(path)
    assert workflow_type(history) == path.parent.name, f"{path}: filed under the wrong type"
    result = await replay(history)
    assert result.replay_failure is None, f"{path.relative_to(HISTORIES)}: {result.replay_failure}"


def test_every_workflow_type_has_a_recorded_history() -> None:
    """Every workflow in workflows/ is replayed here, from at least one history: a new workflow
    type comes with its histories."""
    defined = {type_name(cls) for cls in workflows_defined()}
    assert defined == set(map(type_name, WORKFLOWS)), "WORKFLOWS must list every workflow"
    missing = [name for name in sorted(defined) if not list(HISTORIES.glob(f"{name}/*.json"))]
    assert not missing, f"no recorded history for {missing}: see python -m tests.histories.record"


def workflows_defined() -> Iterator[type]:
    """The @workflow.defn classes of the workflows package."""
    for module_info in pkgutil.iter_modules(workflows.__path__):
        module = importlib.import_module(f"workflows.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and workflow._Definition.from_class(cls):
                yield cls


# --- the slo-review patch, proved on histories the code before it wrote -------------------------


def patches(history: WorkflowHistory) -> list[str]:
    """The ids of the workflow.patched() markers in a history, in order."""
    found = []
    for event in history.events:
        marker = event.marker_recorded_event_attributes
        if marker.marker_name == "core_patch":
            [payload] = marker.details["patch-data"].payloads
            found.append(json.loads(payload.data)["id"])
    return found


def activities(history: WorkflowHistory) -> list[str]:
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]


def updates(history: WorkflowHistory) -> list[str]:
    return [
        event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for event in history.events
        if event.HasField("workflow_execution_update_accepted_event_attributes")
    ]


def test_the_old_histories_were_written_before_the_slo_review() -> None:
    """They hold submitted drafts that ran no SLO review: what the patch must keep replaying."""
    assert BEFORE_SLO_REVIEW, "no before-slo-review histories"
    for path in BEFORE_SLO_REVIEW:
        old = load(path)
        assert "submit_draft" in updates(old), path.name
        assert SLO_EVIDENCE not in activities(old), path.name
        assert "slo-review" not in patches(old), path.name
    today = load(HISTORIES / "PostmortemWorkflow/changes-requested-then-closed.json")
    assert SLO_EVIDENCE in activities(today) and "slo-review" in patches(today)


def guard_removed() -> bool:
    """`if not workflow.patched("slo-review")` deleted: the SLO review always runs."""
    return True


def guard_deprecated() -> bool:
    """The patch's next step: `workflow.deprecate_patch("slo-review")`, the old path deleted."""
    workflow.deprecate_patch("slo-review")
    return True


@pytest.fixture
def slo_review_guard(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], bool]], None]:
    """Replace `workflow.patched("slo-review")` in PostmortemWorkflow, for this test only."""

    def replace(guard: Callable[[], bool]) -> None:
        real = workflow.patched

        def patched(patch_id: str) -> bool:
            return guard() if patch_id == "slo-review" else real(patch_id)

        monkeypatch.setattr(workflow, "patched", patched)

    return replace


@pytest.mark.parametrize("path", BEFORE_SLO_REVIEW, ids=lambda path: path.name)
async def test_without_the_patch_the_old_histories_do_not_replay(
    path: Path, slo_review_guard: Callable[[Callable[[], bool]], None]
) -> None:
    old = load(path)
    assert (await replay(old)).replay_failure is None  # with the patch, as today's code is

    slo_review_guard(guard_removed)
    failure = (await replay(old)).replay_failure
    # Where the old run went on to record the draft (upserting the new state first), the code
    # without the guard schedules the slo_evidence activity instead.
    assert isinstance(failure, workflow.NondeterminismError), failure
    assert "[TMPRL1100] Nondeterminism error" in str(failure), failure


async def test_once_deprecated_only_the_histories_from_after_the_patch_replay(
    slo_review_guard: Callable[[Callable[[], bool]], None],
) -> None:
    """So the before-slo-review histories are deleted with the old path, and not before."""
    slo_review_guard(guard_deprecated)
    for path in sorted(HISTORIES.glob("PostmortemWorkflow/*.json")):
        failure = (await replay(load(path))).replay_failure
        if path in BEFORE_SLO_REVIEW:
            assert isinstance(failure, workflow.NondeterminismError), (path.name, failure)
        else:
            assert failure is None, (path.name, failure)


# --- the stage-notices-in-background patch ------------------------------------------------------

BEFORE_STAGE_NOTICES = sorted(HISTORIES.glob("PostmortemWorkflow/before-stage-notices-*.json"))


async def test_stage_notices_once_awaited_inline_replay_only_with_their_patch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An overdue draft's notice used to hold up its stage; histories from then replay as they ran
    (`workflow.patched("stage-notices-in-background")` in PostmortemWorkflow._escalate_stage)."""
    assert BEFORE_STAGE_NOTICES, "no before-stage-notices histories"
    [old] = [load(path) for path in BEFORE_STAGE_NOTICES]
    assert "stage-notices-in-background" not in patches(old)
    assert (await replay(old)).replay_failure is None

    real = workflow.patched
    monkeypatch.setattr(
        workflow,
        "patched",
        lambda patch_id: True if patch_id == "stage-notices-in-background" else real(patch_id),
    )
    failure = (await replay(old)).replay_failure
    assert isinstance(failure, workflow.NondeterminismError), failure


# --- the opt-in patch ---------------------------------------------------------------------------


async def test_an_opt_in_replays_and_only_with_its_patch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opting in by the `opt_in` update (not by submitting a draft) is recorded, behind its patch
    (`workflow.patched("opt-in")` in PostmortemWorkflow.opt_in)."""
    opted = [
        path
        for path in sorted(HISTORIES.glob("PostmortemWorkflow/*.json"))
        if "opt_in" in updates(load(path))
    ]
    assert opted, "no history takes the opt_in update: python -m tests.histories.record opt-in"
    for path in opted:
        history = load(path)
        assert "opt-in" in patches(history), path.name
        assert (await replay(history)).replay_failure is None, path.name

    real = workflow.patched
    monkeypatch.setattr(
        workflow, "patched", lambda patch_id: False if patch_id == "opt-in" else real(patch_id)
    )
    for path in opted:
        failure = (await replay(load(path))).replay_failure
        assert isinstance(failure, workflow.NondeterminismError), (path.name, failure)


# --- the inputs histories hold still read, with their words -------------------------------------


def scheduled_inputs(activity: str, model: type[T]) -> Iterator[T]:
    """Every input of `activity` the recorded histories hold, read as today's model."""
    converter = pydantic_data_converter.payload_converter
    for path in RECORDED:
        for event in load(path).events:
            scheduled = event.activity_task_scheduled_event_attributes
            if event.HasField("activity_task_scheduled_event_attributes") and (
                scheduled.activity_type.name == activity
            ):
                [value] = converter.from_payloads(list(scheduled.input.payloads), [model])
                yield value


def test_notices_and_tickets_recorded_with_their_words_still_send_them() -> None:
    """Before workflows passed facts, a notice's words travelled in `note`, a ticket's in
    `description` and a comment's in `text`: an activity still pending when the new code
    deploys, or retried after, sends those very words (and no second text from the facts)."""
    item_event: Any = render_environment.get_template("_item_event.txt.j2").module  # its macros
    notes = [n for n in scheduled_inputs(SEND_NOTICE, Notice) if n.note]
    assert {n.kind for n in notes} >= {NoticeKind.EXTENSION_REQUESTED, NoticeKind.REASSIGNED}
    for notice in notes:
        assert notice.facts is None
        if notice.kind is not NoticeKind.POSTMORTEM_OVERDUE:
            assert str(item_event.what_happened(notice, None)).strip() == notice.note

    # Those recorded before facts (histories recorded since, e.g. handoff-*, carry facts).
    requests = [r for r in scheduled_inputs(OPEN_TICKET, TicketRequest) if r.description]
    assert requests and all(not r.accepted_when for r in requests)
    for request in requests:
        words = ticket_description(request, "*the postmortem*", request.owner, None)
        assert words.startswith(request.description.strip() + "\n\n----\n")

    # No history holds a ticket comment; one from then had only its text.
    comment = TicketComment.model_validate({"key": "PM-1", "dedupe_key": "k", "text": "Late."})
    assert comment_text(comment) == "Late."
