"""The SLO activity: find a postmortem's SLOs and ask Prometheus what the incident cost each.

It judges nothing (the workflow does, through followthrough.domain.slo_review): an SLO that
cannot be measured comes back with the reason, and the draft's estimate stands in for it.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from activities import SLO_EVIDENCE
from followthrough.checks import CheckConfig
from followthrough.domain.alert_quality import CAUGHT_BEFORE, AlertPolicy, pages
from followthrough.domain.limits import ALERTS_PER_REVIEW
from followthrough.domain.slo import Slo
from followthrough.domain.slo_review import SloEvidence, SloQuestion
from followthrough.integrations.slo_measurement import MeasurementFailed, measure_incident
from followthrough.logging import get_logger
from followthrough.storage import Store

log = get_logger(__name__)

MEASUREMENT_TIMEOUT = 10.0  # seconds per PromQL query; the activity allows 120 s in all


class SloActivities:
    def __init__(
        self, store: Store, config: CheckConfig, alerts: AlertPolicy | None = None
    ) -> None:
        self.store = store
        self.prometheus_url = config.prometheus_url
        self.alerts = alerts or AlertPolicy()  # which alerts page

    @activity.defn(name=SLO_EVIDENCE)
    async def slo_evidence(self, question: SloQuestion) -> list[SloEvidence]:
        """The incident's SLOs (the draft's list, else its services'), each with what it cost."""
        every = await asyncio.to_thread(self.store.slos.all)
        if question.slo_ids is not None:
            wanted = [s for s in every if s.id in question.slo_ids]
        else:
            wanted = [s for s in every if s.service in question.services]
        found = list(await asyncio.gather(*(self._measure(s, question) for s in wanted)))
        paged = await asyncio.to_thread(self._pages, question)
        found = [e.model_copy(update={"pages": paged.get(e.slo.service, [])}) for e in found]
        log.info(
            "slo evidence",
            postmortem_id=question.postmortem_id,
            measured=[e.slo.id for e in found if e.measurement],
            not_measured={e.slo.id: e.problem for e in found if not e.measurement},
        )
        return found

    def _pages(self, question: SloQuestion) -> dict[str, list[str]]:
        """Service -> the names of its alerts that paged around the impact window."""
        fired = self.store.alerts.started_between(
            question.start - CAUGHT_BEFORE, question.end, ALERTS_PER_REVIEW
        )
        found: dict[str, list[str]] = {}
        for alert in fired:
            if alert.service is not None and pages(alert, self.alerts):
                found.setdefault(alert.service, []).append(alert.name)
        return {service: names[:100] for service, names in found.items()}

    async def _measure(self, slo: Slo, question: SloQuestion) -> SloEvidence:
        if not slo.error_query or not slo.total_query:
            return SloEvidence(slo=slo, problem="the SLO has no SLI queries to measure it with")
        if not self.prometheus_url:
            return SloEvidence(
                slo=slo, problem="no Prometheus to ask (set FOLLOWTHROUGH_PROMETHEUS_URL)"
            )
        try:
            measurement = await measure_incident(
                slo, self.prometheus_url, question.start, question.end, timeout=MEASUREMENT_TIMEOUT
            )
        except MeasurementFailed as err:
            return SloEvidence(slo=slo, problem=str(err))
        return SloEvidence(slo=slo, measurement=measurement)
