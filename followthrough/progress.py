"""How far long command-line work has got, on stderr (stdout stays for the command's answer).

Library code takes a `ProgressReport` and calls it as it goes: `progress("reading incidents",
4000, 10000)`, or without a total when none is known (`progress("drawing charts")`). The CLI
passes a `Progress`; everything else defaults to `no_progress`.

On a terminal `Progress` keeps one line per stage up to date in place:
    Reading incidents 4,000/10,000 40%
Elsewhere (CI logs, a pipe) it stays quiet for the first QUIET_SECONDS, so a quick command's
output is its answer alone; work that takes longer writes plain lines, one when a stage starts
and then at most one per 10 % of it, so a log stays short however many steps there are.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, TextIO

REDRAW_SECONDS = 0.1  # a terminal line is redrawn at most this often (and at each stage's end)
QUIET_SECONDS = 5.0  # off a terminal, nothing is written before the work has taken this long


class ProgressReport(Protocol):
    def __call__(self, what: str, done: int = 0, total: int | None = None) -> None: ...


def no_progress(what: str, done: int = 0, total: int | None = None) -> None:
    """Report nothing: the default for library callers."""


def progress_line(what: str, done: int, total: int | None) -> str:
    """'Reading incidents 4,000/10,000 40%'; 'Drawing charts' with no total and nothing done."""
    name = what[:1].upper() + what[1:]
    if total is None:
        return f"{name} {done:,}" if done else name
    return f"{name} {done:,}/{total:,} {_percent(done, total)}%"


def _percent(done: int, total: int) -> int:
    # Rounded down, so 100% means finished rather than 99.6% of the way.
    return 100 if total <= 0 else max(0, min(100, done * 100 // total))


class Progress:
    """Progress on stderr (or `stream`): redrawn in place on a terminal, else plain lines.

    Use it as a context manager so a terminal's last line is ended before anything else prints.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        quiet_seconds: float = QUIET_SECONDS,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._clock = clock
        self._quiet_until = 0.0 if self.live else clock() + quiet_seconds
        self._stage: str | None = None
        self._tenth = -1  # plain lines: the last tenth of the stage written
        self._drawn_at = 0.0  # live: when the line was last redrawn
        self._width = 0  # live: how long the line on screen is; 0 when none is open

    def __call__(self, what: str, done: int = 0, total: int | None = None) -> None:
        starting = what != self._stage
        if starting:
            self._start(what)
        line = progress_line(what, done, total)
        finished = total is not None and done >= total
        if self.live:
            now = self._clock()
            if starting or finished or now - self._drawn_at >= REDRAW_SECONDS:
                self._redraw(line)
                self._drawn_at = now
            return
        tenth = 10 if total is None or total <= 0 else min(done * 10 // total, 10)
        if starting or (total is not None and tenth > self._tenth):
            if self._clock() >= self._quiet_until:
                self._write(line + "\n")
            self._tenth = tenth

    def finish(self) -> None:
        """End the open terminal line, if any; the next report starts afresh."""
        if self._width:
            self._write("\n")
        self._width = 0
        self._stage = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish()

    def _start(self, what: str) -> None:
        self.finish()  # a finished stage keeps its own line
        self._stage = what
        self._tenth = -1

    def _redraw(self, line: str) -> None:
        # Spaces over whatever is left of a longer earlier line.
        self._write("\r" + line + " " * max(0, self._width - len(line)))
        self._width = len(line)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
