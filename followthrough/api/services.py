"""What the HTTP API works with: settings, the record, the policy, Temporal, and a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated

from fastapi import Depends, Request
from temporalio.client import Client

from followthrough.actions import Actions
from followthrough.api.alert_intake import AlertIntake
from followthrough.api.metrics import Metrics
from followthrough.api.throttle import Throttle
from followthrough.domain.policy import Policy
from followthrough.reporting.metrics_view import MetricsCache
from followthrough.settings import Settings
from followthrough.storage import Store


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    store: Store
    client: Client
    clock: Callable[[], datetime] = field(default=utc_now)  # tests pass the test server's clock
    metrics: Metrics = field(init=False)
    reliability: MetricsCache = field(default_factory=MetricsCache)  # the Metrics page's figures
    throttle: Throttle = field(default_factory=Throttle)  # failed attempts per client address

    def __post_init__(self) -> None:
        self.metrics = Metrics(self.store, lambda: self.policy.calendar.local_date(self.clock()))

    @property
    def policy(self) -> Policy:
        return self.settings.loaded_policy

    @property
    def actions(self) -> Actions:
        """People's actions, as the person each request is from takes them."""
        return Actions(
            temporal=self.client, store=self.store, settings=self.settings, clock=self.clock
        )

    @cached_property
    def link_secret(self) -> str:
        """Read (or made) once, not on every click."""
        return self.settings.effective_link_secret()

    @cached_property
    def alert_intake(self) -> AlertIntake:
        """Alert events kept with one write for the deliveries that arrive together."""
        return AlertIntake(self.store.alerts.keep)

    @property
    def task_queue(self) -> str:
        return self.settings.task_queue


# async although it awaits nothing: FastAPI runs a plain `def` dependency in its thread pool, a
# thread hop on every request that took a tenth of the API's CPU under webhook load
# (bench/README.md, "Ingest").
async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


Using = Annotated[Services, Depends(services)]
