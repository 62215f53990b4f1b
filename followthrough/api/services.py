"""What the HTTP API works with: settings, the record, the policy, Temporal, and a clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client

from followthrough.actions import Actions
from followthrough.api.group_commit import GroupCommit
from followthrough.api.metrics import Metrics
from followthrough.api.throttle import Throttle
from followthrough.domain.alert_quality import AlertEvent
from followthrough.domain.directory import Role, with_sign_in_roles
from followthrough.domain.policy import Policy
from followthrough.integrations.oidc import OidcProvider
from followthrough.logging import get_logger
from followthrough.reporting.metrics_view import MetricsCache
from followthrough.settings import Settings
from followthrough.storage import Store
from followthrough.storage.deliveries import Delivery

log = get_logger(__name__)

# Roles granted at sign-in through the provider are read again after this many seconds: a sign-in
# in this process applies at once, one in another API process within this time.
SIGN_IN_ROLES_SECONDS = 30.0
# The most webhook deliveries one write remembers (5 columns each, far below the databases'
# bounds on parameters); as many arrive at once as the API has requests in flight.
DELIVERIES_PER_WRITE = 500


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
        self.settings.use_directory(self.store)  # the provisioned directory over the file's
        self.metrics = Metrics(self.store, lambda: self.policy.calendar.local_date(self.clock()))

    _roles: dict[str, frozenset[Role]] = field(default_factory=dict, init=False)
    _roles_read_at: float | None = field(default=None, init=False)
    _effective: tuple[Policy, dict[str, frozenset[Role]], Policy] | None = field(
        default=None, init=False
    )

    @property
    def policy(self) -> Policy:
        """The policy file's, with the roles people's provider groups granted at their last
        sign-in (while a provider is configured): what every check in the API authorizes by."""
        base = self.settings.loaded_policy
        if not self.settings.oidc_configured:
            return base
        roles = self._sign_in_roles()
        if self._effective is None or self._effective[0] is not base or self._effective[1] != roles:
            self._effective = (base, roles, with_sign_in_roles(base, roles))
        return self._effective[2]

    def _sign_in_roles(self) -> dict[str, frozenset[Role]]:
        # A small read on the event loop, at most every SIGN_IN_ROLES_SECONDS: the policy is a
        # property read everywhere, synchronously. A failed read keeps the last roles known.
        now = time.monotonic()
        if self._roles_read_at is None or now - self._roles_read_at >= SIGN_IN_ROLES_SECONDS:
            try:
                self._roles = self.store.identity.roles()
            except SQLAlchemyError as err:
                log.warning("sign-in roles not read", error=str(err).splitlines()[0])
            self._roles_read_at = now
        return self._roles

    def forget_sign_in_roles(self) -> None:
        """Someone signed in here: their roles apply from the next request."""
        self._roles_read_at = None

    @cached_property
    def oidc(self) -> OidcProvider | None:
        """The identity provider people sign in with; None: they sign in by API token."""
        config = self.settings
        if not (config.oidc_issuer and config.oidc_client_id and config.oidc_client_secret):
            return None
        return OidcProvider(
            issuer=config.oidc_issuer,
            client_id=config.oidc_client_id,
            client_secret=config.oidc_client_secret,
            scopes=config.oidc_scopes,
            timeout=config.oidc_timeout,
        )

    @property
    def actions(self) -> Actions:
        """People's actions, as the person each request is from takes them."""
        return Actions(
            temporal=self.client,
            store=self.store,
            settings=self.settings,
            clock=self.clock,
            policy=self.policy,
        )

    @cached_property
    def link_secret(self) -> str:
        """Read (or made) once, not on every click."""
        return self.settings.effective_link_secret()

    @cached_property
    def alert_intake(self) -> GroupCommit[AlertEvent, int]:
        """Alert events kept with one write for the deliveries that arrive together."""
        return GroupCommit(self.store.alerts.keep)

    @cached_property
    def delivery_intake(self) -> GroupCommit[Delivery, list[Delivery]]:
        """Incident webhook deliveries remembered with one write for those that arrive together
        (a flood of resolutions); each write answers which of its deliveries were new."""
        return GroupCommit(self.store.deliveries.record_all, per_write=DELIVERIES_PER_WRITE)

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
