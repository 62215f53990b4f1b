"""A real Prometheus Alertmanager (Debian's prometheus-alertmanager) for the tests.

    async with Alertmanager(tmp_path, webhook_url=url, bearer_token="s3cret") as am:
        await am.fire({"alertname": "HighLatency", "service": "checkout"}, {"summary": "..."})
        ...  # wait until the receiver got the firing notification
        await am.resolve({"alertname": "HighLatency", "service": "checkout"}, {"summary": "..."})
        ...  # the resolved notification arrives about a second later

It runs the binary on 127.0.0.1 on a free port, clustering off, its storage in a temporary
directory, with a config it writes: one route, one receiver whose single webhook points at our
URL with `send_resolved: true` and the token as `Authorization: Bearer <token>`. It waits for
`/-/ready`, and on exit terminates it (then kills it); when the block fails, Alertmanager's log
(debug level) is written to stderr, where pytest shows it.

What the timings are and why (Alertmanager 0.25, checked against the real binary):

- `group_wait: 1s`: a new group's first notification waits this long, to batch alerts arriving
  together. 1s makes the firing notification arrive about 1s after `fire()`, or at once when
  the alert's startsAt is already more than group_wait in the past (Alertmanager then skips the
  wait: measured 0.05s for an alert that started 2 minutes earlier).
- `group_interval: 1s`: after the first notification, the group is looked at again only every
  group_interval; a change (an alert resolved, a new alert in the group) goes out at the next
  such tick. So the resolved notification arrives at most about 1s after `resolve()`. It
  cannot be zero (config error).
- `repeat_interval: 24h`: an unchanged firing group would be re-sent this often. Long, so the
  receiver sees exactly one firing and one resolved notification, never a repeat.
- `resolve_timeout: 5m` (global): only for alerts posted *without* endsAt, as `fire()` does by
  default: Alertmanager then sets endsAt = now + resolve_timeout and resolves the alert on its
  own when that passes. 5m (the default) is far longer than any test, so an alert is resolved
  only when the test calls `resolve()`: deterministic. (Prometheus itself always sends endsAt,
  a few evaluation intervals ahead, and re-sends while the rule fires.)
- `group_by: ['...']` (default): every distinct label set is its own group, so two tests' or two
  incidents' alerts are never batched into one notification; groupKey is then
  `{}:{alertname="...", <every label>}`. Pass group_by=("alertname",) for the common production
  setting.

Things learned that a receiver must handle:

- An alert is resolved by posting it again (same labels: the fingerprint is a hash of the
  labels) with endsAt in the past. startsAt must be before endsAt or the API answers 400.
- Resolve only after the firing notification went out: Alertmanager sends a resolved
  notification only for alerts it has notified as firing (its notification log); an alert
  fired and resolved within group_wait produces no notification at all.
- In the payload, a firing alert's endsAt is "0001-01-01T00:00:00Z" (Go's zero time), even
  though Alertmanager holds endsAt = now + resolve_timeout; a resolved alert has the real endsAt.
- The payload's top-level "status" is "resolved" only when every alert in it is resolved.
- A webhook answer of 5xx is retried within the same flush (measured: 3 attempts in about
  1.2s). A 4xx is not retried within the flush, but the notification counts as not sent, so the
  next group_interval tick sends it again: with group_interval 1s, a receiver that answers 401
  (wrong token) gets the same notification about every second until it accepts one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from tests.debian import ensure_debian_package
from tests.processes import free_port

PACKAGE = "prometheus-alertmanager"
BINARY = "prometheus-alertmanager"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def alertmanager_binary() -> str:
    """The installed Alertmanager, installing Debian's package if need be (skip, or fail in CI)."""
    return ensure_debian_package(PACKAGE, BINARY)


