"""What every checker is, and the small helpers they share."""

from __future__ import annotations

import socket
import ssl
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


def describe_error(err: BaseException) -> str:
    """An exception as words a reader of the evidence understands, with its type for searching."""
    text = str(err).strip()
    name = type(err).__name__
    return f"{name}: {text}" if text else name


def network_failure(err: BaseException) -> str:
    """What went wrong on the network, in words: the innermost cause of a client library's
    wrapped exception (httpx says 'All connection attempts failed'; the socket said refused)."""
    seen: set[int] = set()
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        reason = getattr(current, "reason", None)  # urllib3 keeps the cause in .reason
        following = current.__cause__ or current.__context__
        current = reason if isinstance(reason, BaseException) else following
    for cause in reversed(chain):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed ({cause.verify_message})"
        if isinstance(cause, ssl.SSLError):
            return f"the TLS handshake failed ({cause.reason or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "the connection was reset"
        if isinstance(cause, socket.gaierror):
            return f"the host name does not resolve ({cause.strerror})"
        if isinstance(cause, TimeoutError):
            return "the connection timed out"
    return describe_error(chain[-1] if len(chain) > 1 else err)


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
