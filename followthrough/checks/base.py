"""What every checker is, and the small helpers they share."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from followthrough.checks.config import CheckConfig
from followthrough.domain.checks import CheckResult, trimmed
from followthrough.domain.criteria import Stability

C = TypeVar("C", bound=Stability)


class Checker(Generic[C]):
    """One automated kind of acceptance criterion: run it, and (optionally) look it over
    against the real world when a draft is submitted.

    `check` never raises for a failing or unreachable target: that is a failed CheckResult with
    a reason in words. Only a programming error raises (and the activity's retries see it).
    """

    kind: ClassVar[str]

    async def check(self, criterion: C, config: CheckConfig, now: datetime) -> CheckResult:
        raise NotImplementedError

    async def preflight(self, criterion: C, config: CheckConfig) -> list[str]:
        """Problems only the real world can show at submission; none by default."""
        return []


def result(passed: bool, at: datetime, asked: str, answer: str, reason: str) -> CheckResult:
    """A CheckResult with the answer trimmed to what evidence keeps."""
    return CheckResult(passed=passed, at=at, asked=asked, answer=trimmed(answer), reason=reason)


def number(value: Any) -> str:
    """A value as Prometheus or a person would write it: 0.031, 12, NaN, +Inf."""
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "+Inf" if value > 0 else "-Inf"
        return f"{value:.6g}"
    return str(value)


def moment(at: datetime) -> str:
    """A time as evidence shows it: ISO 8601, to the second, with its offset."""
    return at.isoformat(timespec="seconds")
