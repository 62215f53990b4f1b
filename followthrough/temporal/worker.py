"""The worker: every workflow and every activity, for `followthrough worker` and `up`.

Only worker processes import this (and with it storage, mail, checks and Jira for the
activities); the API and the CLI use followthrough.temporal.client.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.checks import CheckActivities
from activities.decisions import DecisionActivities
from activities.notices import NoticeActivities
from activities.operations import OperationsActivities
from activities.publishing import PublishingActivities
from activities.records import RecordActivities
from activities.slack import SlackDelivery
from activities.slos import SloActivities
from activities.slots import release_slot, request_slot
from activities.tickets import Restrictions, TicketActivities
from activities.timeline import TimelineActivities
from followthrough.checks.config import CheckConfig
from followthrough.domain.policy import Policy, PolicySource, current
from followthrough.domain.routing import TrackerKind
from followthrough.integrations.confluence import ConfluenceConfig
from followthrough.integrations.github import GitHubConfig, GitHubTracker
from followthrough.integrations.jira import JiraConfig, JiraTracker
from followthrough.integrations.slack import SlackApi, SlackConfig
from followthrough.integrations.timeline import Collector
from followthrough.integrations.timeline.deploys import DeploysCollector
from followthrough.integrations.trackers import Trackers
from followthrough.logging import ActivityLogContext, get_logger
from followthrough.notices.delivery import Mailer
from followthrough.storage import Store
from followthrough.temporal import TASK_QUEUE
from workflows.action_item import ActionItemWorkflow
from workflows.council_decision import CouncilDecisionWorkflow
from workflows.council_digest import CouncilDigestWorkflow
from workflows.postmortem import PostmortemWorkflow
from workflows.stuck_work import StuckWorkWorkflow
from workflows.team_slots import TeamSlotsWorkflow
from workflows.ticket_reconciliation import TicketReconciliationWorkflow

log = get_logger(__name__)

# The sandbox imports a workflow's module afresh for every run and keeps that copy while the run
# is cached (about 65 KiB and 5 ms for workflows/action_item.py, for each of thousands of parked
# items, and again for each evicted one that fires). The workflows keep no state in their modules
# and call nothing nondeterministic (tests/test_replay.py replays every recorded history in the
# full sandbox, which would refuse such a call), so the worker takes them from outside it.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("workflows")
)


def build_worker(
    client: Client,
    store: Store,
    executor: concurrent.futures.ThreadPoolExecutor,
    mailer: Mailer,
    policy: PolicySource,
    *,
    task_queue: str = TASK_QUEUE,
    checks: CheckConfig | None = None,
    jira: JiraConfig | None = None,
    public_url: str | None = None,
    sticky_queue_timeout: timedelta = timedelta(seconds=10),
    slack: SlackConfig | None = None,
    collectors: Sequence[Collector] = (),
    github: GitHubConfig | None = None,
    confluence: ConfluenceConfig | None = None,
) -> Worker:
    """A worker for every workflow and activity; without `jira` (or `github`), items use the
    built-in tracker; without `slack`, notices are email only; without `collectors`, no timeline
    source is asked; without `confluence`, approved postmortems are not published. `policy` may
    be a source of today's (the provisioned directory's), which notices and reports then read."""
    source, policy = policy, current(policy)
    records = RecordActivities(store)
    # A rule added since a postmortem opened restricts it now (never lifted): before any
    # activity reads the record for a notice, a ticket or a page.
    restricted = store.records.restrict_existing(policy)
    if restricted:
        log.info("restricted postmortems recorded before their rule", count=restricted)
    to_slack = (
        SlackDelivery(store, SlackApi(slack), source, mailer.links) if slack is not None else None
    )
    notices = NoticeActivities(store, mailer, source, to_slack)
    # Checks call out only where the policy's outbound section allows.
    checks = dataclasses.replace(checks or CheckConfig(), outbound=policy.outbound)
    checker = CheckActivities(checks)
    slos = SloActivities(store, checks, policy.alerts)
    tickets = TicketActivities(
        ticket_trackers(policy, jira, github), public_url, restrictions=Restrictions(store, policy)
    )
    operations = OperationsActivities(store, mailer, source)
    # The deploys the webhooks stored are a timeline source of their own, always on.
    timeline = TimelineActivities(store, [*collectors, DeploysCollector(store, policy.changes)])
    publishing = PublishingActivities(store, source, confluence, public_url)
    decisions = DecisionActivities(store, checks)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[
            PostmortemWorkflow,
            ActionItemWorkflow,
            TeamSlotsWorkflow,
            CouncilDigestWorkflow,
            TicketReconciliationWorkflow,
            StuckWorkWorkflow,
            CouncilDecisionWorkflow,
        ],
        activities=[
            records.record_postmortem,
            records.record_action_item,
            notices.send_notice,
            notices.escalate_item,
            notices.send_council_digest,
            request_slot,
            release_slot,
            checker.run_check,
            records.open_items_for_tickets,
            records.note_themes,
            records.impact_facts,
            slos.slo_evidence,
            tickets.open_ticket,
            tickets.comment_ticket,
            tickets.update_ticket_due,
            tickets.find_done_tickets,
            operations.report_stuck_work,
            operations.prune_alert_events,
            timeline.collect_timeline,
            publishing.publish_postmortem,
            decisions.record_decision,
            decisions.check_lift,
        ],
        activity_executor=executor,
        workflow_runner=WORKFLOW_RUNNER,
        interceptors=[ActivityLogContext()],
        # On Ctrl-C or SIGTERM, let in-flight storage writes finish before stopping.
        graceful_shutdown_timeout=timedelta(seconds=10),
        # A killed worker's workflows wait this long for it before another worker takes them.
        sticky_queue_schedule_to_start_timeout=sticky_queue_timeout,
    )


def ticket_trackers(
    policy: Policy, jira: JiraConfig | None, github: GitHubConfig | None
) -> Trackers:
    """Tickets go where the policy routes them; each tracker also searches the projects routed
    to it for the done ones (the reconciliation). Unrouted items go to Jira, or, without Jira, to
    GitHub's default repository when one is set."""
    routes = policy.routing.all()
    jira_projects = sorted({r.tracker.project for r in routes if r.tracker.kind == "jira"})
    repositories = sorted({r.tracker.project for r in routes if r.tracker.kind == "github"})
    jira_tracker = JiraTracker(jira, also_projects=jira_projects) if jira is not None else None
    github_tracker = None
    if github is not None:
        also = tuple(sorted({*github.repositories, *repositories}))
        github_tracker = GitHubTracker(dataclasses.replace(github, repositories=also))
    unrouted: TrackerKind = "jira"
    if jira is None and github is not None and github.repository:
        unrouted = "github"
    return Trackers({"jira": jira_tracker, "github": github_tracker}, unrouted=unrouted)
