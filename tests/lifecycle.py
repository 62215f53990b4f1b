"""Driving postmortems and their action items through the real workflows, as people do: for the
tests that run lifecycles on a Temporal server (test_lifecycle.py, test_handoff_notices.py, ...).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from followthrough.actions import act
from followthrough.domain.draft import parse_draft
from followthrough.domain.incident import parse_incident
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import ActionItem, DraftSubmission, Postmortem
from followthrough.temporal.client import start_postmortem
from tests.factories import incident_data
from workflows.action_item import ActionItemWorkflow
from workflows.postmortem import PostmortemWorkflow


async def start(
    client: Client, policy: Policy, task_queue: str, now: datetime, **incident: Any
) -> str:
    """An incident of the factories (as `incident` changes it) resolved: its postmortem's id."""
    resolved = parse_incident(incident_data(now, **incident), policy)
    return (await start_postmortem(client, resolved, policy, task_queue=task_queue)).workflow_id


async def submit(client: Client, pm_id: str, by: str, draft: dict[str, Any]) -> Postmortem:
    submission = DraftSubmission(by=by, draft=parse_draft(draft))
    return await act(client, pm_id, PostmortemWorkflow.submit_draft, submission)


async def wait_for_item(client: Client, item_id: str) -> ActionItem:
    """The child starts right after approval; query it once it exists."""
    handle = client.get_workflow_handle_for(ActionItemWorkflow.run, item_id)
    for _ in range(100):
        try:
            return await handle.query(ActionItemWorkflow.snapshot)
        except RPCError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{item_id} never started")