def rfc3339(moment: datetime) -> str:
    """A timezone-aware datetime as Alertmanager's API wants it: UTC, microseconds, "Z"."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no timezone; Alertmanager needs absolute times")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def alertmanager_config(
    *,
    webhook_url: str,
    bearer_token: str,
    group_by: Sequence[str] = ("...",),
    group_wait: str = "1s",
    group_interval: str = "1s",
    repeat_interval: str = "24h",
    resolve_timeout: str = "5m",
) -> dict[str, Any]:
    """The whole configuration: one route to one receiver with one webhook."""
    return {
        "global": {"resolve_timeout": resolve_timeout},
        "route": {
            "receiver": "followthrough",
            "group_by": list(group_by),
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [
            {
                "name": "followthrough",
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials": bearer_token},
                        },
                    }
                ],
            }
        ],
    }


def _require_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the tests' webhook must be on a loopback address, not {url!r}")


class Alertmanager:
    """One Alertmanager process; an async context manager. See the module docstring."""

    def __init__(
        self,
        directory: Path,
        *,
        webhook_url: str,
        bearer_token: str,
        binary: str | None = None,
        group_by: Sequence[str] = ("...",),
        group_wait: str = "1s",
        group_interval: str = "1s",
        repeat_interval: str = "24h",
        resolve_timeout: str = "5m",
    ) -> None:
        _require_loopback(webhook_url)
        self.directory = directory
        self.webhook_url = webhook_url
        self.binary = binary
        self.config = alertmanager_config(
            webhook_url=webhook_url,
            bearer_token=bearer_token,
            group_by=group_by,
            group_wait=group_wait,
            group_interval=group_interval,
            repeat_interval=repeat_interval,
            resolve_timeout=resolve_timeout,
        )
        self.config_path = directory / "alertmanager.yml"
        self.storage_path = directory / "alertmanager-data"
        self.log_path = directory / "alertmanager.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT, without a trailing slash."""
        if not self.port:
            raise RuntimeError("Alertmanager is not started")
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Alertmanager:
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
        if self.binary is None:
            self.binary = alertmanager_binary()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.storage_path.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self._client = httpx.AsyncClient(timeout=10.0)
        # A free port can be taken between finding it and binding it: try a few.
        for attempt in range(3):
            self.port = free_port()
            self._spawn()
            if await self._wait_ready():
                return
            log = self.log()
            if "address already in use" not in log or attempt == 2:
                await self.stop()
                raise RuntimeError(
                    f"Alertmanager did not become ready on {self.base_url} within "
                    f"{START_TIMEOUT:.0f}s; its log:\n{log}"
                )
            await self._stop_process()

    def _spawn(self) -> None:
        assert self.binary is not None
        command = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.storage_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url=http://127.0.0.1:{self.port}/",
            "--cluster.listen-address=",
            "--log.level=debug",
        ]
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def _wait_ready(self) -> bool:
        assert self.process is not None and self._client is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                response = await self._client.get(f"{self.base_url}/-/ready", timeout=2.0)
                if response.status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
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
        deadline = time.monotonic() + STOP_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def dump_log(self, why: str) -> None:
        sys.stderr.write(
            f"\n----- Alertmanager log ({why}): {self.log_path} -----\n{self.log()}"
            f"----- end of Alertmanager log -----\n"
        )

    # -- the v2 API --------------------------------------------------------------------------

    async def fire(
        self,
        labels: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
        starts_at: datetime | None = None,
        *,
        ends_at: datetime | None = None,
        generator_url: str | None = None,
    ) -> None:
        """Post a firing alert. Without ends_at it fires until resolve() (or resolve_timeout)."""
        await self._post_alert(labels, annotations, starts_at, ends_at, generator_url)

    async def resolve(
        self,
        labels: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
    ) -> None:
        """Post the same alert (same labels) with endsAt in the past (default: now): resolved.

        Call it only after the firing notification arrived (see the module docstring).
        """
        await self._post_alert(labels, annotations, starts_at, ends_at or datetime.now(UTC), None)

    async def _post_alert(
        self,
        labels: Mapping[str, str],
        annotations: Mapping[str, str] | None,
        starts_at: datetime | None,
        ends_at: datetime | None,
        generator_url: str | None,
    ) -> None:
        alert: dict[str, Any] = {"labels": dict(labels), "annotations": dict(annotations or {})}
        if starts_at is not None:
            alert["startsAt"] = rfc3339(starts_at)
        if ends_at is not None:
            alert["endsAt"] = rfc3339(ends_at)
        if generator_url is not None:
            alert["generatorURL"] = generator_url
        response = await self._api().post(f"{self.base_url}/api/v2/alerts", json=[alert])
        if response.status_code != 200:
            raise AssertionError(
                f"POST /api/v2/alerts answered {response.status_code}: {response.text}"
            )

    async def alerts(self) -> list[dict[str, Any]]:
        """What Alertmanager holds now (GET /api/v2/alerts): handy when a test goes wrong."""
        response = await self._api().get(f"{self.base_url}/api/v2/alerts")
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def _api(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("Alertmanager is not started")
        return self._client


__all__ = ["Alertmanager", "alertmanager_binary", "alertmanager_config", "rfc3339"]
