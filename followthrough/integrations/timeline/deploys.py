"""The "deploys" timeline source: the deploys the deploy webhooks stored (followthrough/storage/
deploys.py), not a vendor. It applies to an incident only when one of its services had a deploy
in the policy's window before the incident started, so drafts without any say nothing of it."""

from __future__ import annotations

from followthrough.domain.changes import ChangePolicy, Deploy
from followthrough.domain.incident import Incident
from followthrough.domain.timeline import (
    DEPLOYS_SOURCE,
    CollectedEvent,
    deploy_events,
    incident_start,
)
from followthrough.storage import Store


class DeploysCollector:
    source = DEPLOYS_SOURCE

    def __init__(self, store: Store, policy: ChangePolicy) -> None:
        self.store = store
        self.policy = policy

    def _deploys(self, incident: Incident) -> list[Deploy]:
        start = incident_start(incident)
        return self.store.deploys.of_services(incident.services, start - self.policy.window, start)

    def applies_to(self, incident: Incident) -> bool:
        return bool(deploy_events(self._deploys(incident), incident, self.policy))

    def collect(self, incident: Incident) -> list[CollectedEvent]:
        return deploy_events(self._deploys(incident), incident, self.policy)
