"""Servers a test starts on 127.0.0.1 and stops again: the lifecycle they all share.

- `LoopbackDaemon`: a server PROCESS of the Prometheus project (Prometheus, Alertmanager:
  they share `--config.file`, `--web.listen-address`, `--web.external-url` and `/-/ready`) on
  a free port; an async context manager. A subclass says what is its own: `find_binary()`,
  the `config` it passes (written as `<stem>.yml`), its other `flags()`, and its API helpers;
  files stay in the test's directory (`<stem>.yml`, `<stem>-data/`, `<stem>.log`). The base
  writes the command line to the log file, spawns the process with stdout and stderr into
  that log, polls `ready_path` (default `/-/ready`) until it answers 200, and, since a free
  port can be taken between finding it and binding it, tries another port when the log says
  "address already in use". `stop()` terminates the process (SIGTERM, then SIGKILL after
  `stop_timeout`) and closes the HTTP client; on leaving the `async with` block, when the
  block failed or the process had died, the log goes to stderr, where pytest shows it.
- `LoopbackThreadServer`: a server in THIS process (the fake Jira, the metrics target) on a
  free port, served by a daemon thread; a context manager. A subclass says how to `open()` its
  server and thread; `stop()` shuts the server down, closes its socket and joins the thread.

`is_loopback()` is the check the tests' configs make before they point a server at an address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import yaml

from tests.processes import free_port


def is_loopback(host: str) -> bool:
    """True for "localhost" and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackDaemon:
    """One server process on 127.0.0.1; an async context manager. See the module docstring."""

    name = "the daemon"  # in messages: "Prometheus", "Alertmanager"
    ready_path = "/-/ready"
    start_timeout = 30.0
    stop_timeout = 10.0
    port_attempts = 3

    def __init__(
        self, directory: Path, *, stem: str, config: dict[str, Any], binary: str | None
    ) -> None:
        self.directory = directory
        self.config = config
        self.binary = binary
        self.config_path = directory / f"{stem}.yml"
        self.storage_path = directory / f"{stem}-data"
        self.log_path = directory / f"{stem}.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None  # time.monotonic() when the process was spawned
        self._client: httpx.AsyncClient | None = None

    # -- what a subclass says ----------------------------------------------------------------

    def find_binary(self) -> str:
        """The installed binary (installing its package if need be), when none was given."""
        raise NotImplementedError

    def flags(self) -> list[str]:
        """Its own flags (storage, log level, ...), after the shared ones."""
        return []

    def prepare(self) -> None:
        """Before the first spawn: find the binary, write the config (a subclass may add)."""
        if self.binary is None:
            self.binary = self.find_binary()
        self.storage_path.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))

    def command(self, port: int) -> list[str]:
        """The command line that serves on 127.0.0.1:port."""
        assert self.binary is not None
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.external-url=http://127.0.0.1:{port}/",
            *self.flags(),
        ]

    # -- shared ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT, without a trailing slash."""
        if not self.port:
            raise RuntimeError(f"{self.name} is not started")
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def since_start(self) -> float:
        """Seconds since the process was spawned (for measuring)."""
        if self.started_at is None:
            raise RuntimeError(f"{self.name} is not started")
        return time.monotonic() - self.started_at

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        died = self.process is not None and self.process.poll() is not None
        await self.stop()
        if exc_type is not None or died:
            self.dump_log("the test failed" if exc_type is not None else "it died early")

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prepare()
        self._client = httpx.AsyncClient(timeout=10.0)
        # A free port can be taken between finding it and binding it: try a few.
        for attempt in range(self.port_attempts):
            self.port = free_port()
            self.spawn(self.command(self.port))
            if await self.wait_ready():
                return
            log = self.log()
            if "address already in use" not in log or attempt == self.port_attempts - 1:
                await self.stop()
                raise RuntimeError(
                    f"{self.name} did not become ready on {self.base_url} within "
                    f"{self.start_timeout:.0f}s; its log:\n{log}"
                )
            await self._stop_process()

    def spawn(self, command: Sequence[str]) -> None:
        """Start the process, its command line and then its output appended to the log."""
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                list(command),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self, path: str | None = None) -> bool:
        """Poll base_url + path (default ready_path) until it answers 200: True; False when
        the process exits or start_timeout passes first."""
        assert self.process is not None and self._client is not None
        url = f"{self.base_url}{path or self.ready_path}"
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                response = await self._client.get(url, timeout=2.0)
                if response.status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
        return False

    async def stop(self) -> None:
        await self._stop_process()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _stop_process(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=self.stop_timeout)

    def dump_log(self, why: str) -> None:
        sys.stderr.write(
            f"\n----- {self.name} log ({why}): {self.log_path} -----\n{self.log()}"
            f"----- end of {self.name} log -----\n"
        )

    def _check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.name} is not running")

    def _api(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._client


class LoopbackThreadServer:
    """A server in this process on 127.0.0.1, served by a daemon thread; a context manager."""

    name = "the server"  # in messages: "the Jira server", "the metrics target"

    def __init__(self) -> None:
        self._server: socketserver.TCPServer | None = None
        self._thread: threading.Thread | None = None

    def open(self) -> tuple[socketserver.TCPServer, threading.Thread]:
        """Bind 127.0.0.1 on port 0 (a free one) and serve it in a started daemon thread."""
        raise NotImplementedError

    def start(self) -> Self:
        if self._server is None:
            self._server, self._thread = self.open()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} is not started")
        return int(self._server.server_address[1])


__all__ = ["LoopbackDaemon", "LoopbackThreadServer", "is_loopback"]
