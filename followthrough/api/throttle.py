"""Failed attempts per client address and per secret guessed: API tokens (at `/api` and the
sign-in form) and one-click links.

In memory, per API process, and bounded: a client past FAILED_ATTEMPTS at one secret in
FAILURE_WINDOW_SECONDS is refused there (429 with Retry-After) until its window passes, whatever it
sends, the right token too. Behind a proxy every client shares the proxy's address; the window
then applies to them together.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from followthrough.domain.limits import CLIENTS_REMEMBERED, FAILED_ATTEMPTS, FAILURE_WINDOW_SECONDS

Guessed = Literal["API tokens", "one-click links"]
TOKENS: Guessed = "API tokens"
LINKS: Guessed = "one-click links"
Client = tuple[str, int] | None  # an ASGI scope's "client": (address, port)


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
    _failures: OrderedDict[tuple[Guessed, str], _Failures] = field(default_factory=OrderedDict)

    def retry_after(self, guessed: Guessed, client: Client) -> int | None:
        """Seconds until this client may try again, or None if it may now."""
        seen = self._current((guessed, _address(client)))
        if seen is None or seen.count < self.attempts:
            return None
        return max(1, math.ceil(seen.since + self.window - self.clock()))

    def failed(self, guessed: Guessed, client: Client) -> None:
        key = (guessed, _address(client))
        seen = self._current(key)
        if seen is None:
            seen = self._failures[key] = _Failures(since=self.clock())
            while len(self._failures) > self.remembered:
                self._failures.popitem(last=False)  # the oldest window goes first
        seen.count += 1

    def _current(self, key: tuple[Guessed, str]) -> _Failures | None:
        seen = self._failures.get(key)
        if seen is not None and self.clock() - seen.since >= self.window:
            del self._failures[key]
            return None
        return seen


def _address(client: Client) -> str:
    return client[0] if client else "unknown"
