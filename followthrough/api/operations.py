"""The operations page: the work that stopped moving, read live from Temporal, for the operators.

Only the policy's operators (else the council) see it: it names every stuck workflow and its
error, which can carry details of any postmortem. The same finding runs every few minutes as the
stuck-work sweep, which emails the operators once per workflow and problem.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse

from followthrough.api.dashboard import SignedIn, local_times, render_page
from followthrough.api.services import Using
from followthrough.domain.limits import STUCK_WORK_DESCRIBED_PER_SWEEP
from followthrough.domain.stuck import ACTIVITY_ATTEMPTS, WORKFLOW_TASK_FAILURES
from followthrough.notices.render import Links
from followthrough.temporal.operations import find_stuck_work

router = APIRouter(include_in_schema=False)


@router.get("/operations", response_class=HTMLResponse)
async def operations_page(request: Request, who: SignedIn, using: Using) -> HTMLResponse:
    """Stuck workflows on this deployment's task queue, as Temporal describes them now."""
    operators = using.policy.operator_names
    if who.person not in operators:
        page = render_page(
            request, using, "operations.html.j2", who, operators=operators, report=None
        )
        page.status_code = status.HTTP_403_FORBIDDEN
        return page
    report = await find_stuck_work(using.client, using.task_queue)
    links = Links(temporal_ui=using.settings.temporal_ui_url, namespace=using.client.namespace)
    return render_page(
        request,
        using,
        "operations.html.j2",
        who,
        operators=operators,
        report=report,
        workflow_link=links.workflow,
        task_queue=using.task_queue,
        limit=STUCK_WORK_DESCRIBED_PER_SWEEP,
        task_failures=WORKFLOW_TASK_FAILURES,
        activity_attempts=ACTIVITY_ATTEMPTS,
        local=local_times(using),
    )
