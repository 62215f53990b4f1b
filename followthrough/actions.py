"""People's actions, one function each, for every front door: the HTTP API, the dashboard,
one-click links and the CLI.

    actions = Actions(temporal=client, store=store, settings=settings)
    pm = await actions.submit_draft(pm_id, DraftSubmission(by="alice", draft=draft))
    item = await actions.claim_done(item_id, DoneClaim(by="bob", evidence="PR #812"))

Each action is decided here before anything leaves the process: the limits of what was sent
(domain/bounds.py), and for a draft, who may submit it, then whether each criterion could ever be
checked, then what only the real world shows (Prometheus, URLs), so nobody else's draft makes us
call out. Then it is the workflow's update, called through its handler so mypy checks the
argument and the result against it; the update's validator has the final say. A refusal is
ActionRefused, whose message people read and whose kind the API answers as 403, 409 or 422.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from followthrough.checks import submission_refusal
from followthrough.checks.configured import uncheckable_criteria
from followthrough.domain.bounds import update_problems
from followthrough.domain.decisions import Decision, DecisionRequest, LiftRequest
from followthrough.domain.draft import draft_bounds
from followthrough.domain.incident import is_demo_record
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    Acknowledgement,
    ActionItem,
    Approval,
    ChangeRequest,
    CollectAgain,
    DoneClaim,
    DraftSubmission,
    ExtensionDecision,
    ExtensionRequest,
    OptIn,
    Postmortem,
    Reassignment,
    Rejection,
    RiskAcceptanceRequest,
    Verification,
    submitter_refusal,
)
from followthrough.domain.problems import Problems, RefusalKind
from followthrough.settings import Settings
from followthrough.storage import Store
from workflows.action_item import ActionItemWorkflow
from workflows.council_decision import CouncilDecisionWorkflow
from workflows.postmortem import PostmortemWorkflow

Argument = TypeVar("Argument", bound=BaseModel)
Result = TypeVar("Result", bound=BaseModel)

_KINDS = {kind.value for kind in RefusalKind}


class ActionRefused(Exception):
    """A person's action was refused; the message says why, and nothing changed."""

    def __init__(self, message: str, kind: RefusalKind = RefusalKind.CONFLICT) -> None:
        super().__init__(message)
        self.kind = kind


class WorkflowNotRunning(ActionRefused):
    """Temporal has no running workflow of that id: none was started, or it has finished."""


