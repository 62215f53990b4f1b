"""The Temporal client: connect, register search attributes, start a postmortem.

Every process comes through here: the API, the CLI, the worker and the tests, so there is one way
to connect and one way to start a postmortem. People's actions are followthrough/actions.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from followthrough.domain.decisions import Opening
from followthrough.domain.incident import Incident
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import (
    STARTED_FINDABLE,
    PostmortemStart,
    opening_state,
    owning_team,
)
from followthrough.temporal import TASK_QUEUE
from workflows import SEARCH_ATTRIBUTES, postmortem_attributes
from workflows.council_decision import CouncilDecisionWorkflow, DecisionStart
from workflows.postmortem import PostmortemWorkflow

if TYPE_CHECKING:
    from followthrough.observability import Telemetry

DEFAULT_ADDRESS = "127.0.0.1:7233"


async def connect(address: str | None = None, telemetry: Telemetry | None = None) -> Client:
    """Connect with Temporal's own environment configuration (TEMPORAL_ADDRESS and friends).

    Long-running processes pass their telemetry (metrics runtime, tracing interceptor); workers
    built from the client inherit both.
    """
    config = ClientConfig.load_client_connect_config()
    if address:
        config["target_host"] = address
    config.setdefault("target_host", DEFAULT_ADDRESS)
    return await Client.connect(
        **config,
        data_converter=pydantic_data_converter,
        runtime=telemetry.runtime if telemetry else None,
        interceptors=telemetry.interceptors if telemetry else (),
    )


async def register_search_attributes(client: Client) -> None:
    """For servers that were not started with them (the embedded default passes them as flags)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES
            },
        )
    )


class StartResult(BaseModel):
    workflow_id: str
    outcome: str  # "started", "already open", or "already closed"


async def start_postmortem(
    client: Client, incident: Incident, policy: Policy, *, task_queue: str = TASK_QUEUE
) -> StartResult:
    """Start the postmortem for a resolved incident, or find the one that exists.

    Exactly one of any number of concurrent starts creates the workflow (and answers "started");
    the others find it. REJECT_DUPLICATE means a postmortem that has closed is never reopened by
    a late duplicate delivery. It starts findable by its search attributes, so its workflow
    need not set them in its first step (a visibility write less per postmortem).
    """
    start = PostmortemStart(incident=incident, policy=policy, started=STARTED_FINDABLE)
    state = opening_state(incident, policy).value
    found_by = postmortem_attributes(state, incident.severity, owning_team(incident, policy))
    return await _start_once(
        client,
        PostmortemWorkflow.run,
        start,
        incident.postmortem_id,
        task_queue,
        TypedSearchAttributes(found_by),
    )


async def start_decision(
    client: Client, opening: Opening, policy: Policy, *, task_queue: str = TASK_QUEUE
) -> StartResult:
    """Open a council decision, or find the one its trigger opened before (its id is the
    trigger's): "started", "already open" or "already closed", as for postmortems."""
    start = DecisionStart(opening=opening, policy=policy)
    return await _start_once(
        client, CouncilDecisionWorkflow.run, start, opening.decision_id, task_queue
    )


async def _start_once(
    client: Client,
    run: Any,
    start: BaseModel,
    workflow_id: str,
    task_queue: str,
    search_attributes: TypedSearchAttributes | None = None,
) -> StartResult:
    """Start a workflow whose id is its trigger's, or find the one that exists: a closed one is
    never started again (REJECT_DUPLICATE), so a late duplicate cannot reopen it."""
    try:
        await client.start_workflow(
            run,
            start,
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes,
        )
    except WorkflowAlreadyStartedError:
        status = await _status(client, workflow_id)
        running = status is WorkflowExecutionStatus.RUNNING
        return StartResult(
            workflow_id=workflow_id, outcome="already open" if running else "already closed"
        )
    return StartResult(workflow_id=workflow_id, outcome="started")


async def _status(client: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    return description.status
