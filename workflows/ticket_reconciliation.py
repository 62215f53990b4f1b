"""TicketReconciliationWorkflow: what a missed Jira webhook left behind, caught on a schedule.

Every run asks Jira for the postmortem tickets that reached done recently, finds the open action
items they belong to, and signals each as its webhook would have. Items judge the signal
themselves (only an open item becomes done claimed), so a ticket seen twice changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities import FIND_DONE_TICKETS, OPEN_ITEMS_FOR_TICKETS
    from followthrough.domain.tickets import TicketDone
    from workflows import RECORD_TIMEOUT, TICKET_DONE, TICKET_RETRY


@workflow.defn
class TicketReconciliationWorkflow:
    @workflow.run
    async def run(self, window: str) -> list[str]:
        """Signal the open items whose tickets are done; their ids."""
        done: list[TicketDone] = await workflow.execute_activity(
            FIND_DONE_TICKETS,
            window,
            result_type=list[TicketDone],
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=TICKET_RETRY,
        )
        if not done:
            return []
        items: dict[str, str] = await workflow.execute_activity(
            OPEN_ITEMS_FOR_TICKETS,
            [ticket.key for ticket in done],
            result_type=dict[str, str],
            start_to_close_timeout=RECORD_TIMEOUT,
        )
        claimed = []
        for ticket in done:
            item_id = items.get(ticket.key)
            if item_id is None:
                continue
            found = ticket.model_copy(update={"source": "reconciliation"})
            try:
                await workflow.get_external_workflow_handle(item_id).signal(TICKET_DONE, found)
            except FailureError as err:  # it closed meanwhile: nothing left to claim
                workflow.logger.warning("could not tell %s: %s", item_id, err)
                continue
            claimed.append(item_id)
        workflow.logger.info("reconciled %d done tickets: %s", len(claimed), claimed)
        return claimed