async def act(
    client: Client,
    workflow_id: str,
    update: UpdateMethodMultiParam[[Any, Argument], Result],
    argument: Argument,
) -> Result:
    """Send a person's action to a workflow as its update and return the new state.

    Refused (INVALID) before anything is sent when it is past the limits (domain/limits.py).
    """
    if problems := update_problems(argument):
        name = getattr(update, "__name__", "update")  # the handler's name is the update's
        raise ActionRefused(Problems(name, problems).message, RefusalKind.INVALID)
    handle = client.get_workflow_handle(workflow_id)
    try:
        return await handle.execute_update(update, argument)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type in _KINDS:
            raise ActionRefused(cause.message, RefusalKind(cause.type)) from None
        raise ActionRefused(str(cause)) from None
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND and is_demo_record(workflow_id):
            raise ActionRefused(
                f"{workflow_id} is a demo record (made by `followthrough seed`); it has no "
                "workflow to act on"
            ) from None
        if err.status is RPCStatusCode.NOT_FOUND:
            gone = f"{workflow_id} does not exist or has already closed"
            raise WorkflowNotRunning(gone) from None
        raise


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Actions:
    """Every action a person takes on a postmortem or an action item.

    `temporal` is a client, or how to connect to Temporal: the CLI connects only once an action
    has passed its preflight, so a refused one never needs a server.
    """

    temporal: Client | Callable[[], Awaitable[Client]]
    store: Store  # whose postmortem it is: read from the record
    settings: Settings  # the policy, and where checks find Prometheus and Jira
    clock: Callable[[], datetime] = field(default=_utc_now)  # the API's tests pass the server's
    # The policy to authorize by: the API's, with the roles people's provider groups granted
    # (Services.policy); None: the settings' policy file, as the CLI has it.
    policy: Policy | None = None

    @property
    def _policy(self) -> Policy:
        return self.policy or self.settings.loaded_policy

    def __post_init__(self) -> None:
        self.settings.use_directory(self.store)  # who may act: the provisioned directory too

    async def _act(
        self,
        workflow_id: str,
        update: UpdateMethodMultiParam[[Any, Argument], Result],
        argument: Argument,
    ) -> Result:
        client = self.temporal if isinstance(self.temporal, Client) else await self.temporal()
        try:
            return await act(client, workflow_id, update, argument)
        except WorkflowNotRunning:
            # The record knows a finished one's state: say that rather than "does not exist".
            state = await asyncio.to_thread(self._recorded_state, workflow_id)
            if state is None:
                raise
            raise ActionRefused(
                f"{workflow_id} is {state} and finished: nothing more can be done to it"
            ) from None

    def _recorded_state(self, workflow_id: str) -> str | None:
        if workflow_id.startswith("decision-"):
            decision = self.store.decisions.get(workflow_id)
            return decision.state.value if decision is not None else None
        item = self.store.records.action_item(workflow_id)
        if item is not None:
            return item.state.value
        pm = self.store.records.postmortem(workflow_id)
        return pm.state.value if pm is not None else None

    # --- council decisions ------------------------------------------------------------------

    async def decide(self, decision_id: str, request: DecisionRequest) -> Decision:
        """A council member decides an open decision (the workflow's validator judges the rest)."""
        if request.by not in self._policy.council:
            raise ActionRefused(
                f"only the reliability council decides ({request.by} is not on it)",
                RefusalKind.FORBIDDEN,
            )
        return await self._act(decision_id, CouncilDecisionWorkflow.decide, request)

    async def lift(self, decision_id: str, request: LiftRequest) -> Decision:
        """A council member lifts a pause or a freeze by hand, before its condition holds."""
        if request.by not in self._policy.council:
            raise ActionRefused(
                f"only the reliability council lifts a freeze ({request.by} is not on it)",
                RefusalKind.FORBIDDEN,
            )
        return await self._act(decision_id, CouncilDecisionWorkflow.lift, request)

    # --- postmortems ------------------------------------------------------------------------

    async def submit_draft(self, pm_id: str, submission: DraftSubmission) -> Postmortem:
        """Submit the draft for review (its owner; anyone may opt in to an optional postmortem).

        A postmortem the record does not know yet is left to Temporal to judge (the CLI passes
        ids through); only the limits are checked before it is sent.
        """
        policy = self._policy
        pm = await asyncio.to_thread(self.store.records.postmortem, pm_id)
        # Who may submit first: a draft's criteria call out (Prometheus, URLs), and only its
        # owner's may. The workflow's validator still has the final say.
        refused = submitter_refusal(pm, submission.by, policy) if pm is not None else None
        if refused is not None:
            raise ActionRefused(refused, refused.kind)
        draft, config = submission.draft, self.settings.check_config()
        today = policy.calendar.local_date(self.clock())
        # Before any check asks the world: the limits, and whether each criterion could ever be
        # checked.
        if past_limits := draft_bounds(draft, today=today) + uncheckable_criteria(draft, config):
            problems = Problems(f"draft for {pm_id} rejected", past_limits)
            raise ActionRefused(problems.message, RefusalKind.INVALID)
        if pm is not None and (
            cause := await asyncio.to_thread(
                self.store.deploys.cause_problem, pm.incident, draft.caused_by_change
            )
        ):
            problems = Problems(f"draft for {pm_id} rejected", [cause])
            raise ActionRefused(problems.message, RefusalKind.INVALID)
        if pm is not None:
            refusal = await submission_refusal(pm, draft, policy, config, today)
            if refusal is not None:
                raise ActionRefused(refusal.message, RefusalKind.INVALID)
        return await self._act(pm_id, PostmortemWorkflow.submit_draft, submission)

    async def opt_in(self, pm_id: str, opt_in: OptIn) -> Postmortem:
        """Take on an optional postmortem: it becomes yours to write (anyone in the directory)."""
        return await self._act(pm_id, PostmortemWorkflow.opt_in, opt_in)

    async def approve(self, pm_id: str, approval: Approval) -> Postmortem:
        """Approve the draft under review (reviewers only; never its author)."""
        return await self._act(pm_id, PostmortemWorkflow.approve, approval)

    async def request_changes(self, pm_id: str, request: ChangeRequest) -> Postmortem:
        """Send the draft back to its owner with a reason."""
        return await self._act(pm_id, PostmortemWorkflow.request_changes, request)

    async def collect_again(self, pm_id: str, request: CollectAgain) -> Postmortem:
        """Ask the incident's sources for its timeline again (the owner or a reviewer, until
        approval); it runs in the background and the draft editor shows what came."""
        return await self._act(pm_id, PostmortemWorkflow.collect_again, request)

    # --- action items -----------------------------------------------------------------------

    async def acknowledge(self, item_id: str, acknowledgement: Acknowledgement) -> ActionItem:
        """The owner has seen it."""
        return await self._act(item_id, ActionItemWorkflow.acknowledge, acknowledgement)

    async def claim_done(self, item_id: str, claim: DoneClaim) -> ActionItem:
        """The owner says it is done; verification comes next."""
        return await self._act(item_id, ActionItemWorkflow.claim_done, claim)

    async def verify(self, item_id: str, verification: Verification) -> ActionItem:
        """Someone who is not the owner confirms the acceptance criterion holds."""
        return await self._act(item_id, ActionItemWorkflow.verify, verification)

    async def reject(self, item_id: str, rejection: Rejection) -> ActionItem:
        """A done claim does not meet the criterion; the item reopens with the reason."""
        return await self._act(item_id, ActionItemWorkflow.reject, rejection)

    async def request_extension(self, item_id: str, request: ExtensionRequest) -> ActionItem:
        """The owner asks for a later due date; the manager or the council decides."""
        return await self._act(item_id, ActionItemWorkflow.request_extension, request)

    async def decide_extension(self, item_id: str, decision: ExtensionDecision) -> ActionItem:
        """The owner's manager or a council member approves or denies a pending extension."""
        return await self._act(item_id, ActionItemWorkflow.decide_extension, decision)

    async def reassign(self, item_id: str, change: Reassignment) -> ActionItem:
        """A new owner, who is told by email."""
        return await self._act(item_id, ActionItemWorkflow.reassign, change)

    async def accept_risk(self, item_id: str, request: RiskAcceptanceRequest) -> ActionItem:
        """The reliability council closes it without the fix, in writing."""
        return await self._act(item_id, ActionItemWorkflow.accept_risk, request)
