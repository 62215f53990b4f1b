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

from datetime import datetime
from typing import Any

from followthrough.checks.base import Checker
from followthrough.checks.config import CheckConfig
from followthrough.checks.http_check import HttpChecker
from followthrough.checks.prometheus import AlertRuleChecker, PrometheusQueryChecker
from followthrough.checks.tickets import TicketChecker
from followthrough.domain.checks import CheckResult
from followthrough.domain.criteria import AcceptanceCriterion

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


__all__ = ["CHECKERS", "CheckConfig", "Checker", "preflight_problems", "run_check"]
