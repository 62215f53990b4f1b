"""Running acceptance-criterion checks against the real world, with evidence.

    result = await run_check(criterion, config, now)      # CheckResult(passed, at, asked, ...)
    problems = await preflight_problems(criterion, config)  # at submission: [] when fine

One checker per automated kind, found by the criterion's `kind` in CHECKERS: a new kind is one
small Checker subclass and one entry there. A failing or unreachable target is a failed
CheckResult whose reason says what happened; only programming errors raise (a Manual criterion
is not run: a person signs it off).

The `jira` client is imported only when a ticket is checked, so importing this package stays
cheap (the CLI builds a CheckConfig through Settings).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from followthrough.checks.base import Checker
from followthrough.checks.config import CheckConfig
from followthrough.checks.http_check import HttpChecker
from followthrough.checks.prometheus import AlertRuleChecker, PrometheusQueryChecker
from followthrough.checks.tickets import TicketChecker
from followthrough.domain.checks import CheckResult
from followthrough.domain.criteria import AcceptanceCriterion, parse_criterion
from followthrough.domain.draft import Draft, draft_problems, the_criterion
from followthrough.domain.limits import PREFLIGHT_PROBES, PREFLIGHT_SECONDS
from followthrough.domain.policy import Policy
from followthrough.domain.postmortem import Postmortem
from followthrough.domain.problems import Problems
from followthrough.logging import get_logger

CHECKERS: dict[str, Checker[Any]] = {
    checker.kind: checker
    for checker in (HttpChecker(), PrometheusQueryChecker(), AlertRuleChecker(), TicketChecker())
}


def _checker(criterion: AcceptanceCriterion) -> Checker[Any]:
    if not criterion.automated:
        raise ValueError(f"a {criterion.kind} criterion is signed off by a person, not run")
    try:
        return CHECKERS[criterion.kind]
    except KeyError:
        raise ValueError(f"no checker for the kind {criterion.kind!r}") from None


async def run_check(
    criterion: AcceptanceCriterion, config: CheckConfig, now: datetime
) -> CheckResult:
    """One attempt at the criterion, at `now` (aware): never raises for what the target does."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return await _checker(criterion).check(criterion, config, now)


async def preflight_problems(criterion: AcceptanceCriterion, config: CheckConfig) -> list[str]:
    """What only the real world can show at submission ('field: problem'); [] for a manual
    criterion and for kinds with nothing to ask. An outage is logged, never a problem."""
    if not criterion.automated:
        return []
    return await _checker(criterion).preflight(criterion, config)


async def draft_preflight(draft: Draft, config: CheckConfig) -> list[str]:
    """Problems with a draft's criteria that only the real world shows, named as draft_problems
    names them (e.g. PromQL that Prometheus rejects, a URL the policy does not let checks call).

    Bounded: the first PREFLIGHT_PROBES automated criteria, within PREFLIGHT_SECONDS in all; what
    is left unprobed is judged when its check runs.
    """
    problems: list[str] = []
    probed = 0
    try:
        async with asyncio.timeout(PREFLIGHT_SECONDS):
            for i, item in enumerate(draft.action_items):
                criterion, _ = parse_criterion(the_criterion(item))
                if criterion is None or not criterion.automated:
                    continue  # draft_problems says what is wrong with it; people sign off manual
                if probed == PREFLIGHT_PROBES:
                    break
                probed += 1
                title = item.title.strip()
                name = f"action_items[{i}]" + (f" '{title}'" if title else "")
                found = await preflight_problems(criterion, config)
                problems.extend(f"{name}: acceptance criterion: {problem}" for problem in found)
    except TimeoutError:
        get_logger(__name__).warning(  # a fresh logger each time, as prometheus.py says why
            "preflight stopped at its deadline", seconds=PREFLIGHT_SECONDS, probed=probed
        )
    return problems


async def submission_refusal(
    pm: Postmortem, draft: Draft, policy: Policy, config: CheckConfig, today: date
) -> Problems | None:
    """Before a draft is sent to its workflow: refused if the real world rejects a criterion,
    listing the draft's other problems too, so its author fixes everything in one round.

    Call it only for someone who may submit (submitter_refusal): it calls out."""
    found = await draft_preflight(draft, replace(config, outbound=policy.outbound))
    if not found:
        return None  # the workflow's validator judges the rest
    problems = draft_problems(draft, pm.incident, policy, today=today) + found
    return Problems(f"draft for {pm.id} rejected", problems)


__all__ = [
    "CHECKERS",
    "CheckConfig",
    "Checker",
    "draft_preflight",
    "preflight_problems",
    "run_check",
    "submission_refusal",
]
