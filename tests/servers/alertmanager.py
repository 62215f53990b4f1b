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

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.debian import ensure_debian_package
from tests.servers.daemon import LoopbackDaemon, is_loopback

PACKAGE = "prometheus-alertmanager"
BINARY = "prometheus-alertmanager"


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
    if not is_loopback(urlsplit(url).hostname or ""):
        raise ValueError(f"the tests' webhook must be on a loopback address, not {url!r}")


class Alertmanager(LoopbackDaemon):
    """One Alertmanager process; an async context manager. See the module docstring."""

    name = "Alertmanager"

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
        config = alertmanager_config(
            webhook_url=webhook_url,
            bearer_token=bearer_token,
            group_by=group_by,
            group_wait=group_wait,
            group_interval=group_interval,
            repeat_interval=repeat_interval,
            resolve_timeout=resolve_timeout,
        )
        super().__init__(directory, stem="alertmanager", config=config, binary=binary)
        self.webhook_url = webhook_url

    # -- lifecycle (the rest is LoopbackDaemon's) --------------------------------------------

    def find_binary(self) -> str:
        return alertmanager_binary()

    def flags(self) -> list[str]:
        return [
            f"--storage.path={self.storage_path}",
            "--cluster.listen-address=",
            "--log.level=debug",
        ]

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


__all__ = ["Alertmanager", "alertmanager_binary", "alertmanager_config", "rfc3339"]
