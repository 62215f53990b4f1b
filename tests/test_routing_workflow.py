"""An action item's workflow decides its ticket's route from its policy and the real worker opens
the ticket there: the team's Jira project, labels, objective epic and active sprint; a team routed
to a tracker this deployment has not configured gets the refusal recorded on its item.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from followthrough.domain.draft import action_item_specs, parse_draft
from followthrough.domain.policy import parse_policy
from followthrough.domain.postmortem import ActionItemStart
from followthrough.integrations.jira import JiraConfig
from followthrough.storage import Store
from tests.api_support import link_mailer
from tests.conftest import eventually, running_worker
from tests.domain.test_routing import routed_data
from tests.factories import draft_data
from tests.recorded import record_postmortem
from tests.servers.jira_server import EPIC_LINK, JiraServer
from workflows.action_item import ActionItemWorkflow


async def test_items_open_their_tickets_where_their_team_plans(
    time_skipping: WorkflowEnvironment, sqlite_store: Store, tmp_path: Path
) -> None:
    policy = parse_policy(routed_data())
    now = await time_skipping.get_current_time()
    draft = draft_data(now)
    draft["action_items"][0] |= {"objective": "checkout-availability", "this_sprint": True}
    draft["action_items"][1] |= {"objective": "tech-debt"}  # platform: routed to GitHub
    specs = action_item_specs(parse_draft(draft))
    resolved = now - timedelta(hours=1)
    pm_id = record_postmortem(sqlite_store, policy, "INC-ROUTE", "SEV2", {"resolved": resolved}).id
    with JiraServer(
        users={"bot": "token"}, deployment_type="Server", projects={"PM": "PM", "PAY": "Pay"}
    ) as jira:
        jira.add_issue("REL-100", summary="Checkout at 99.95%", issue_type="Epic")
        sprint = jira.add_sprint(12, "Sprint 41")
        config = JiraConfig(
            url=jira.url, user="bot", token="token", project="PM", deployment="server"
        )
        mailer = link_mailer(tmp_path / "outbox")
        client = time_skipping.client
        async with running_worker(client, sqlite_store, mailer, jira=config) as queue:
            for spec in specs:
                item_id = f"{pm_id}-item-{spec.number}"
                start = ActionItemStart(
                    item_id=item_id,
                    postmortem_id=pm_id,
                    spec=spec,
                    policy=policy,
                    postmortem_title="Checkout 502s",
                    services=["checkout"],
                )
                await client.start_workflow(
                    ActionItemWorkflow.run, start, id=item_id, task_queue=queue
                )
            records = sqlite_store.records
            paid = await eventually(
                lambda: (i := records.action_item(f"{pm_id}-item-1")) and i.ticket and i, seconds=30
            )
            refused = await eventually(
                lambda: (i := records.action_item(f"{pm_id}-item-2")) and i.ticket_problem and i,
                seconds=30,
            )
        assert paid.ticket is not None and paid.ticket.key == "PAY-1"
        fields = jira.issue("PAY-1")["fields"]
        assert "payments" in fields["labels"] and fields[EPIC_LINK] == "REL-100"
        assert jira.sprint_issues(sprint) == ["PAY-1"]
        assert refused.ticket is None
        assert refused.ticket_problem is not None
        assert "routes this ticket to github (project acme/platform)" in refused.ticket_problem
        trail = sqlite_store.records.audit_trail(pm_id)
        assert any(e.action == "item.ticket_refused" and e.workflow_id == refused.id for e in trail)
        assert sorted(jira.issues) == ["PAY-1", "REL-100"]  # nothing in the default project
