"""Whether a draft's criteria can ever be checked here: Prometheus and Jira must be configured.

A `prometheus_query` or `alert_rule_present` criterion with no Prometheus to ask, or a
`ticket_resolved` one with no Jira, could never verify its item, only have its risk accepted.
The workflow cannot know the worker's settings without I/O, so the API, the dashboard and the CLI
refuse such a draft before sending it, from the same settings the worker's checks use.
"""

from __future__ import annotations

from followthrough.checks.config import CheckConfig
from followthrough.domain.criteria import (
    AcceptanceCriterion,
    AlertRulePresent,
    PrometheusQuery,
    TicketResolved,
    parse_criterion,
)
from followthrough.domain.draft import Draft, the_criterion

NO_PROMETHEUS = (
    "prometheus_url: no Prometheus is configured (FOLLOWTHROUGH_PROMETHEUS_URL) and the "
    "criterion names none, so it could never be checked"
)
NO_JIRA = (
    "kind: ticket_resolved needs Jira, and none is configured (FOLLOWTHROUGH_JIRA_URL, _JIRA_USER "
    "and _JIRA_TOKEN), so it could never be checked"
)


def unconfigured(criterion: AcceptanceCriterion, config: CheckConfig) -> str | None:
    """What is missing for this criterion ever to be checked; None when nothing is."""
    if isinstance(criterion, PrometheusQuery | AlertRulePresent):
        if not (criterion.prometheus_url or config.prometheus_url):
            return NO_PROMETHEUS
    elif isinstance(criterion, TicketResolved) and not config.jira_configured:
        return NO_JIRA
    return None


def uncheckable_criteria(draft: Draft, config: CheckConfig) -> list[str]:
    """Every action item whose criterion could never be checked, named as draft_problems names
    them."""
    problems = []
    for i, item in enumerate(draft.action_items):
        criterion, _ = parse_criterion(the_criterion(item))
        missing = None if criterion is None else unconfigured(criterion, config)
        if missing is not None:
            title = item.title.strip()
            name = f"action_items[{i}]" + (f" '{title}'" if title else "")
            problems.append(f"{name}: acceptance criterion: {missing}")
    return problems
