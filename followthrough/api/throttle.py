"""Failed attempts per client address: sign-ins, API tokens and forged one-click links.

In memory, per API process, and bounded: a client past FAILED_ATTEMPTS in FAILURE_WINDOW_SECONDS
is refused (429 with Retry-After) until its window passes, whatever it sends. Behind a proxy every
client shares the proxy's address; the window then applies to them together.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from followthrough.domain.limits import CLIENTS_REMEMBERED, FAILED_ATTEMPTS, FAILURE_WINDOW_SECONDS


@dataclass
class _Failures:
    since: float  # when this window's first failure happened
    count: int = 0


@dataclass
class Throttle:
    attempts: int = FAILED_ATTEMPTS
    window: float = FAILURE_WINDOW_SECONDS
    remembered: int = CLIENTS_REMEMBERED
    clock: Callable[[], float] = time.monotonic
    _failures: OrderedDict[str, _Failures] = field(default_factory=OrderedDict)

    def retry_after(self, client: str) -> int | None:
        """Seconds until this client may try again, or None if it may now."""
        seen = self._current(client)
        if seen is None or seen.count < self.attempts:
            return None
        return max(1, math.ceil(seen.since + self.window - self.clock()))

    def failed(self, client: str) -> None:
        seen = self._current(client)
        if seen is None:
            seen = self._failures[client] = _Failures(since=self.clock())
            while len(self._failures) > self.remembered:
                self._failures.popitem(last=False)  # the oldest window goes first
        seen.count += 1

    def _current(self, client: str) -> _Failures | None:
        seen = self._failures.get(client)
        if seen is not None and self.clock() - seen.since >= self.window:
            del self._failures[client]
            return None
        return seen


def client_of(scope_client: tuple[str, int] | None) -> str:
    return scope_client[0] if scope_client else "unknown"
